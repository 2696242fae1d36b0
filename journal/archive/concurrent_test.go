package archive

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/segment"
)

// storedRows is every block row with a hash of its bytes, in chain order.
func storedRows(t *testing.T, st *SQLite) []string {
	t.Helper()
	var out []string
	for _, table := range blockTables {
		rows, err := st.r.Query(`SELECT chain, first, last, n, tmin, tmax, tend, kind, last_link, bloom, data FROM ` + table + ` ORDER BY chain, first`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var chain, first, last, n, tmin, tmax, tend, kind int64
			var link, bloom, data []byte
			if err := rows.Scan(&chain, &first, &last, &n, &tmin, &tmax, &tend, &kind, &link, &bloom, &data); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %d %d-%d n%d t%d-%d-%d k%d %x %x %x", table, chain, first, last, n, tmin, tmax, tend, kind, link, sha256.Sum256(bloom), sha256.Sum256(data)))
		}
		rows.Close()
	}
	return out
}

// TestConcurrentIngestStoresInOrder: a batch verified while its
// predecessor is still being verified waits for it before it is stored,
// so no gap opens (no gap audit entry, alert or re-ship request), and the
// archive holds the same rows, byte for byte, as after one batch at a
// time.
func TestConcurrentIngestStoresInOrder(t *testing.T) {
	ctx := context.Background()
	batches, _ := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 4, 400, 61)
	seq := newEnv(t)
	for _, b := range batches {
		if _, err := seq.arch.Ingest(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	want := storedRows(t, seq.store)

	e := newEnv(t)
	h, _, err := segment.ParseBatchHeader(batches[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	key := ChainKey{UAI: h.UAI, Stream: h.Stream, ID: h.Chain}
	// The first batch is "being verified" (held in flight by the test)
	// while the later ones arrive and are verified at once.
	f := e.arch.board(key, h.FirstSeq, h.LastSeq())
	done := make(chan error, len(batches))
	for _, b := range slices.Backward(batches[1:]) {
		go func() {
			_, err := e.arch.Ingest(ctx, b)
			done <- err
		}()
	}
	select {
	case err := <-done:
		t.Fatalf("a later batch was stored before the first one ended: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := e.arch.Ingest(ctx, batches[0]); err != nil {
		t.Fatal(err)
	}
	e.arch.land(key, f)
	for range batches[1:] {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := e.audit.actions(); len(got) != 0 {
		t.Fatalf("audit entries %v, want none (no gap)", got)
	}
	if got := storedRows(t, e.store); !slices.Equal(got, want) {
		t.Fatalf("rows after concurrent ingest:\n%v\nwant:\n%v", got, want)
	}
	if len(e.arch.flights) != 0 {
		t.Fatalf("flights left: %v", e.arch.flights)
	}
}
