package flows

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	written *prometheus.CounterVec
	skipped *prometheus.CounterVec
	lost    *prometheus.CounterVec
	gaps    prometheus.Counter
	events  *prometheus.CounterVec
	// Taken once: a label lookup per event showed in the flood's profile.
	evNew, evDestroy prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		written: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_flows_records_total",
			Help: "Flow records written to the journal, by verdict."}, []string{"verdict"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_flows_skipped_total",
			Help: "Conntrack flows not written, by reason (redirected: journalled by the DNS filter or proxy)."}, []string{"reason"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_flows_lost_total",
			Help: "Flow records that could not be written and were declared in the journal, by cause (rate, queue, enobufs)."}, []string{"cause"}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigie_flows_gap_records_total",
			Help: "Gap records written to declare lost flow records."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_flows_events_total",
			Help: "Kernel events received, by kind (new, destroy, nflog)."}, []string{"kind"}),
	}
	m.evNew, m.evDestroy = m.events.WithLabelValues("new"), m.events.WithLabelValues("destroy")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.written, m.skipped, m.lost, m.gaps, m.events} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("flows: metrics: %w", err)
		}
	}
	return m, nil
}
