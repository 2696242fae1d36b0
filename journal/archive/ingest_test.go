package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vigie/journal"
)

// TestIngestRefusesBreaksInSequence: a batch is checked against the
// records stored on either side of it, not only against itself. An edge
// that lost its disk and reused its chain identity ships batches that
// verify one by one but do not continue what the archive holds.
func TestIngestRefusesBreaksInSequence(t *testing.T) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	a, _ := edgeBatches(t, dirA, edgeKey, journal.Connexions, 2, 100, 1)
	os.MkdirAll(dirB, 0o750)
	chainJSON, err := os.ReadFile(filepath.Join(dirA, "chain.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dirB, "chain.json"), chainJSON, 0o640)
	b, _ := edgeBatches(t, dirB, edgeKey, journal.Connexions, 2, 100, 99)

	for _, tc := range []struct {
		name         string
		stored, next []byte
		text         string
	}{
		{"after the stored batch", a[0], b[1], "does not follow stored record 100"},
		{"before the stored batch", a[1], b[0], "stored record 101 does not follow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if _, err := e.arch.Ingest(ctx, tc.stored); err != nil {
				t.Fatal(err)
			}
			_, err := e.arch.Ingest(ctx, tc.next)
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want a conflict: %s", err, tc.text)
			}
		})
	}
}

// TestIngestExpiredRecords: records of a batch already past retention are
// not stored, except those a legal hold covers; the rest of the batch is.
// Sent again, the batch is all duplicates and expired records.
func TestIngestExpiredRecords(t *testing.T) {
	ctx := context.Background()
	const n = 300
	batches, recs := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 1, n, 1)
	e := newEnv(t)
	times := make([]time.Time, n)
	for i, r := range recs {
		times[i] = r.Time
	}
	slices.SortFunc(times, time.Time.Compare)
	cutoff := times[n/2]
	e.now = cutoff.Add(e.arch.opt.Retention.Navigation)
	heldClient := recs[0].Client.Addr()
	if _, err := e.store.PlaceHold(ctx, Hold{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour), Client: heldClient,
		Reference: "PV-1", PlacedBy: "rssi", PlacedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	var keep []uint64
	for i, r := range recs {
		if !r.Time.Before(cutoff) || r.Client.Addr() == heldClient {
			keep = append(keep, uint64(i+1))
		}
	}
	expired := n - len(keep)
	if expired == 0 || len(keep) == n {
		t.Fatalf("%d of %d records expire: the test needs some of each", expired, n)
	}

	ack, err := e.arch.Ingest(ctx, batches[0])
	if err != nil || ack.Expired != expired || ack.Stored != len(keep) || ack.Duplicates != 0 {
		t.Fatalf("ack %+v, %v; want %d stored, %d expired", ack, err, len(keep), expired)
	}
	var got []uint64
	err = e.store.Scan(ctx, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour)}, func(c Chain, r *Stored) error {
		got = append(got, r.Seq)
		return nil
	})
	if err != nil || !slices.Equal(got, keep) {
		t.Fatalf("stored records %v (%v), want %v", got, err, keep)
	}
	ack, err = e.arch.Ingest(ctx, batches[0])
	if err != nil || ack.Expired != expired || ack.Stored != 0 || ack.Duplicates != len(keep) {
		t.Fatalf("sent again: ack %+v, %v; want %d duplicates, %d expired", ack, err, len(keep), expired)
	}
}
