package archive

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/journal"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
	"vigie/tstest"
)

// scanned is what one scan delivered: each record's sequence, time, link
// and payload, and the sequence numbers reported outside the period.
type scanned struct {
	recs    []string
	outside []string
}

func collect(t *testing.T, st Store, q Query) scanned {
	t.Helper()
	var out scanned
	if q.Outside != nil {
		q.Outside = func(c Chain, seq uint64) { out.outside = append(out.outside, fmt.Sprintf("%d/%d", c.Ref, seq)) }
	}
	err := st.Scan(context.Background(), q, func(c Chain, r *Stored) error {
		out.recs = append(out.recs, fmt.Sprintf("%d/%d %d %x %x", c.Ref, r.Seq, r.Time.UnixMicro(), r.Link, r.Payload))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out.outside)
	return out
}

// model is what the archive must hold: every record of each chain, by
// chain reference, in sequence order.
type model map[int64][]Stored

// add puts the records of batches into m, as the archive would store them
// (a record held twice is one record).
func (m model) add(t testing.TB, st Store, batches ...[]byte) {
	t.Helper()
	for _, data := range batches {
		b, _, err := segment.ParseBatchHeader(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, ok, err := st.Chain(context.Background(), ChainKey{UAI: b.UAI, Stream: b.Stream, ID: b.Chain}, false)
		if err != nil || !ok {
			t.Fatalf("chain of batch %d not stored: %v", b.FirstSeq, err)
		}
		_, err = segment.DecodeBatch(data, nil, func(r *journal.Record, p []byte, link journal.Hash) error {
			recs := m[c.Ref]
			i, found := slices.BinarySearchFunc(recs, r.Seq, func(s Stored, seq uint64) int { return int(int64(s.Seq) - int64(seq)) })
			if !found {
				m[c.Ref] = slices.Insert(recs, i, Stored{Seq: r.Seq, Time: fromMicros(r.Time.UnixMicro()), Client: r.Client.Addr(), Host: r.Host, Link: link, Payload: slices.Clone(p)})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// scan is Store.Scan's answer, from the model.
func (m model) scan(t *testing.T, chains []Chain, q Query) scanned {
	t.Helper()
	var out scanned
	from, to := micros(q.From), micros(q.To)
	for _, c := range chains {
		if len(q.Streams) > 0 && !slices.Contains(q.Streams, c.Stream) {
			continue
		}
		recs := m[c.Ref]
		in := func(r Stored) bool { t := micros(r.Time); return t >= from && t < to }
		var lo, hi uint64
		for _, r := range recs {
			if in(r) {
				if lo == 0 {
					lo = r.Seq
				}
				hi = r.Seq
			}
		}
		for _, r := range recs {
			if !in(r) {
				if q.Outside != nil && !q.filtered() && r.Seq > lo && r.Seq < hi {
					out.outside = append(out.outside, fmt.Sprintf("%d/%d", c.Ref, r.Seq))
				}
				continue
			}
			if q.filtered() {
				var rec journal.Record
				if err := journal.DecodeRecord(r.Payload, &rec); err != nil {
					t.Fatal(err)
				}
				if !q.matchesContent(&rec) || !q.matchesIdentity(&rec) {
					continue
				}
			}
			out.recs = append(out.recs, fmt.Sprintf("%d/%d %d %x %x", c.Ref, r.Seq, r.Time.UnixMicro(), r.Link, r.Payload))
		}
	}
	slices.Sort(out.outside)
	return out
}

// purge removes from m what Purge must delete.
func (m model) purge(uai string, st journal.Stream, chains []Chain, before time.Time, holds []Hold) {
	for _, c := range chains {
		if c.Stream != st {
			continue
		}
		m[c.Ref] = slices.DeleteFunc(m[c.Ref], func(r Stored) bool {
			if !r.Time.Before(before) {
				return false
			}
			var rec journal.Record
			journal.DecodeRecord(r.Payload, &rec)
			return !slices.ContainsFunc(holds, func(h Hold) bool { return h.Covers(uai, rec.Client.Addr(), r.Time) })
		})
	}
}

// agree checks the store against the model on a set of queries over the
// records' period: whole, cut in the middle (where connexions started
// earlier interleave), by stream, by MAC, user, client, domain and NAT.
func agree(t *testing.T, st *SQLite, m model, recs []journal.Record) []int {
	t.Helper()
	ctx := context.Background()
	chains, err := st.Chains(ctx, uai)
	if err != nil {
		t.Fatal(err)
	}
	times := make([]time.Time, len(recs))
	for i, r := range recs {
		times[i] = r.Time
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	all := func(Chain, uint64) {}
	wide := func(q Query) Query { q.UAI, q.From, q.To = uai, day0.Add(-time.Hour), day0.Add(48*time.Hour); return q }
	var nat netip.AddrPort
	var domain string
	for _, r := range recs {
		if !nat.IsValid() && r.NAT.IsValid() {
			nat = r.NAT
		}
		if _, d, ok := strings.Cut(r.Host, "."); domain == "" && ok && strings.Contains(d, ".") {
			domain = strings.ToUpper(d)
		}
	}
	qs := []Query{
		wide(Query{Outside: all}),
		{UAI: uai, From: times[len(times)/3], To: times[2*len(times)/3], Outside: all},
		{UAI: uai, From: times[len(times)/3], To: times[2*len(times)/3]},
		{UAI: uai, From: times[10], To: times[len(times)-10], Streams: []journal.Stream{journal.Connexions}, Outside: all},
		wide(Query{MAC: recs[5].MAC, Outside: all}),
		wide(Query{User: recs[7].User}),
		{UAI: uai, From: day0.Add(40 * time.Hour), To: day0.Add(48 * time.Hour), Outside: all},
		wide(Query{Client: recs[3].Client.Addr()}),
		{UAI: uai, From: times[len(times)/3], To: times[2*len(times)/3], Client: recs[len(recs)/2].Client.Addr()},
		wide(Query{Domain: domain}),
	}
	if nat.IsValid() {
		qs = append(qs, wide(Query{NAT: nat.Addr(), NATPort: nat.Port()}), wide(Query{NAT: nat.Addr()}),
			wide(Query{NAT: netip.AddrFrom16(nat.Addr().As16()), NATPort: nat.Port()}),
			wide(Query{NAT: nat.Addr(), EndFrom: times[2*len(times)/3]}))
	}
	var counts []int
	for i, q := range qs {
		want := m.scan(t, chains, q)
		got := collect(t, st, q)
		if !slices.Equal(got.recs, want.recs) {
			t.Errorf("query %d: %d records, want %d (or others)", i, len(got.recs), len(want.recs))
		}
		if !slices.Equal(got.outside, want.outside) {
			t.Errorf("query %d: %d records reported outside, want %d", i, len(got.outside), len(want.outside))
		}
		counts = append(counts, len(want.recs))
	}
	return counts
}

// blockRows returns the kind of every stored block, by table.
func blockRows(t *testing.T, st *SQLite) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	for _, table := range blockTables {
		rows, err := st.r.Query(`SELECT kind FROM ` + table + ` ORDER BY chain, first`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k int
			rows.Scan(&k)
			out[table] = append(out[table], k)
		}
		rows.Close()
	}
	return out
}

func TestBlocksAgreeWithModel(t *testing.T) { eachBackend(t, testBlocksAgreeWithModel) }

func testBlocksAgreeWithModel(t *testing.T, e *env) {
	ctx := context.Background()
	cb, crecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 5, 1500, 11)
	nb, nrecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 3, 5000, 12)
	m := model{}
	// Late and repeated batches.
	for _, b := range [][]byte{cb[0], cb[2], cb[1], cb[4], cb[2], nb[0], nb[2]} {
		if _, err := e.arch.Ingest(ctx, b); err != nil {
			t.Fatal(err)
		}
		m.add(t, e.store, b)
	}
	// One row per batch, stored as the edge sealed it; no per-record row.
	if k := blockRows(t, e.store); !slices.Equal(k["sealed_blocks"], []int{1, 1, 1, 1, 1, 1}) || len(k["held_blocks"]) != 0 {
		t.Fatalf("blocks stored: %v, want the 6 distinct batches whole", k)
	}
	all := append(slices.Clone(crecs), nrecs...)
	for i, n := range agree(t, e.store, m, all) {
		// Query 6 is a window with no record.
		if n == 0 && i != 6 {
			t.Errorf("query %d selects nothing: it tests nothing", i)
		}
	}
	// Fill the navigation gap; cb[3] stays missing.
	if _, err := e.arch.Ingest(ctx, nb[1]); err != nil {
		t.Fatal(err)
	}
	m.add(t, e.store, nb[1])
	agree(t, e.store, m, all)

	// A query by a client no record has decodes no block.
	before := e.store.decoded.Load()
	got := collect(t, e.store, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour), Client: netip.MustParseAddr("203.0.113.250")})
	if len(got.recs) != 0 || e.store.decoded.Load() != before {
		t.Fatalf("query of an absent client: %d records, %d blocks decoded", len(got.recs), e.store.decoded.Load()-before)
	}
	// Nor does a search for flows still open after every record ended.
	got = collect(t, e.store, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour), NAT: crecs[0].NAT.Addr(), EndFrom: day0.Add(47 * time.Hour)})
	if len(got.recs) != 0 || e.store.decoded.Load() != before {
		t.Fatalf("query after every flow ended: %d records, %d blocks decoded", len(got.recs), e.store.decoded.Load()-before)
	}

	// A purge that cuts through the period, with holds: the model
	// loses the same records, and what a hold keeps of wholly older
	// blocks moves to the hold table.
	mid := crecs[3000].Time
	h1, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: crecs[1000].Time, To: crecs[1200].Time, Reference: "PV 1"})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := e.arch.PlaceHold(ctx, "rssi1", "rssi", "", Hold{UAI: uai, From: day0, To: mid, Client: crecs[20].Client.Addr(), Reference: "PV 2"})
	if err != nil {
		t.Fatal(err)
	}
	e.now = mid.Add(e.arch.opt.Retention.Connexions)
	rep, err := e.arch.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chains, _ := e.store.Chains(ctx, uai)
	n := 0
	for _, recs := range m {
		n += len(recs)
	}
	navCut := e.now.Add(-e.arch.opt.Retention.Navigation)
	m.purge(uai, journal.Connexions, chains, mid, []Hold{h1, h2})
	m.purge(uai, journal.Navigation, chains, navCut, []Hold{h1, h2})
	for _, recs := range m {
		n -= len(recs)
	}
	if got := rep.Totals["connexions"] + rep.Totals["navigation"]; got != int64(n) || n == 0 {
		t.Fatalf("purge deleted %d records, want %d", got, n)
	}
	agree(t, e.store, m, all)
	if k := blockRows(t, e.store); len(k["held_blocks"]) == 0 {
		t.Fatalf("no block in the hold table after a purge under holds: %v", k)
	}
	// Released holds: the next purge takes what they kept.
	for _, h := range []Hold{h1, h2} {
		if _, err := e.arch.ReleaseHold(ctx, "rssi1", "rssi", "", h.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.arch.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	m.purge(uai, journal.Connexions, chains, mid, nil)
	m.purge(uai, journal.Navigation, chains, navCut, nil)
	agree(t, e.store, m, all)
	if k := blockRows(t, e.store); len(k["held_blocks"]) != 0 {
		t.Fatalf("held blocks left after the holds were released: %v", k)
	}
}

// TestBlocksInterleavedTimes stores records whose times are not in
// sequence order (a connection is journaled when it ends, with the time it
// started): the records outside a period but inside its sequence range
// are reported, and a block wholly outside the period, between two that
// are in it, is still read.
func TestBlocksInterleavedTimes(t *testing.T) { eachBackend(t, testBlocksInterleavedTimes) }

func testBlocksInterleavedTimes(t *testing.T, e *env) {
	ctx := context.Background()
	c, _, err := e.store.Chain(ctx, ChainKey{UAI: uai, Stream: journal.Connexions, ID: journal.ChainID{9}}, true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * maxBlockRecords
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
		rows = append(rows, Stored{Seq: seq, Time: tm, Link: journal.Hash{byte(seq), byte(seq >> 8)}, Payload: fmt.Appendf(nil, "record %d", seq)})
	}
	for _, cut := range [][2]int{{0, maxBlockRecords}, {maxBlockRecords, maxBlockRecords + 100}, {maxBlockRecords + 100, n}} {
		if _, err := e.store.Put(ctx, c, rows[cut[0]:cut[1]], Gap{First: rows[cut[0]].Seq, Last: rows[cut[1]-1].Seq}); err != nil {
			t.Fatal(err)
		}
	}
	m := model{c.Ref: rows}
	chains := []Chain{c}
	for _, q := range []Query{
		{UAI: uai, From: day0.Add(-2 * time.Hour), To: day0.Add(48 * time.Hour), Outside: func(Chain, uint64) {}},
		// The middle: from the end of the first block to well past the
		// block of old records.
		{UAI: uai, From: day0.Add((maxBlockRecords - 50) * time.Second), To: day0.Add((maxBlockRecords + 900) * time.Second), Outside: func(Chain, uint64) {}},
	} {
		want, got := m.scan(t, chains, q), collect(t, e.store, q)
		if !slices.Equal(got.recs, want.recs) || !slices.Equal(got.outside, want.outside) {
			t.Fatalf("got %d records, %d outside; want %d, %d", len(got.recs), len(got.outside), len(want.recs), len(want.outside))
		}
	}
	// Get and Links find any record, links given or chained.
	for _, seq := range []uint64{1, 2, maxBlockRecords, maxBlockRecords + 1, n} {
		r, ok, err := e.store.Get(ctx, c.Ref, seq)
		if err != nil || !ok || r.Link != rows[seq-1].Link || string(r.Payload) != string(rows[seq-1].Payload) {
			t.Fatalf("get %d: %v %v %+v", seq, ok, err, r)
		}
	}
	links, err := e.store.Links(ctx, c.Ref, maxBlockRecords-1, maxBlockRecords+2)
	if err != nil || len(links) != 4 || links[maxBlockRecords+1] != rows[maxBlockRecords].Link {
		t.Fatalf("links: %v, %v", links, err)
	}
}

// TestTailsGiveWayToTheSealedSegment: the open tail shipped before its
// segment was sealed is replaced by the sealed segment, whole.
func TestTailsGiveWayToTheSealedSegment(t *testing.T) {
	eachBackend(t, testTailsGiveWayToTheSealedSegment)
}

func testTailsGiveWayToTheSealedSegment(t *testing.T, e *env) {
	ctx := context.Background()
	l, err := segment.Open(segment.Options{Dir: t.TempDir(), UAI: uai, Stream: journal.Navigation, Key: edgeKey, CommitInterval: time.Millisecond, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := newGen(5)
	m := model{}
	var recs []journal.Record
	from := uint64(1)
	for round, n := range []int{100, 100, 50} {
		for range n {
			r := g.Next(journal.Navigation)
			journal.Canonicalize(&r)
			recs = append(recs, r)
			l.Append(&r)
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if round == 2 {
			break
		}
		data, b, err := l.Tail(from)
		if err != nil || b == nil {
			t.Fatal(err)
		}
		if _, err := e.arch.Ingest(ctx, data); err != nil {
			t.Fatal(err)
		}
		m.add(t, e.store, data)
		from = b.LastSeq() + 1
	}
	if k := blockRows(t, e.store); len(k["sealed_blocks"]) != 2 {
		t.Fatalf("after two tails: %v", k)
	}
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	l.WaitSealed(ctx)
	segs, _ := l.Sealed()
	data, _ := osReadFile(t, segs[0].Path)
	ack, err := e.arch.Ingest(ctx, data)
	if err != nil || ack.Stored != 50 || ack.Duplicates != 200 {
		t.Fatalf("%+v %v", ack, err)
	}
	m.add(t, e.store, data)
	if k := blockRows(t, e.store); !slices.Equal(k["sealed_blocks"], []int{kindBatch}) {
		t.Fatalf("after the sealed segment: %v, want it alone", k)
	}
	agree(t, e.store, m, recs)
	// The same segment again changes nothing.
	if ack, err := e.arch.Ingest(ctx, data); err != nil || ack.Duplicates != 250 {
		t.Fatalf("%+v %v", ack, err)
	}
	agree(t, e.store, m, recs)
}

func TestDamagedBlockIsAnError(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cb, _ := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 1, 200, 31)
	if _, err := e.arch.Ingest(ctx, cb[0]); err != nil {
		t.Fatal(err)
	}
	var data []byte
	if err := e.store.r.QueryRow(`SELECT data FROM sealed_blocks`).Scan(&data); err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(data)
	flipped[len(flipped)-100] ^= 0x10
	for name, damaged := range map[string][]byte{"cut short": data[:len(data)-40], "bit flipped": flipped} {
		if _, err := e.store.w.Exec(`UPDATE sealed_blocks SET data = ?`, damaged); err != nil {
			t.Fatal(err)
		}
		// The scan must say so, not return fewer records.
		err := e.store.Scan(ctx, Query{UAI: uai, From: day0.Add(-time.Hour), To: day0.Add(48 * time.Hour)}, func(Chain, *Stored) error { return nil })
		if !errors.Is(err, errBadBlock) {
			t.Fatalf("%s: scan of a damaged block: %v", name, err)
		}
	}
}

// TestMigrateFromRows: an archive of the per-record layout is converted
// when opened, and then holds the same records, chains and gaps.
func TestMigrateFromRows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cb, crecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 3, 3000, 21)
	nb, nrecs := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 3, 3000, 22)
	m := model{}
	for _, b := range [][]byte{cb[0], cb[2], nb[0], nb[1], nb[2]} {
		if _, err := e.arch.Ingest(ctx, b); err != nil {
			t.Fatal(err)
		}
		m.add(t, e.store, b)
	}
	path := filepath.Join(t.TempDir(), "legacy.db")
	if err := WriteLegacy(ctx, e.store, uai, path); err != nil {
		t.Fatal(err)
	}
	st, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var tables int
	st.r.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('records', 'blocks', 'block_chains')`).Scan(&tables)
	if tables != 0 {
		t.Fatal("the old tables are still there")
	}
	for _, f := range []func(*SQLite) (any, error){
		func(s *SQLite) (any, error) { return s.Chains(ctx, uai) },
		func(s *SQLite) (any, error) { return s.Gaps(ctx, uai) },
	} {
		a, err1 := f(e.store)
		b, err2 := f(st)
		if err1 != nil || err2 != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("before %v (%v), after %v (%v)", a, err1, b, err2)
		}
	}
	agree(t, st, m, append(slices.Clone(crecs), nrecs...))
	if n, err := st.MigrateBlocks(ctx); err != nil || n != 0 {
		t.Fatalf("second migration: %d chains, %v", n, err)
	}
	// The migrated archive goes on: the missing batch fills its gap.
	arch, err := New(Options{Store: st, Now: func() time.Time { return e.now }, EdgeKey: e.arch.opt.EdgeKey})
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := arch.Ingest(ctx, cb[1]); err != nil || ack.Stored != 3000 {
		t.Fatalf("%+v %v", ack, err)
	}
	m.add(t, st, cb[1])
	agree(t, st, m, append(slices.Clone(crecs), nrecs...))
	if g, _ := st.Gaps(ctx, uai); len(g) != 0 {
		t.Fatalf("gaps left: %v", g)
	}
	// RunPurge migrates too (here: nothing left) and purges.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { arch.RunPurge(rctx, time.Hour); close(done) }()
	tstest.WaitFor(time.Minute, func() bool { return testutil.ToFloat64(arch.m.purgeRuns) != 0 })
	cancel()
	<-done
	if testutil.ToFloat64(arch.m.purgeRuns) == 0 {
		t.Fatal("RunPurge did not run")
	}
}

func TestFilter(t *testing.T) {
	var fb filterBuilder
	g := newGen(3)
	var in []journal.Record
	for range 5000 {
		r := g.Next(journal.Connexions)
		fb.add(&r)
		in = append(in, r)
	}
	f := fb.build()
	for _, r := range in {
		for _, q := range []Query{{Client: r.Client.Addr()}, {NAT: r.NAT.Addr(), NATPort: r.NAT.Port()}, {NAT: r.NAT.Addr()}, {Domain: r.Host}} {
			for _, h := range q.probes() {
				if !mayHold(f, h) {
					t.Fatalf("filter misses %+v", q)
				}
			}
		}
	}
	// False positives stay near the design's 1 %.
	fp := 0
	for i := range 10000 {
		q := Query{NAT: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), NATPort: uint16(10000 + i)}
		if mayHold(f, q.probes()[0]) {
			fp++
		}
	}
	if fp > 300 {
		t.Fatalf("%d false positives in 10000", fp)
	}
	if !mayHold(nil, 42) || !mayHold([]byte{0}, 42) {
		t.Fatal("an empty or damaged filter must let the block be read")
	}
}

func TestCountersStartAtZero(t *testing.T) {
	e := newEnv(t)
	n, err := testutil.GatherAndCount(e.reg, "vigie_archive_batches_total", "vigie_archive_records_total", "vigie_archive_purged_records_total")
	if err != nil || n != 6+2+2 {
		t.Fatalf("%d series exported before any batch (%v), want 10", n, err)
	}
}

func newGen(seed uint64) *journaltest.Gen { return journaltest.New(seed, uai, day0) }

func osReadFile(t *testing.T, path string) ([]byte, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data, nil
}
