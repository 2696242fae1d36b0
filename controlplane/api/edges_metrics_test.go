package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// edgeSeries reads the per-edge series: edge → [last seen, applied serial].
func edgeSeries(t *testing.T, reg *prometheus.Registry) map[string][2]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]float64{}
	for _, mf := range mfs {
		i := -1
		switch mf.GetName() {
		case metricEdgeLastSeen:
			i = 0
		case metricEdgeApplied:
			i = 1
		}
		if i < 0 {
			continue
		}
		for _, m := range mf.GetMetric() {
			var edge, uai string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "edge":
					edge = l.GetValue()
				case "uai":
					uai = l.GetValue()
				}
			}
			if uai != monnet {
				t.Errorf("edge %s exported with uai %q, want %q", edge, uai, monnet)
			}
			v := out[edge]
			v[i] = m.GetGauge().GetValue()
			out[edge] = v
		}
	}
	return out
}

// TestEdgeMetrics checks the per-edge series on the control plane's
// registry: one per enrolled edge from the start, updated by what the edge
// reports, added when an edge is enrolled and removed when it is deleted.
func TestEdgeMetrics(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	// The same store and publisher behind a server exporting metrics.
	e.http.Close()
	e.srv = New(e.st, e.srv.Auth(), e.srv.Publisher(), Config{DataDir: e.dir, Log: quiet, Registry: reg, StatusFlush: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.srv.Run(ctx)
	e.http = httptest.NewServer(e.srv)

	got := edgeSeries(t, reg)
	if len(got) != 3 {
		t.Fatalf("series for %d edges, want the 3 enrolled: %v", len(got), got)
	}
	for id, v := range got {
		if v != [2]float64{0, 0} {
			t.Errorf("edge %s never called: got last seen %v, serial %v, want 0, 0", id, v[0], v[1])
		}
	}

	before := float64(time.Now().Unix()) - 1
	e.mustDo("edge", "POST", "/api/v1/edge/status", map[string]any{"serial": 1, "hash": e.srv.Publisher().Head().Hash}, http.StatusNoContent)
	got = edgeSeries(t, reg)
	if v := got["monnet-1"]; v[0] < before || v[1] != 1 {
		t.Fatalf("monnet-1 after reporting serial 1: last seen %v (want ≥ %v), serial %v", v[0], before, v[1])
	}
	if v := got["monnet-2"]; v != [2]float64{0, 0} {
		t.Fatalf("monnet-2 changed by another edge's report: %v", v)
	}

	e.mustDo("rssi", "POST", "/api/v1/edges", map[string]any{"id": "monnet-3", "uai": monnet}, http.StatusCreated)
	e.mustDo("rssi", "DELETE", "/api/v1/edges/jetable-edge", nil, http.StatusNoContent)
	got = edgeSeries(t, reg)
	if _, ok := got["monnet-3"]; !ok {
		t.Fatalf("no series for the enrolled edge: %v", got)
	}
	if _, ok := got["jetable-edge"]; ok || len(got) != 3 {
		t.Fatalf("series after deleting an edge: %v", got)
	}
}
