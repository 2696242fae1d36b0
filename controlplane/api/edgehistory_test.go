package api

import (
	"context"
	"reflect"
	"testing"
	"time"

	"vigie/controlplane/store"
	"vigie/tstest"
)

func TestStatusEvents(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	base := store.EdgeStatus{LastSeen: t0, AppliedSerial: 3, AppliedHash: "h3", Software: "vigie 1.0"}
	with := func(f func(*store.EdgeStatus)) store.EdgeStatus {
		s := base
		s.LastSeen = t0.Add(30 * time.Second)
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name       string
		prev, next store.EdgeStatus
		want       []store.EdgeEvent
	}{
		{"nothing changed", base, with(func(*store.EdgeStatus) {}), nil},
		{"first contact is no outage", store.EdgeStatus{}, store.EdgeStatus{LastSeen: t0}, nil},
		{"a silence longer than the rule is an outage", base, with(func(s *store.EdgeStatus) { s.LastSeen = t0.Add(time.Hour) }),
			[]store.EdgeEvent{{Edge: "e", Kind: store.EventOutage, At: t0, Until: t0.Add(time.Hour)}}},
		{"a new version", base, with(func(s *store.EdgeStatus) { s.AppliedSerial, s.AppliedHash = 4, "h4" }),
			[]store.EdgeEvent{{Edge: "e", Kind: store.EventApplied, At: t0.Add(30 * time.Second), Serial: 4}}},
		{"a refusal, once", base, with(func(s *store.EdgeStatus) { s.LastError = "signature invalide" }),
			[]store.EdgeEvent{{Edge: "e", Kind: store.EventRefused, At: t0.Add(30 * time.Second), Serial: 3, Detail: "signature invalide"}}},
		{"the same refusal again", with(func(s *store.EdgeStatus) { s.LastError = "x" }), with(func(s *store.EdgeStatus) { s.LastError = "x" }), nil},
		{"a software update", base, with(func(s *store.EdgeStatus) { s.Software = "vigie 1.1" }),
			[]store.EdgeEvent{{Edge: "e", Kind: store.EventSoftware, At: t0.Add(30 * time.Second), Detail: "vigie 1.1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := statusEvents("e", tc.prev, tc.next, 70*time.Second)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestEdgeHistoryRecorded: what an edge reports through the API becomes
// its history in the store: the version applied, the software, a refusal,
// and a silence longer than the rule between two calls.
func TestEdgeHistoryRecorded(t *testing.T) {
	e := newEnv(t)
	e.srv.edges.mu.Lock()
	e.srv.edges.offlineAfter = 300 * time.Millisecond
	e.srv.edges.mu.Unlock()
	h := e.srv.Publisher().Head()
	from := time.Now().Add(-time.Minute)
	e.mustDo("edge", "POST", "/api/v1/edge/status", EdgeReport{Serial: h.Serial, Hash: h.Hash, Software: "vigie 1.0"}, 204)
	time.Sleep(400 * time.Millisecond)
	e.mustDo("edge", "POST", "/api/v1/edge/status", EdgeReport{Serial: h.Serial, Hash: h.Hash, Software: "vigie 1.0", Error: "bundle refusé : signature invalide"}, 204)
	hist := store.History(e.st)
	var got []store.EdgeEvent
	tstest.Eventually(t, 5*time.Second, func() bool {
		var err error
		got, err = hist.EdgeEvents(context.Background(), monnet, from, time.Now().Add(time.Minute))
		return err == nil && len(got) >= 4
	}, "the edge's history to be stored")
	kinds := map[string]int{}
	for _, ev := range got {
		kinds[ev.Kind]++
		if ev.Edge != "monnet-1" || ev.UAI != monnet {
			t.Errorf("event of %s/%s, want monnet-1/%s", ev.Edge, ev.UAI, monnet)
		}
	}
	if kinds[store.EventSoftware] != 1 || kinds[store.EventOutage] != 1 || kinds[store.EventRefused] != 1 {
		t.Errorf("events %+v", got)
	}
}
