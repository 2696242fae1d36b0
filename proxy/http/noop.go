package httpproxy

import "github.com/prometheus/client_golang/prometheus"

// prometheusNoop registers nothing: metrics still count, nobody reads them.
type prometheusNoop struct{}

func (prometheusNoop) Register(prometheus.Collector) error  { return nil }
func (prometheusNoop) MustRegister(...prometheus.Collector) {}
func (prometheusNoop) Unregister(prometheus.Collector) bool { return true }
