package firewall

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// collector reads the named counters from the kernel at each scrape. Their
// names are "reason.zone" (or "reason" alone), so labels stay bounded by
// the school's zones. Its descriptions belong to it, not to the package:
// each Firewall registers its own collector.
type collector struct {
	f              *Firewall
	droppedPackets *prometheus.Desc
	droppedBytes   *prometheus.Desc
	// errors counts scrapes that could not read the kernel's counters; the
	// scrape itself still succeeds with what is known.
	errors prometheus.Counter
}

func newCollector(f *Firewall) *collector {
	return &collector{
		f: f,
		droppedPackets: prometheus.NewDesc("vigie_firewall_dropped_packets_total",
			"Packets dropped by the firewall's counted rules, by reason (quic, dot, dns, vpn, ssh, proxy, internet, zone, input, forward, invalid) and source zone.",
			[]string{"reason", "zone"}, nil),
		droppedBytes: prometheus.NewDesc("vigie_firewall_dropped_bytes_total",
			"Bytes dropped by the firewall's counted rules, by reason and source zone.",
			[]string{"reason", "zone"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigie_firewall_read_errors_total",
			Help: "Scrapes that could not read the kernel's firewall counters.",
		}),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.droppedPackets
	ch <- c.droppedBytes
	c.errors.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.f.mu.Lock()
	counts, err := c.f.counters()
	c.f.mu.Unlock()
	if err != nil {
		c.f.log.Warn("firewall: cannot read counters", "err", err)
		c.errors.Inc()
	}
	c.errors.Collect(ch)
	for name, v := range counts {
		reason, zone := SplitCounter(name)
		ch <- prometheus.MustNewConstMetric(c.droppedPackets, prometheus.CounterValue, float64(v.Packets), reason, zone)
		ch <- prometheus.MustNewConstMetric(c.droppedBytes, prometheus.CounterValue, float64(v.Bytes), reason, zone)
	}
}

// SplitCounter splits a counter name into its reason and source zone.
func SplitCounter(name string) (reason, zone string) {
	reason, zone, _ = strings.Cut(name, ".")
	return reason, zone
}
