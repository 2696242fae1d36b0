package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsConfig is the metrics section of the edge configuration.
type MetricsConfig struct {
	// Listen is the address of /metrics, e.g. "10.20.0.1:9153" on the
	// administrative leg where the académie's Prometheus scrapes it.
	// Empty serves nothing (the registry still holds every metric).
	Listen string `yaml:"listen,omitempty"`
	// Pprof also serves /debug/pprof/ there. It is refused unless Listen
	// is a loopback address: profiles show memory contents.
	Pprof bool `yaml:"pprof,omitempty"`
}

// validate checks the section before anything listens.
func (c MetricsConfig) validate() error {
	if c.Listen == "" {
		if c.Pprof {
			return errors.New("metrics: pprof needs a listen address (a loopback one)")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("metrics: listen %q: %w", c.Listen, err)
	}
	if c.Pprof {
		a, err := netip.ParseAddr(host)
		if host != "localhost" && (err != nil || !a.IsLoopback()) {
			return fmt.Errorf("metrics: pprof is served only on a loopback address, not %q", c.Listen)
		}
	}
	return nil
}

// startMetrics registers the edge's own gauges (the policy in force) and
// the Go and process collectors, then serves the registry on Listen.
func (e *Edge) startMetrics(ctx context.Context) error {
	c := e.cfg.Metrics
	if err := c.validate(); err != nil {
		return err
	}
	gen := func(f func(serial, applied, fallback float64) float64) func() float64 {
		return func() float64 {
			g := e.gen.Load()
			if g == nil {
				return 0
			}
			fb := 0.0
			if g.Fallback {
				fb = 1
			}
			return f(float64(g.Serial), float64(g.Applied.UnixNano())/1e9, fb)
		}
	}
	for _, col := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigie_edge_policy_serial",
			Help: "Serial of the policy bundle in force (0 while the built-in strict policy runs).",
		}, gen(func(s, _, _ float64) float64 { return s })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigie_edge_policy_applied_timestamp_seconds",
			Help: "When the policy in force was applied.",
		}, gen(func(_, a, _ float64) float64 { return a })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigie_edge_policy_fallback",
			Help: "1 while the edge runs its built-in strict policy because it has neither a bundle nor a control plane.",
		}, gen(func(_, _, f float64) float64 { return f })),
		newKeyCollector(e),
	} {
		if err := e.reg.Register(col); err != nil {
			// The demo shares one registry between the edge and the
			// control plane: the Go and process collectors are then
			// already there.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return fmt.Errorf("metrics: %w", err)
			}
		}
	}
	if c.Listen == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{
		Registry:            e.reg,
		ErrorHandling:       promhttp.ContinueOnError,
		Timeout:             10 * time.Second,
		MaxRequestsInFlight: 4,
	}))
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("metrics: listen %q: %w", c.Listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	e.supervise("metrics", func() error { return srv.Serve(ln) })
	e.log.Info("metrics listening", "addr", ln.Addr().String(), "pprof", c.Pprof)
	e.stops = append(e.stops, srv.Shutdown)
	return nil
}
