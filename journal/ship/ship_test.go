package ship

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
)

const uai = "0671234X"

var edgeKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))

func TestProtocolMatchesArchive(t *testing.T) {
	if IngestPath != archive.IngestPath || EdgeKeyHeader != archive.EdgeKeyHeader {
		t.Fatalf("ship posts to %s with %s, the archive serves %s and reads %s", IngestPath, EdgeKeyHeader, archive.IngestPath, archive.EdgeKeyHeader)
	}
}

type rig struct {
	j      *segment.Journal
	arch   *archive.Archive
	store  *archive.SQLite
	srv    *httptest.Server
	down   atomic.Bool
	ship   *Shipper
	reg    *prometheus.Registry
	now    time.Time
	gen    *journaltest.Gen
	posted atomic.Int64
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{reg: prometheus.NewRegistry(), now: time.Now()}
	var err error
	r.j, err = segment.OpenJournal(segment.Options{Dir: filepath.Join(t.TempDir(), "journal"), UAI: uai, Key: edgeKey, CommitInterval: time.Millisecond, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.j.Close() })
	r.store, err = archive.OpenSQLite(filepath.Join(t.TempDir(), "archive.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.store.Close() })
	r.arch, err = archive.New(archive.Options{Store: r.store, EdgeKey: func(context.Context, string) (ed25519.PublicKey, error) {
		return edgeKey.Public().(ed25519.PublicKey), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := r.arch.IngestHandler()
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		r.posted.Add(1)
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.ship, err = New(Options{Logs: []*segment.Log{r.j.Log(journal.Connexions), r.j.Log(journal.Navigation)}, URL: r.srv.URL,
		Registry: r.reg, Now: func() time.Time { return r.now }, PressureFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	r.gen = journaltest.New(5, uai, time.Now().Add(-time.Hour))
	return r
}

// write appends n records to both streams and optionally seals them.
func (r *rig) write(t *testing.T, n int, seal bool) {
	t.Helper()
	for i := 0; i < n; i++ {
		for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
			rec := r.gen.Next(s)
			r.j.Append(&rec)
		}
	}
	ctx := context.Background()
	if err := r.j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if seal {
		for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
			if err := r.j.Log(s).Rotate(ctx); err != nil {
				t.Fatal(err)
			}
			r.j.Log(s).WaitSealed(ctx)
		}
	}
}

func (r *rig) archived(t *testing.T) int {
	n := 0
	r.store.Scan(context.Background(), archive.Query{UAI: uai, From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(48 * time.Hour)}, func(archive.Chain, *archive.Stored) error {
		n++
		return nil
	})
	return n
}

func TestShipSealedAndTailThenPrune(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.write(t, 300, true)
	r.write(t, 200, true)
	r.write(t, 50, false) // stays in the open tail
	if err := r.ship.Round(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		if got := r.ship.Acked(r.j.Log(s)); got != 550 {
			t.Fatalf("%s acked through %d, want 550", s, got)
		}
		if v := testutil.ToFloat64(r.ship.m.lag.WithLabelValues(s.String())); v != 0 {
			t.Fatalf("%s lag %v", s, v)
		}
	}
	if n := r.archived(t); n != 1100 {
		t.Fatalf("archive holds %d records, want 1100", n)
	}
	// Nothing to ship: no posts. Local retention not reached: nothing pruned.
	before := r.posted.Load()
	r.ship.Round(ctx)
	if r.posted.Load() != before {
		t.Fatal("a round with nothing new posted batches")
	}
	if segs, _ := r.j.Log(journal.Navigation).Sealed(); len(segs) != 2 {
		t.Fatalf("%d sealed segments kept, want 2", len(segs))
	}
	// Past local retention, acknowledged segments go.
	r.now = r.now.Add(8 * 24 * time.Hour)
	r.ship.Round(ctx)
	if segs, _ := r.j.Log(journal.Navigation).Sealed(); len(segs) != 0 {
		t.Fatalf("%d sealed segments left after retention", len(segs))
	}
	// The acknowledgement survives a restart of the shipper.
	s2, err := New(Options{Logs: r.ship.opt.Logs, URL: r.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Acked(r.j.Log(journal.Connexions)); got != 550 {
		t.Fatalf("acked after restart %d", got)
	}
}

func TestArchiveDownKeepsEverything(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.write(t, 100, true)
	r.down.Store(true)
	if err := r.ship.Round(ctx); err == nil {
		t.Fatal("round succeeded with the archive down")
	}
	r.now = r.now.Add(30 * 24 * time.Hour)
	r.ship.Round(ctx)
	if segs, _ := r.j.Log(journal.Connexions).Sealed(); len(segs) != 1 {
		t.Fatal("an unacknowledged segment was deleted")
	}
	if v := testutil.ToFloat64(r.ship.m.lag.WithLabelValues("connexions")); v != 100 {
		t.Fatalf("lag %v, want 100", v)
	}
	r.down.Store(false)
	if err := r.ship.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.archived(t); n != 200 {
		t.Fatalf("archive holds %d records after recovery, want 200", n)
	}
}

// TestCountersStartAtZero: before any round, a fresh registry already holds
// every result and reason of every stream at zero, so that an alert on
// increase(...rejected...) fires on the very first refusal.
func TestCountersStartAtZero(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		metric string
		label  string
		values []string
	}{
		{"vigie_journal_ship_batches_total", "result", []string{"acked", "rejected", "conflict", "error"}},
		{"vigie_journal_ship_pruned_segments_total", "reason", []string{"retention", "pressure"}},
	} {
		t.Run(tc.metric, func(t *testing.T) {
			got := map[string]float64{}
			mfs, err := r.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != tc.metric {
					continue
				}
				for _, m := range mf.GetMetric() {
					var stream, value string
					for _, lp := range m.GetLabel() {
						switch lp.GetName() {
						case "stream":
							stream = lp.GetValue()
						case tc.label:
							value = lp.GetValue()
						}
					}
					got[stream+"/"+value] = m.GetCounter().GetValue()
				}
			}
			for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
				for _, v := range tc.values {
					key := s.String() + "/" + v
					if n, ok := got[key]; !ok || n != 0 {
						t.Errorf("%s{%s}: present %v, value %v; want a zero series", tc.metric, key, ok, n)
					}
				}
			}
			if want := 2 * len(tc.values); len(got) != want {
				t.Errorf("%s has %d series, want %d: %v", tc.metric, len(got), want, got)
			}
		})
	}
}

// TestLastAckSurvivesRestart: the shipping-lag alert reads the time of the
// last acknowledgement; a restart must not reset it to "never" (no series)
// nor to "now" when an older acknowledgement is on record.
func TestLastAckSurvivesRestart(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	conn := r.j.Log(journal.Connexions)
	// Nothing acknowledged yet: the lag runs from this process's start.
	if v := testutil.ToFloat64(r.ship.m.last.WithLabelValues("connexions")); v != float64(r.now.Unix()) {
		t.Errorf("before any acknowledgement: last ack %v, want the start time %d", v, r.now.Unix())
	}
	r.write(t, 10, true)
	if err := r.ship.Round(ctx); err != nil {
		t.Fatal(err)
	}
	acked := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(conn.Dir(), "shipped.json"), acked, acked); err != nil {
		t.Fatal(err)
	}
	later := acked.Add(3 * time.Hour)
	reg := prometheus.NewRegistry()
	s2, err := New(Options{Logs: r.ship.opt.Logs, URL: r.srv.URL, Registry: reg, Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(s2.m.last.WithLabelValues("connexions")); v != float64(acked.Unix()) {
		t.Errorf("after restart: last ack %v, want the recorded %d", v, acked.Unix())
	}
}
