package archive

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/store/pgtest"
	"vigie/journal"
)

// TestMoveToPostgres: a SQLite archive with a gap, a hold and held blocks
// left by a purge moves into PostgreSQL whole: the same records, links,
// gaps and holds, new chains and holds numbered after the moved ones, and
// a second move into the same schema is refused.
func TestMoveToPostgres(t *testing.T) {
	e := newEnvOn(t, backends[0])
	ctx := context.Background()
	cb, crecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 4, 300, 51)
	nb, _ := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 3, 300, 52)
	for i, b := range append(cb, nb...) {
		if i == 1 {
			continue // a gap in the connexions chain
		}
		if _, err := e.arch.Ingest(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: day0, To: day0.Add(24 * time.Hour), Client: crecs[7].Client.Addr(), Reference: "PV 9"}); err != nil {
		t.Fatal(err)
	}
	e.store.PinEdgeKey(ctx, "edge-1", uai, edgeKey.Public().(ed25519.PublicKey))
	// Retention of navigation only, so that connexions' held records
	// go to held_blocks while navigation stays whole.
	if _, err := e.store.Purge(ctx, journal.Connexions, day0.Add(48*time.Hour), mustHolds(t, e.store)); err != nil {
		t.Fatal(err)
	}
	q := Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(72 * time.Hour)}
	before := collect(t, e.store, q)
	gapsBefore, _ := e.store.Gaps(ctx, uai)
	if len(before.recs) == 0 || len(gapsBefore) == 0 {
		t.Fatalf("%d records, gaps %v: the source should have both", len(before.recs), gapsBefore)
	}

	url := pgtest.Shared(t).Database(t)
	dst, err := OpenPostgres(ctx, url, PostgresConfig{Schema: "ac_move"})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	rep, err := Move(ctx, e.store, dst)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Chains != 2 || rep.Rows["holds"] != 1 || rep.Rows["held_blocks"] == 0 || rep.Rows["edge_keys"] != 1 || rep.Records != int64(len(before.recs)) {
		t.Fatalf("report %+v, %d records before", rep, len(before.recs))
	}
	after := collect(t, dst, q)
	if !slices.Equal(before.recs, after.recs) {
		t.Fatalf("%d records after the move, %d before, or they differ", len(after.recs), len(before.recs))
	}
	gapsAfter, _ := dst.Gaps(ctx, uai)
	if !slices.Equal(gapsBefore, gapsAfter) {
		t.Fatalf("gaps %v after, %v before", gapsAfter, gapsBefore)
	}
	// The moved archive goes on: the missing batch fills its gap, and a
	// new hold gets the next number.
	arch2 := newEnvOn(t, backend{"postgres", func(testing.TB) *SQLStore { return dst }})
	arch2.now = e.now
	if _, err := arch2.arch.Ingest(ctx, cb[1]); err != nil {
		t.Fatal(err)
	}
	h, err := dst.PlaceHold(ctx, Hold{UAI: uai, From: day0, To: day0.Add(time.Hour), Reference: "PV 10", PlacedBy: "rssi1", PlacedAt: e.now})
	if err != nil || h.ID != 2 {
		t.Fatalf("hold after the move: %+v, %v", h, err)
	}
	if _, err := Move(ctx, e.store, dst); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second move: %v", err)
	}
}

func mustHolds(t *testing.T, st *SQLStore) []Hold {
	t.Helper()
	hs, err := st.Holds(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}
