package archive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/journal"
	"vigie/tstest"
)

// scanned is what one scan delivered: each record's sequence, time, link
// and payload, and the sequence numbers reported outside the period.
type scanned struct {
	recs    []string
	outside []string
}

func collect(t *testing.T, scan func(context.Context, Query, func(Chain, *Stored) error) error, q Query) scanned {
	t.Helper()
	var out scanned
	if q.Outside != nil {
		q.Outside = func(c Chain, seq uint64) { out.outside = append(out.outside, fmt.Sprintf("%d/%d", c.Ref, seq)) }
	}
	err := scan(context.Background(), q, func(c Chain, r *Stored) error {
		out.recs = append(out.recs, fmt.Sprintf("%d/%d %d %x %x", c.Ref, r.Seq, r.Time.UnixMicro(), r.Link, r.Payload))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// agree checks that blocks and rows give the same answer to a set of
// queries over recs' period: whole, cut in the middle (where connexions
// started earlier interleave), with MAC and user filters.
func agree(t *testing.T, st *SQLite, recs []journal.Record) {
	t.Helper()
	times := make([]time.Time, len(recs))
	for i, r := range recs {
		times[i] = r.Time
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	all := func(Chain, uint64) {}
	qs := []Query{
		{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour), Outside: all},
		{UAI: uai, From: times[len(times)/3], To: times[2*len(times)/3], Outside: all},
		{UAI: uai, From: times[len(times)/3], To: times[2*len(times)/3]},
		{UAI: uai, From: times[10], To: times[len(times)-10], Streams: []journal.Stream{journal.Connexions}, Outside: all},
		{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour), MAC: recs[5].MAC, Outside: all},
		{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour), User: recs[7].User},
		{UAI: uai, From: day0.Add(40 * time.Hour), To: day0.Add(48 * time.Hour), Outside: all},
	}
	for i, q := range qs {
		rows := collect(t, st.ScanRows, q)
		blocks := collect(t, st.Scan, q)
		slices.Sort(rows.outside)
		slices.Sort(blocks.outside)
		if !slices.Equal(rows.recs, blocks.recs) {
			t.Errorf("query %d: blocks gave %d records, rows %d, or others", i, len(blocks.recs), len(rows.recs))
		}
		if !slices.Equal(rows.outside, blocks.outside) {
			t.Errorf("query %d: blocks reported %d records outside, rows %d", i, len(blocks.outside), len(rows.outside))
		}
	}
}

// TestBlocksInterleavedTimes stores records whose times are not in
// sequence order (a connection is journaled when it ends, with the time it
// started): the records outside a period but inside its sequence range
// are reported alike, and a block wholly outside the period, between two
// that are in it, is still read.
func TestBlocksInterleavedTimes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, _, err := e.store.Chain(ctx, ChainKey{UAI: uai, Stream: journal.Connexions, ID: journal.ChainID{9}}, true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * maxBlockRecords
	var recs []journal.Record
	var rows []Stored
	for seq := uint64(1); seq <= n; seq++ {
		tm := day0.Add(time.Duration(seq) * time.Second)
		switch {
		case seq%7 == 0:
			tm = tm.Add(-30 * time.Minute)
		case seq > maxBlockRecords && seq <= maxBlockRecords+100:
			// One whole block (Put cuts at a sequence break) long before.
			tm = day0.Add(-time.Hour)
		}
		r := Stored{Seq: seq, Time: tm, Link: journal.Hash{byte(seq), byte(seq >> 8)}, Payload: fmt.Appendf(nil, "record %d", seq)}
		rows = append(rows, r)
		recs = append(recs, journal.Record{Time: tm})
	}
	for _, cut := range [][2]int{{0, maxBlockRecords}, {maxBlockRecords, maxBlockRecords + 100}, {maxBlockRecords + 100, n}} {
		if _, err := e.store.Put(ctx, c, rows[cut[0]:cut[1]], Gap{First: rows[cut[0]].Seq, Last: rows[cut[1]-1].Seq}); err != nil {
			t.Fatal(err)
		}
	}
	agree(t, e.store, recs)
	// The middle of the period: from the end of the first block to well
	// past the block of old records.
	q := Query{UAI: uai, From: day0.Add((maxBlockRecords - 50) * time.Second), To: day0.Add((maxBlockRecords + 900) * time.Second), Outside: func(Chain, uint64) {}}
	rs, bs := collect(t, e.store.ScanRows, q), collect(t, e.store.Scan, q)
	if len(rs.outside) < 100 || len(rs.recs) == 0 || !slices.Equal(rs.recs, bs.recs) || len(rs.outside) != len(bs.outside) {
		t.Fatalf("rows: %d records, %d outside; blocks: %d records, %d outside", len(rs.recs), len(rs.outside), len(bs.recs), len(bs.outside))
	}
}

func countBlocks(t *testing.T, st *SQLite) int {
	t.Helper()
	var n int
	if err := st.r.QueryRow(`SELECT count(*) FROM blocks`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBlocksAgreeWithRows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cb, crecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 5, 1500, 11)
	nb, nrecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 3, 5000, 12)
	// Late and repeated batches: blocks are cut where the sequence breaks.
	for _, b := range [][]byte{cb[0], cb[2], cb[1], cb[4], cb[2], nb[0], nb[2]} {
		if _, err := e.arch.Ingest(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := countBlocks(t, e.store); n < 7 {
		t.Fatalf("%d blocks: the ingest did not write blocks", n)
	}
	agree(t, e.store, append(slices.Clone(crecs), nrecs...))
	// Fill the navigation gap; cb[3] stays missing.
	if _, err := e.arch.Ingest(ctx, nb[1]); err != nil {
		t.Fatal(err)
	}
	agree(t, e.store, append(slices.Clone(crecs), nrecs...))
	var n int
	e.store.Scan(ctx, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour)}, func(Chain, *Stored) error { n++; return nil })
	if n != 4*1500+3*5000 {
		t.Fatalf("scan saw %d records, want %d", n, 4*1500+3*5000)
	}

	// A purge that cuts through the period, with a hold in it: blocks
	// lose exactly the records the rows lose.
	mid := crecs[3000].Time
	if _, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: crecs[1000].Time, To: crecs[1200].Time, Reference: "PV 1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: day0, To: mid, Client: crecs[20].Client.Addr(), Reference: "PV 2"}); err != nil {
		t.Fatal(err)
	}
	e.now = mid.Add(e.arch.opt.Retention.Connexions)
	if _, err := e.arch.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	agree(t, e.store, append(slices.Clone(crecs), nrecs...))
	var kept int
	e.store.Scan(ctx, Query{UAI: uai, From: day0.Add(-time.Hour), To: mid, Streams: []journal.Stream{journal.Connexions}}, func(Chain, *Stored) error { kept++; return nil })
	if kept == 0 || kept > 400 {
		t.Fatalf("%d records older than the cutoff kept, want only held ones", kept)
	}
}

func TestMigrateBlocks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cb, crecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 3, 3000, 21)
	nb, nrecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 3, 3000, 22)
	for _, b := range append(cb, nb[:2]...) {
		if _, err := e.arch.Ingest(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	want := collect(t, e.store.ScanRows, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour)})
	// An archive from before blocks: no blocks, no chain listed.
	if _, err := e.store.w.Exec(`DELETE FROM blocks; DELETE FROM block_chains`); err != nil {
		t.Fatal(err)
	}
	got := collect(t, e.store.Scan, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour)})
	if !slices.Equal(got.recs, want.recs) {
		t.Fatalf("before migration, scan gave %d records, want %d", len(got.recs), len(want.recs))
	}
	// A batch arriving before the migration writes its blocks; the
	// migration rebuilds them with the rest.
	if _, err := e.arch.Ingest(ctx, nb[2]); err != nil {
		t.Fatal(err)
	}
	n, err := e.store.MigrateBlocks(ctx)
	if err != nil || n != 2 {
		t.Fatalf("migrated %d chains, %v; want 2", n, err)
	}
	if countBlocks(t, e.store) < 5 {
		t.Fatal("migration built no blocks")
	}
	for _, ref := range []int64{1, 2} {
		if ok, _ := e.store.hasBlocks(ctx, ref); !ok {
			t.Fatalf("chain %d not listed after migration", ref)
		}
	}
	agree(t, e.store, append(slices.Clone(crecs), nrecs...))
	if n, err := e.store.MigrateBlocks(ctx); err != nil || n != 0 {
		t.Fatalf("second migration: %d chains, %v", n, err)
	}
	// RunPurge migrates too (here: nothing left) and purges.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.arch.RunPurge(rctx, time.Hour); close(done) }()
	tstest.WaitFor(time.Minute, func() bool { return testutil.ToFloat64(e.arch.m.purgeRuns) != 0 })
	cancel()
	<-done
	if testutil.ToFloat64(e.arch.m.purgeRuns) == 0 {
		t.Fatal("RunPurge did not run")
	}
}

func TestDamagedBlockIsAnError(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cb, _ := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 1, 200, 31)
	if _, err := e.arch.Ingest(ctx, cb[0]); err != nil {
		t.Fatal(err)
	}
	// Cut the block short: the scan must say so, not return fewer records.
	if _, err := e.store.w.Exec(`UPDATE blocks SET data = substr(data, 1, length(data) - 40)`); err != nil {
		t.Fatal(err)
	}
	err := e.store.Scan(ctx, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour)}, func(Chain, *Stored) error { return nil })
	if !errors.Is(err, errBadBlock) {
		t.Fatalf("scan of a damaged block: %v", err)
	}
}

func TestCountersStartAtZero(t *testing.T) {
	e := newEnv(t)
	n, err := testutil.GatherAndCount(e.reg, "vigie_archive_batches_total", "vigie_archive_records_total", "vigie_archive_purged_records_total")
	if err != nil || n != 6+2+2 {
		t.Fatalf("%d series exported before any batch (%v), want 10", n, err)
	}
}
