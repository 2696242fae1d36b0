package archive

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"vigie/controlplane/store/pgtest"
	"vigie/journal"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
)

// sealBatches runs a real edge journal over recs and returns the batches
// it seals, cut after each size in sizes.
func sealBatches(t *testing.T, s journal.Stream, recs []journal.Record, sizes []int) [][]byte {
	t.Helper()
	return sealCuts(t, t.TempDir(), edgeKey, s, recs, sizes)
}

// TestSearchByColumnsAgrees compares searches that read blocks column by
// column with the same searches decoding every block whole, and with the
// model, on records with the cases a column reader can get wrong: the
// client searched for at the first and last record of blocks and of runs
// between marks, blocks shorter than a run, the same address in the NAT
// column of other records, IPv4-mapped NAT addresses, IPv6 and absent
// clients, hosts that are the searched domain, a parent, a subdomain, in
// capitals with a final dot, or merely end with the same letters; then
// blocks stored without marks (an archive made before them), and a
// damaged mark.
func TestSearchByColumnsAgrees(t *testing.T) { eachBackend(t, testSearchByColumnsAgrees) }

func testSearchByColumnsAgrees(t *testing.T, e *env) {
	ctx := context.Background()
	target := netip.MustParseAddr("10.10.1.14")
	v6 := netip.MustParseAddr("2001:db8::14")
	mapped := netip.AddrFrom16(netip.MustParseAddr("198.51.100.10").As16())
	hosts := []string{"site420.fr", "www.site420.fr", "WWW.SITE420.FR.", "xsite420.fr", "site420.fr.example.com", "cdn.www.site420.fr"}

	g := journaltest.New(23, uai, day0)
	navSizes := []int{1, 64, 65, 129, 700, 300}
	var nav []journal.Record
	for _, n := range navSizes {
		for i := range n {
			r := g.Next(journal.Navigation)
			if i == 0 || i == n-1 || i%segment.MarkEvery == 0 || i%segment.MarkEvery == segment.MarkEvery-1 {
				r.Client = netip.AddrPortFrom(target, 40000)
			}
			if i%31 == 5 {
				r.Host = hosts[(i/31)%len(hosts)]
			}
			if i%83 == 7 {
				r.Client = netip.AddrPortFrom(v6, 1234)
			}
			if i%79 == 9 {
				r.Client = netip.AddrPort{}
			}
			journal.Canonicalize(&r)
			nav = append(nav, r)
		}
	}
	flowSizes := []int{63, 128, 500, 2}
	var flows []journal.Record
	for _, n := range flowSizes {
		for i := range n {
			r := g.Flow()
			switch {
			case i%97 == 3:
				// The address searched for, as another record's
				// translated source.
				r.NAT = netip.AddrPortFrom(target, 40000)
			case i%89 == 4:
				r.NAT = netip.AddrPortFrom(mapped, r.NAT.Port())
			case i%13 == 0 || i == n-1:
				r.Client = netip.AddrPortFrom(target, 40001)
			}
			journal.Canonicalize(&r)
			flows = append(flows, r)
		}
	}
	m := model{}
	for _, batches := range [][][]byte{sealBatches(t, journal.Navigation, nav, navSizes), sealBatches(t, journal.Connexions, flows, flowSizes)} {
		for _, b := range batches {
			if _, err := e.arch.Ingest(ctx, b); err != nil {
				t.Fatal(err)
			}
			m.add(t, e.store, b)
		}
	}
	chains, err := e.store.Chains(ctx, uai)
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	for _, r := range append(slices.Clone(nav), flows...) {
		times = append(times, r.Time)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	wide := func(q Query) Query { q.UAI, q.From, q.To = uai, day0.Add(-time.Hour), day0.Add(48*time.Hour); return q }
	window := func(q Query, from, to int) Query { q.UAI, q.From, q.To = uai, times[from], times[to]; return q }
	type query struct {
		name  string
		q     Query
		empty bool // selects nothing on purpose
	}
	qs := []query{
		{"client", wide(Query{Client: target}), false},
		{"client navigation", wide(Query{Client: target, Streams: []journal.Stream{journal.Navigation}}), false},
		{"client ipv6", wide(Query{Client: v6}), false},
		{"client mapped", wide(Query{Client: netip.AddrFrom16(target.As16())}), true},
		{"client absent", wide(Query{Client: netip.MustParseAddr("10.99.0.1")}), true},
		{"client in a window", window(Query{Client: target}, 64, 700), false},
		{"client in a window cut at a run", window(Query{Client: target}, 65, 129), false},
		{"domain", wide(Query{Domain: "site420.fr"}), false},
		{"subdomain", wide(Query{Domain: "www.site420.fr"}), false},
		{"domain in capitals", wide(Query{Domain: "SITE420.FR."}), false},
		{"suffix of letters only", wide(Query{Domain: "e420.fr"}), true},
		{"top-level domain", wide(Query{Domain: "fr"}), false},
		{"domain after the searched one", wide(Query{Domain: "example.com"}), false},
		{"domain and client", wide(Query{Domain: "fr", Client: target}), false},
		{"nat", wide(Query{NAT: target}), false},
		{"nat and port", wide(Query{NAT: target, NATPort: 40000}), false},
		{"nat mapped", wide(Query{NAT: netip.MustParseAddr("198.51.100.10")}), false},
		{"nat mapped query", wide(Query{NAT: mapped, NATPort: flows[4].NAT.Port()}), false},
		{"nat still open", wide(Query{NAT: netip.MustParseAddr("198.51.100.10"), EndFrom: times[len(times)/2]}), false},
		{"mac", wide(Query{MAC: flows[10].MAC}), false},
		{"user", wide(Query{User: flows[slices.IndexFunc(flows, func(r journal.Record) bool { return r.User != "" })].User}), false},
	}
	check := func(stage string, allMarks bool) {
		t.Helper()
		for _, c := range qs {
			want := m.scan(t, chains, c.q)
			e.store.wholeBlocks = true
			whole := collect(t, e.store, c.q)
			e.store.wholeBlocks = false
			picked0 := e.store.picked.Load()
			got := collect(t, e.store, c.q)
			if !slices.Equal(whole.recs, want.recs) {
				t.Fatalf("%s: %s: whole blocks give %d records, the model %d", stage, c.name, len(whole.recs), len(want.recs))
			}
			if !slices.Equal(got.recs, want.recs) {
				t.Errorf("%s: %s: by columns %d records, want %d (or others)", stage, c.name, len(got.recs), len(want.recs))
			}
			if c.empty != (len(want.recs) == 0) {
				t.Errorf("%s: %s: %d records: the case tests nothing", stage, c.name, len(want.recs))
			}
			if allMarks && c.q.Client == target && c.q.Domain == "" && e.store.picked.Load()-picked0 >= int64(len(nav)+len(flows))/2 {
				t.Errorf("%s: %s: %d records selected of %d", stage, c.name, e.store.picked.Load()-picked0, len(nav)+len(flows))
			}
		}
	}
	check("with marks", true)

	// Blocks archived when marks were 64 records apart are still read
	// column by column (check fails on a whole decode: it selects more).
	rows, err := e.store.r.QueryContext(ctx, `SELECT chain, first, data FROM sealed_blocks`)
	if err != nil {
		t.Fatal(err)
	}
	type old struct {
		chain, first int64
		marks        []byte
	}
	var olds []old
	for rows.Next() {
		var o old
		var data []byte
		if err := rows.Scan(&o.chain, &o.first, &data); err != nil {
			t.Fatal(err)
		}
		i := 0
		b, err := segment.DecodeBatch(data, nil, func(_ *journal.Record, _ []byte, link journal.Hash) error {
			if i++; i%64 == 0 {
				o.marks = append(o.marks, link[:]...)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%64 == 0 {
			o.marks = o.marks[:len(o.marks)-32] // the last link is the header's
		}
		if b.Count > 64 {
			olds = append(olds, o)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(olds) < 4 {
		t.Fatalf("%d blocks of more than 64 records", len(olds))
	}
	for _, o := range olds {
		if _, err := e.store.w.ExecContext(ctx, e.store.q(`UPDATE sealed_blocks SET marks = ? WHERE chain = ? AND first = ?`), o.marks, o.chain, o.first); err != nil {
			t.Fatal(err)
		}
	}
	check("marks 64 apart", true)

	// An archive made before marks: its blocks have none, and are
	// decoded whole once their columns select a record.
	if _, err := e.store.w.ExecContext(ctx, `UPDATE sealed_blocks SET marks = NULL WHERE n > 100`); err != nil {
		t.Fatal(err)
	}
	check("some blocks without marks", false)

	// A damaged mark is an error, not a record with a wrong link.
	if _, err := e.store.w.ExecContext(ctx, `UPDATE sealed_blocks SET marks = `+hexBlob(e.store.pg, make([]byte, 32))+` WHERE n = 65`); err != nil {
		t.Fatal(err)
	}
	err = e.store.Scan(ctx, wide(Query{Domain: "fr"}), func(Chain, *Stored) error { return nil })
	if !errors.Is(err, errBadBlock) {
		t.Fatalf("search over a damaged mark: %v", err)
	}
}

// hexBlob is a blob literal of the dialect.
func hexBlob(pg bool, b []byte) string {
	if pg {
		return fmt.Sprintf(`'\x%x'::bytea`, b)
	}
	return fmt.Sprintf(`x'%x'`, b)
}

// TestArchiveWithoutMarks opens an archive made before blocks kept marks
// (the column dropped after ingest): opening adds the column back, its
// blocks have none, and searches still give the model's answer.
func TestArchiveWithoutMarks(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var open func() *SQLStore
			if pg {
				url := pgtest.Shared(t).Database(t)
				open = func() *SQLStore {
					st, err := OpenPostgres(ctx, url, PostgresConfig{Schema: "ac_marks", MaxConns: 4})
					if err != nil {
						t.Fatal(err)
					}
					return st
				}
			} else {
				path := filepath.Join(t.TempDir(), "journal.db")
				open = func() *SQLStore {
					st, err := OpenSQLite(path)
					if err != nil {
						t.Fatal(err)
					}
					return st
				}
			}
			st := open()
			e := newEnvOn(t, backend{name, func(testing.TB) *SQLStore { return st }})
			batches, recs := edgeBatches(t, t.TempDir(), edgeKey, journal.Navigation, 3, 700, 31)
			m := model{}
			for _, b := range batches {
				if _, err := e.arch.Ingest(ctx, b); err != nil {
					t.Fatal(err)
				}
				m.add(t, e.store, b)
			}
			for _, table := range blockTables {
				if _, err := st.w.ExecContext(ctx, `ALTER TABLE `+table+` DROP COLUMN marks`); err != nil {
					t.Fatal(err)
				}
			}
			st.Close()
			st = open()
			defer st.Close()
			var n int
			if err := st.r.QueryRowContext(ctx, `SELECT count(*) FROM sealed_blocks WHERE marks IS NULL`).Scan(&n); err != nil || n != len(batches) {
				t.Fatalf("%d blocks without marks after reopening, want %d: %v", n, len(batches), err)
			}
			chains, err := st.Chains(ctx, uai)
			if err != nil {
				t.Fatal(err)
			}
			wide := func(q Query) Query { q.UAI, q.From, q.To = uai, day0.Add(-time.Hour), day0.Add(48*time.Hour); return q }
			for _, q := range []Query{wide(Query{Client: recs[5].Client.Addr()}), wide(Query{Domain: "fr"})} {
				want, got := m.scan(t, chains, q), collect(t, st, q)
				if len(want.recs) == 0 || !slices.Equal(got.recs, want.recs) {
					t.Errorf("%+v: %d records, want %d", q, len(got.recs), len(want.recs))
				}
			}
			// New blocks get marks again.
			more, _ := edgeBatches(t, t.TempDir(), edgeKey, journal.Connexions, 1, 300, 32)
			e2 := newEnvOn(t, backend{name, func(testing.TB) *SQLStore { return st }})
			if _, err := e2.arch.Ingest(ctx, more[0]); err != nil {
				t.Fatal(err)
			}
			if err := st.r.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM sealed_blocks WHERE length(marks) = %d`, 32*segment.MarkCount(300))).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d new blocks with their %d marks: %v", n, segment.MarkCount(300), err)
			}
		})
	}
}
