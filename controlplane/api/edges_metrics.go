package api

import (
	"context"
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane/store"
)

// Per-edge series on the control plane's registry, so that "edge not
// seen" and "edge on an old serial" alerts can be written against the
// control plane (which sees every edge) as well as against each edge.
// Labels are bounded by the enrolled edges: one series per edge, gone
// once the edge is deleted. The names are spelled out in NewDesc below
// too, where deploy's tests look for the metrics alerts may name.
const (
	metricEdgeLastSeen = "vigie_controlplane_edge_last_seen_timestamp_seconds"
	metricEdgeApplied  = "vigie_controlplane_edge_applied_serial"
	metricEdgeUnknown  = "vigie_controlplane_edge_unknown_version"
)

// rosterTTL is how long the list of enrolled edges read for a scrape is
// reused. Edges created or deleted through this server drop it at once;
// the TTL only bounds how long an edge enrolled by another process (the
// CLI on the same data directory) waits for its series.
const rosterTTL = time.Minute

// edgeCollector exports, per enrolled edge, the last time it called and
// the serial it reported applied: the tracker's live view merged over
// what the store holds, as the API shows it. A scrape reads the store at
// most once per rosterTTL, never on the edges' hot path.
type edgeCollector struct {
	s                 *Server
	lastSeen, applied *prometheus.Desc
	unknown           *prometheus.Desc

	mu     gosync.Mutex
	roster []store.Edge
	loaded time.Time
}

// registerEdgeMetrics adds the per-edge series to cfg.Registry (if any).
func (s *Server) registerEdgeMetrics() {
	c := &edgeCollector{s: s,
		lastSeen: prometheus.NewDesc("vigie_controlplane_edge_last_seen_timestamp_seconds",
			"When the edge last called the control plane (Unix seconds; 0: never since it was enrolled).",
			[]string{"edge", "uai"}, nil),
		applied: prometheus.NewDesc("vigie_controlplane_edge_applied_serial",
			"Serial of the policy the edge last reported applied (0: none yet).",
			[]string{"edge", "uai"}, nil),
		unknown: prometheus.NewDesc("vigie_controlplane_edge_unknown_version",
			"1 when the edge applied a serial and hash this control plane never published (version inconnue: a restored control plane, a fork).",
			[]string{"edge", "uai"}, nil),
	}
	s.edges.metrics = c
	if s.cfg.Registry == nil {
		return
	}
	if err := s.cfg.Registry.Register(c); err != nil {
		s.log.Error("cannot export per-edge metrics", "err", err)
	}
}

func (c *edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lastSeen
	ch <- c.applied
	ch <- c.unknown
}

func (c *edgeCollector) Collect(ch chan<- prometheus.Metric) {
	edges, err := c.list()
	if err != nil {
		c.s.log.Warn("per-edge metrics: cannot list edges", "err", err)
		ch <- prometheus.NewInvalidMetric(c.lastSeen, err)
		return
	}
	for _, e := range edges {
		st := e.EdgeStatus
		if p, ok := c.s.edges.pending(e.ID); ok {
			st = p
		}
		seen := 0.0
		if !st.LastSeen.IsZero() {
			seen = float64(st.LastSeen.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.lastSeen, prometheus.GaugeValue, seen, e.ID, e.UAI)
		ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(st.AppliedSerial), e.ID, e.UAI)
		unknown := 0.0
		if !c.s.versions.known(st.AppliedSerial, st.AppliedHash) || st.ClaimedSerial != 0 {
			unknown = 1
		}
		ch <- prometheus.MustNewConstMetric(c.unknown, prometheus.GaugeValue, unknown, e.ID, e.UAI)
	}
}

// list returns the enrolled edges, read from the store when the cached
// list is older than rosterTTL or was dropped.
func (c *edgeCollector) list() ([]store.Edge, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roster != nil && c.s.now().Sub(c.loaded) < rosterTTL {
		return c.roster, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var all []store.Edge
	p := store.Page{Limit: 1000}
	for {
		es, err := c.s.st.Edges(ctx, "", p)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
		if len(es) < p.Limit {
			break
		}
		p.After = es[len(es)-1].ID
	}
	if all == nil {
		all = []store.Edge{}
	}
	c.roster, c.loaded = all, c.s.now()
	return all, nil
}

// forget drops the cached list: an edge was enrolled or deleted.
func (c *edgeCollector) forget() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.roster = nil
	c.mu.Unlock()
}
