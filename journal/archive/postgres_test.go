package archive

import (
	"context"
	"slices"
	"testing"
	"time"

	"vigie/controlplane/store/pgtest"
	"vigie/journal"
)

func partitions(t *testing.T, st *SQLStore) []string {
	t.Helper()
	rows, err := st.r.Query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = p.relnamespace WHERE p.relname = 'sealed_blocks' AND n.nspname = current_schema() ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// TestPostgresPartitions: blocks go to the partition of their stream and
// month, the months ahead exist from the start, and retention drops a
// month whole once it is past, after copying what a hold keeps into the
// hold table.
func TestPostgresPartitions(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	st, err := OpenPostgres(context.Background(), pgtest.Shared(t).Database(t), PostgresConfig{Schema: "ac_parts", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, backend{"postgres", func(testing.TB) *SQLStore { return st }})
	ctx := context.Background()
	ahead := partitions(t, st)
	for _, want := range []string{"sealed_blocks_s1_202612", "sealed_blocks_s2_202701", "sealed_blocks_s1_202702"} {
		if !slices.Contains(ahead, want) {
			t.Fatalf("partitions %v, want %s among them", ahead, want)
		}
	}
	cb, crecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 2, 500, 41)
	for _, b := range cb {
		if _, err := e.arch.Ingest(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	march := "sealed_blocks_s1_202603" // connexions, March 2026
	if !slices.Contains(partitions(t, st), march) {
		t.Fatalf("no partition %s for March's blocks: %v", march, partitions(t, st))
	}
	var n int
	st.r.QueryRow(`SELECT count(*) FROM ` + march).Scan(&n)
	if n != 2 {
		t.Fatalf("%d blocks in %s, want the 2 batches", n, march)
	}
	client := crecs[3].Client.Addr()
	if _, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: day0, To: day0.Add(24 * time.Hour), Client: client, Reference: "PV 7"}); err != nil {
		t.Fatal(err)
	}
	e.now = time.Date(2027, 4, 15, 0, 0, 0, 0, time.UTC)
	rep, err := e.arch.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(partitions(t, st), march) {
		t.Fatal("March's partition was not dropped")
	}
	var held int
	for _, r := range crecs {
		if r.Client.Addr() == client {
			held++
		}
	}
	if rep.Deleted["connexions"][uai] != int64(len(crecs)-held) {
		t.Fatalf("purge report %v, want %d deleted", rep.Deleted, len(crecs)-held)
	}
	got := collect(t, st, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour)})
	if len(got.recs) != held || held == 0 {
		t.Fatalf("%d records left, want the %d held", len(got.recs), held)
	}
}
