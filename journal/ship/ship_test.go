package ship

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
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
