package archive

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/controlplane/store/pgtest"
	"vigie/journal"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
)

const uai = "0671234X"

var (
	edgeKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	day0     = time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
)

type auditLog struct {
	mu     sync.Mutex
	events []Event
}

func (a *auditLog) Audit(_ context.Context, e Event) error {
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
	return nil
}

func (a *auditLog) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.events {
		out = append(out, e.Action)
	}
	return out
}

type env struct {
	arch  *Archive
	store *SQLite
	audit *auditLog
	reg   *prometheus.Registry
	now   time.Time
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backend is one store under test.
type backend struct {
	name string
	open func(t testing.TB) *SQLStore
}

var backends = []backend{
	{"sqlite", func(t testing.TB) *SQLStore {
		st, err := OpenSQLite(filepath.Join(t.TempDir(), "journal.db"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
	{"postgres", func(t testing.TB) *SQLStore {
		st, err := OpenPostgres(context.Background(), pgtest.Shared(t).Database(t), PostgresConfig{Schema: "ac_test", MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// eachBackend runs fn as a subtest per backend, with an env on it.
func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, newEnvOn(t, b)) })
	}
}

func newEnv(t testing.TB) *env { return newEnvOn(t, backends[0]) }

func newEnvOn(t testing.TB, b backend) *env {
	t.Helper()
	st := b.open(t)
	t.Cleanup(func() { st.Close() })
	var err error
	e := &env{store: st, audit: &auditLog{}, reg: prometheus.NewRegistry(), now: day0.Add(24 * time.Hour)}
	e.arch, err = New(Options{
		Store: st, Audit: e.audit, Registry: e.reg, Now: func() time.Time { return e.now },
		EdgeKey: func(_ context.Context, u string) (ed25519.PublicKey, error) {
			if u != uai {
				return nil, fmt.Errorf("no edge registered for %s", u)
			}
			return edgeKey.Public().(ed25519.PublicKey), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// edgeBatches runs a real edge journal and returns its sealed segments, in
// order, with the records they hold.
func edgeBatches(t testing.TB, dir string, key ed25519.PrivateKey, s journal.Stream, batches, per int, seed uint64) ([][]byte, []journal.Record) {
	t.Helper()
	g := journaltest.New(seed, uai, day0)
	recs := make([]journal.Record, 0, batches*per)
	sizes := make([]int, batches)
	for b := range sizes {
		sizes[b] = per
		for range per {
			r := g.Next(s)
			journal.Canonicalize(&r)
			recs = append(recs, r)
		}
	}
	return sealCuts(t, dir, key, s, recs, sizes), recs
}

// sealCuts runs a real edge journal in dir over recs and returns the
// batches it seals, in order, cut after each size in sizes.
func sealCuts(t testing.TB, dir string, key ed25519.PrivateKey, s journal.Stream, recs []journal.Record, sizes []int) [][]byte {
	t.Helper()
	ctx := context.Background()
	l, err := segment.Open(segment.Options{Dir: dir, UAI: uai, Stream: s, Key: key, CommitInterval: time.Millisecond, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	i := 0
	for _, n := range sizes {
		for range n {
			l.Append(&recs[i])
			i++
		}
		if err := l.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WaitSealed(ctx); err != nil {
		t.Fatal(err)
	}
	segs, err := l.Sealed()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, sg := range segs {
		data, err := os.ReadFile(sg.Path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	if len(out) != len(sizes) {
		t.Fatalf("%d sealed segments, want %d", len(out), len(sizes))
	}
	return out
}

func TestIngestInOrderDuplicatesAndGaps(t *testing.T) {
	eachBackend(t, testIngestInOrderDuplicatesAndGaps)
}

func testIngestInOrderDuplicatesAndGaps(t *testing.T, e *env) {
	ctx := context.Background()
	batches, recs := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 4, 250, 1)

	// Batch 2 is late: the archive sees a gap, then fills it.
	order := []int{0, 2, 1, 3, 3}
	var gaps []Gap
	for i, bi := range order {
		ack, err := e.arch.Ingest(ctx, batches[bi])
		if err != nil {
			t.Fatalf("ingest %d (batch %d): %v", i, bi, err)
		}
		if ack.First != uint64(bi*250+1) || ack.Last != uint64(bi*250+250) {
			t.Fatalf("ack %+v for batch %d", ack, bi)
		}
		if i == 4 && (ack.Stored != 0 || ack.Duplicates != 250) {
			t.Fatalf("resent batch: %+v, want 250 duplicates", ack)
		}
		gaps = append(gaps, ack.Gaps...)
	}
	if len(gaps) != 1 || gaps[0].First != 251 || gaps[0].Last != 500 {
		t.Fatalf("gaps reported %+v, want 251-500 once", gaps)
	}
	if open, _ := e.store.Gaps(ctx, uai); len(open) != 0 {
		t.Fatalf("gap still open after the late batch: %+v", open)
	}
	if v := testutil.ToFloat64(e.arch.m.gapRecs.WithLabelValues("navigation", uai)); v != 250 {
		t.Fatalf("gap metric %v", v)
	}
	if !contains(e.audit.actions(), "journal.gap") {
		t.Fatalf("gap not audited: %v", e.audit.actions())
	}
	// Every record is there exactly once, with the edge's links.
	var n int
	err := e.store.Scan(ctx, Query{UAI: uai, From: day0, To: day0.Add(48 * time.Hour)}, func(c Chain, r *Stored) error {
		var got journal.Record
		if err := journal.DecodeRecord(r.Payload, &got); err != nil {
			return err
		}
		got.Seq = r.Seq
		want := recs[n]
		want.Seq = uint64(n + 1)
		if got != want {
			return fmt.Errorf("record %d: got %+v want %+v", n+1, got, want)
		}
		n++
		return nil
	})
	if err != nil || n != 1000 {
		t.Fatalf("scan: %d records, %v", n, err)
	}
}

func TestIngestRejects(t *testing.T) {
	ctx := context.Background()
	batches, _ := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 2, 100, 1)
	forged, _ := edgeBatches(t, t.TempDir(), otherKey, journal.Connexions, 1, 100, 1)

	// An edge that lost its disk and reused its chain identity rewrites
	// history: same chain, other records.
	dirA, dirB := t.TempDir(), t.TempDir()
	a1, _ := edgeBatches(t, dirA, edgeKey, journal.Connexions, 1, 100, 1)
	os.MkdirAll(dirB, 0o750)
	chainJSON, _ := os.ReadFile(filepath.Join(dirA, "chain.json"))
	os.WriteFile(filepath.Join(dirB, "chain.json"), chainJSON, 0o640)
	b1, _ := edgeBatches(t, dirB, edgeKey, journal.Connexions, 1, 100, 99)

	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		if i < 0 {
			i += len(c)
		}
		c[i] ^= 0x04
		return c
	}
	for _, tc := range []struct {
		name  string
		first [][]byte
		data  []byte
		want  error
		text  string
	}{
		{"signed by another key", nil, forged[0], ErrBadBatch, "bad signature"},
		{"bit flipped in the body", nil, flip(batches[0], -10), ErrBadBatch, "body hash"},
		{"bit flipped in the header", nil, flip(batches[0], 30), ErrBadBatch, "signature"},
		{"truncated", nil, batches[0][:len(batches[0])-1], ErrBadBatch, "body is"},
		{"not a batch", nil, []byte("GET / HTTP/1.1\r\n"), ErrBadBatch, "magic"},
		{"history rewritten", [][]byte{a1[0]}, b1[0], ErrConflict, "differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for _, b := range tc.first {
				if _, err := e.arch.Ingest(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			_, err := e.arch.Ingest(ctx, tc.data)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.text)
			}
			if len(e.audit.actions()) == 0 {
				t.Fatal("rejection not audited")
			}
		})
	}
	t.Run("unknown school", func(t *testing.T) {
		e := newEnv(t)
		e.arch.opt.EdgeKey = func(context.Context, string) (ed25519.PublicKey, error) { return nil, errors.New("none") }
		if _, err := e.arch.Ingest(ctx, batches[0]); !errors.Is(err, ErrUnknownEdge) {
			t.Fatal(err)
		}
	})
}

func TestIngestHandlerOverHTTP(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.arch.IngestHandler())
	defer srv.Close()
	batches, _ := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 1, 50, 1)
	post := func(body []byte) (*http.Response, []byte) {
		resp, err := http.Post(srv.URL+IngestPath, BatchContentType, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := post(batches[0])
	var ack Ack
	if resp.StatusCode != 200 || json.Unmarshal(body, &ack) != nil || ack.Stored != 50 || ack.Last != 50 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	bad := append([]byte(nil), batches[0]...)
	bad[len(bad)-1] ^= 1
	resp, body = post(bad)
	var p Problem
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Type != "urn:vigie:problem:journal-batch-invalid" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestPurgeRespectsHolds(t *testing.T) { eachBackend(t, testPurgeRespectsHolds) }

func testPurgeRespectsHolds(t *testing.T, e *env) {
	ctx := context.Background()
	batches, recs := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 2, 500, 3)
	for _, b := range batches {
		if _, err := e.arch.Ingest(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// One hold on a time range for the whole school, one on a client
	// over everything, one released (no effect).
	mid := recs[300].Time
	client := recs[10].Client.Addr()
	h1, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: recs[100].Time, To: mid, Reference: "PV 2026/123"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: day0, To: day0.Add(24 * time.Hour), Client: client, Reference: "PV 2026/124"}); err != nil {
		t.Fatal(err)
	}
	h3, _ := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: day0, To: day0.Add(24 * time.Hour), Reference: "PV 2026/001"})
	if _, err := e.arch.ReleaseHold(ctx, "rssi1", "rssi", "", h3.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: mid, To: mid}); err == nil {
		t.Fatal("a hold with an empty range and no reference was accepted")
	}
	// A year later, everything is past retention.
	e.now = day0.Add(400 * 24 * time.Hour)
	rep, err := e.arch.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i, r := range recs {
		if h1.Covers(uai, r.Client.Addr(), r.Time) || r.Client.Addr() == client {
			want = append(want, uint64(i+1))
		}
	}
	var got []uint64
	e.store.Scan(ctx, Query{UAI: uai, From: day0.Add(-time.Hour), To: e.now}, func(c Chain, r *Stored) error {
		got = append(got, r.Seq)
		return nil
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after purge kept %d records, want the %d held ones", len(got), len(want))
	}
	if rep.Deleted["connexions"][uai] != int64(len(recs)-len(want)) {
		t.Fatalf("report %+v, want %d deleted", rep.Deleted, len(recs)-len(want))
	}
	acts := e.audit.actions()
	for _, a := range []string{"journal.hold.place", "journal.hold.release", "journal.purge"} {
		if !contains(acts, a) {
			t.Errorf("%s not audited: %v", a, acts)
		}
	}
	// A resent batch does not bring purged records back.
	ack, err := e.arch.Ingest(ctx, batches[0])
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stored != 0 {
		t.Fatalf("resent old batch stored %d purged records again", ack.Stored)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
