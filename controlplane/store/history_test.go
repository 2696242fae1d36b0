package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"vigie/controlplane/store/pgtest"
)

func addEdge(t *testing.T, s Store, id, uai string) {
	t.Helper()
	ctx := context.Background()
	err := s.Update(ctx, func(tx Tx) error {
		return tx.CreateEdge(ctx, Edge{ID: id, UAI: uai, CreatedAt: t0, TokenHash: "h-" + id})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEdgeHistory: events keep their edge's school, are read by UAI
// prefix and time window (an outage that began before the window and
// ended in it is part of it), and the history knows when it started.
func TestEdgeHistory(t *testing.T) {
	eachBackend(t, func(t *testing.T, s Store, _ func(string) error) {
		ctx := context.Background()
		h, ok := s.(History)
		if !ok {
			t.Fatal("the store keeps no edge history")
		}
		start, err := h.HistoryStart(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if start.IsZero() || time.Since(start) > time.Hour || time.Until(start) > time.Minute {
			t.Fatalf("history start %v: the migration should have written when it started", start)
		}
		addEdge(t, s, "0671234x-1", "0671234X")
		addEdge(t, s, "0680001a-1", "0680001A")
		day := func(d int) time.Time { return time.Date(2026, 3, d, 10, 0, 0, 0, time.UTC) }
		err = h.AddEdgeEvents(ctx, []EdgeEvent{
			{Edge: "0671234x-1", Kind: EventOutage, At: day(1), Until: day(3)},
			{Edge: "0671234x-1", Kind: EventApplied, At: day(4), Serial: 7},
			{Edge: "0671234x-1", Kind: EventRefused, At: day(5), Serial: 7, Detail: "signature invalide"},
			{Edge: "0680001a-1", Kind: EventSoftware, At: day(4), Detail: "vigie 1.4.0"},
			{Edge: "disparue", Kind: EventApplied, At: day(4), Serial: 7},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.EdgeEvents(ctx, "067", day(2), day(30))
		if err != nil {
			t.Fatal(err)
		}
		want := []EdgeEvent{
			{Edge: "0671234x-1", UAI: "0671234X", Kind: EventOutage, At: day(1), Until: day(3)},
			{Edge: "0671234x-1", UAI: "0671234X", Kind: EventApplied, At: day(4), Serial: 7},
			{Edge: "0671234x-1", UAI: "0671234X", Kind: EventRefused, At: day(5), Serial: 7, Detail: "signature invalide"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Bas-Rhin events:\n got %+v\nwant %+v", got, want)
		}
		got, _ = h.EdgeEvents(ctx, "", day(4), day(5))
		if len(got) != 2 || got[0].Kind != EventApplied || got[1].UAI != "0680001A" {
			t.Errorf("every school on day 4: %+v", got)
		}
		if got, _ := h.EdgeEvents(ctx, "067", day(10), day(30)); len(got) != 0 {
			t.Errorf("nothing after day 5, got %+v", got)
		}
		if _, err := h.EdgeEvents(ctx, "06%", day(1), day(30)); err == nil {
			t.Error("a LIKE wildcard in the prefix is refused")
		}
	})
}

// TestMoveKeepsEdgeHistory: a move copies the history with its start,
// not the start the new schema's migration wrote.
func TestMoveKeepsEdgeHistory(t *testing.T) {
	ctx := context.Background()
	src, _ := open(t)
	fill(t, src)
	addEdge(t, src, "0671234x-9", "0671234X")
	ev := EdgeEvent{Edge: "0671234x-9", Kind: EventOutage, At: t0, Until: t0.Add(time.Hour)}
	if err := src.AddEdgeEvents(ctx, []EdgeEvent{ev}); err != nil {
		t.Fatal(err)
	}
	// The source's history started earlier than the target's will.
	if _, err := src.w.Exec(`UPDATE edge_events SET at = ? WHERE kind = 'recording'`, nanos(t0.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	dst := openPostgres(t, pgtest.Shared(t).Database(t), "ac_histoire")
	if _, err := Move(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	start, _ := dst.HistoryStart(ctx)
	if !start.Equal(t0.Add(-time.Hour)) {
		t.Errorf("history start after the move %v, want the source's %v", start, t0.Add(-time.Hour))
	}
	got, _ := dst.EdgeEvents(ctx, "0671234X", t0, t0.Add(time.Hour))
	if len(got) != 1 || !got[0].Until.Equal(ev.Until) {
		t.Errorf("moved events %+v", got)
	}
}

// TestBlockedDays: counts are stored, replaced on a second count, and read
// by school prefix and day range.
func TestBlockedDays(t *testing.T) {
	eachBackend(t, func(t *testing.T, s Store, _ func(string) error) {
		ctx := context.Background()
		h := s.(History)
		err := h.PutBlockedDays(ctx, []BlockedDay{
			{UAI: "0671234X", Day: "2026-03-02", Category: "adult", Blocked: 5},
			{UAI: "0671234X", Day: "2026-03-02", Category: "", Blocked: 5, Allowed: 40},
			{UAI: "0671234X", Day: "2026-03-03", Category: "", Allowed: 7},
			{UAI: "0680001A", Day: "2026-03-02", Category: "games", Blocked: 2},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.PutBlockedDays(ctx, []BlockedDay{{UAI: "0671234X", Day: "2026-03-02", Category: "adult", Blocked: 6}}); err != nil {
			t.Fatal(err)
		}
		got, err := h.BlockedDays(ctx, "067", "2026-03-01", "2026-03-03")
		if err != nil {
			t.Fatal(err)
		}
		want := []BlockedDay{
			{UAI: "0671234X", Day: "2026-03-02", Category: "", Blocked: 5, Allowed: 40},
			{UAI: "0671234X", Day: "2026-03-02", Category: "adult", Blocked: 6},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})
}

// TestEdgeEventsInChunks: a publication's burst of events (more than one
// statement's worth) is stored whole.
func TestEdgeEventsInChunks(t *testing.T) {
	eachBackend(t, func(t *testing.T, s Store, _ func(string) error) {
		ctx := context.Background()
		h := s.(History)
		addEdge(t, s, "0671234x-1", "0671234X")
		var es []EdgeEvent
		for i := range 250 {
			es = append(es, EdgeEvent{Edge: "0671234x-1", Kind: EventApplied, At: t0.Add(time.Duration(i) * time.Second), Serial: uint64(i + 1)})
		}
		if err := h.AddEdgeEvents(ctx, es); err != nil {
			t.Fatal(err)
		}
		got, err := h.EdgeEvents(ctx, "0671234X", t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 250 || got[249].Serial != 250 || !got[249].At.Equal(es[249].At) {
			t.Fatalf("%d events stored, last %+v", len(got), got[len(got)-1])
		}
	})
}
