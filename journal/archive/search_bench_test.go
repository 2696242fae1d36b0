package archive

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
)

// BenchmarkSearch5M searches one school-day of navigation records (5
// million by default, VIGIE_SEARCH_BENCH_RECORDS to change it), sealed by
// a real edge journal in segments of its default size and ingested, for
// one client address and for one domain, over the whole day. The archive
// is built once and kept in $TMPDIR/vigie-search-bench-N.
//
// The peers in the same run: client-whole and domain-whole decode every
// block the filter lets through whole, as searches did before they read
// blocks column by column; full-decode is what a search costs when no
// filter excludes a block: every record of the day decoded and compared.
//
//	go test ./journal/archive -run '^$' -bench Search5M -benchtime 1x
func BenchmarkSearch5M(b *testing.B) {
	n := 5_000_000
	if v, err := strconv.Atoi(os.Getenv("VIGIE_SEARCH_BENCH_RECORDS")); err == nil && v > 0 {
		n = v
	}
	st, day := searchArchive(b, n)
	defer st.Close()
	ctx := context.Background()
	wide := Query{UAI: uai, From: day.Add(-time.Hour), To: day.Add(24 * time.Hour), Streams: []journal.Stream{journal.Navigation}}
	client, domain := wide, wide
	client.Client = netip.MustParseAddr("10.10.1.14")
	// A site of the long tail: a requisition names a site, rarely the
	// most popular ones.
	domain.Domain = "site420.fr"
	for _, c := range []struct {
		name        string
		q           Query
		full, whole bool
	}{{"client", client, false, false}, {"domain", domain, false, false},
		{"client-whole", client, false, true}, {"domain-whole", domain, false, true},
		{"full-decode", wide, true, false}} {
		b.Run(c.name, func(b *testing.B) {
			st.wholeBlocks = c.whole
			defer func() { st.wholeBlocks = false }()
			var found int
			dec0, picked0, cpu0 := st.decoded.Load(), st.picked.Load(), cpuTime()
			var rec journal.Record
			for i := 0; i < b.N; i++ {
				found = 0
				err := st.Scan(ctx, c.q, func(_ Chain, r *Stored) error {
					if c.full {
						if err := journal.DecodeRecord(r.Payload, &rec); err != nil {
							return err
						}
						if client.matchesContent(&rec) {
							found++
						}
						return nil
					}
					found++
					return nil
				})
				if err != nil || found == 0 {
					b.Fatalf("%d found, %v", found, err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/query")
			// The process's CPU per query: on a shared machine the
			// wall clock says more about the neighbours.
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/query")
			b.ReportMetric(float64(found), "found")
			b.ReportMetric(float64(st.decoded.Load()-dec0)/float64(b.N), "blocks-decoded")
			b.ReportMetric(float64(st.picked.Load()-picked0)/float64(b.N), "records-selected")
		})
	}
}

// searchBenchFormat names the archive format a kept search archive was
// built in; change it whenever ingest stores blocks differently.
const searchBenchFormat = "blocks with link marks every 32 records\n"

func searchArchive(b *testing.B, n int) (*SQLStore, time.Time) {
	b.Helper()
	day := time.Date(2026, 3, 12, 7, 0, 0, 0, time.UTC)
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("vigie-search-bench-%d", n))
	return keptArchive(b, dir, searchBenchFormat, func() error { return buildDay(b, dir, day, n) }), day
}

// keptArchive opens the SQLite archive kept in dir, built by build first
// unless dir holds one built in format. The kept archive is reused only
// if it was built in the archive's current format: one built before
// blocks carried their link marks would be searched the slow way and
// silently skew the figures.
func keptArchive(b *testing.B, dir, format string, build func() error) *SQLStore {
	b.Helper()
	done := filepath.Join(dir, "complete")
	if got, err := os.ReadFile(done); err != nil || string(got) != format {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := build(); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(done, []byte(format), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	st, err := OpenSQLite(filepath.Join(dir, "archive.db"))
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// buildDay journals n navigation records through a real edge journal and
// ingests its sealed segments into a new archive in dir.
func buildDay(b *testing.B, dir string, day time.Time, n int) error {
	st, err := OpenSQLite(filepath.Join(dir, "archive.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	return ingestDay(st, filepath.Join(dir, "edge"), edgeKey, journaltest.New(17, uai, day), n)
}

// ingestDay journals n records of g through a real edge journal of g's
// school sealing with key, in dir, and ingests its sealed segments into
// st. dir is removed afterwards.
func ingestDay(st Store, dir string, key ed25519.PrivateKey, g *journaltest.Gen, n int) error {
	ctx := context.Background()
	day := g.Time()
	l, err := segment.Open(segment.Options{Dir: dir, UAI: g.UAI, Stream: journal.Navigation, Key: key,
		CommitInterval: time.Millisecond, MinFreeBytes: -1, MaxPending: 1 << 30})
	if err != nil {
		return err
	}
	defer l.Close()
	for i := 1; i <= n; i++ {
		r := g.Next(journal.Navigation)
		journal.Canonicalize(&r)
		l.Append(&r)
		if i%50000 == 0 {
			if err := l.Sync(ctx); err != nil {
				return err
			}
		}
	}
	if err := l.Rotate(ctx); err != nil {
		return err
	}
	if err := l.WaitSealed(ctx); err != nil {
		return err
	}
	segs, err := l.Sealed()
	if err != nil {
		return err
	}
	arch, err := New(Options{Store: st, Now: func() time.Time { return day.Add(48 * time.Hour) },
		EdgeKey: func(context.Context, string) (ed25519.PublicKey, error) {
			return key.Public().(ed25519.PublicKey), nil
		}})
	if err != nil {
		return err
	}
	for _, sg := range segs {
		data, err := os.ReadFile(sg.Path)
		if err != nil {
			return err
		}
		if _, err := arch.Ingest(ctx, data); err != nil {
			return fmt.Errorf("%s: %w", sg.Path, err)
		}
	}
	return os.RemoveAll(dir)
}

// BenchmarkSearchSchools searches an académie's school-day: 150 schools
// (VIGIE_SEARCH_SCHOOLS) of 5 million navigation records each
// (VIGIE_SEARCH_BENCH_RECORDS), each sealed by its own edge journal and
// key and ingested into one archive, kept in
// $TMPDIR/vigie-search-schools-S-N (building it takes about 15 s a
// school). A search across the académie is one search per school, as the
// requisition tools run it (journal/who): every school's chains and block
// filters are read, and a school's blocks decoded only where the filters
// let the query through.
//
// Each school has its own address plan and a long tail of sites local to
// its basin of three schools (journaltest.AsSchool). The client searched
// for is a device of one school; the domain, a local site visited in its
// basin's three schools; domain-everywhere, a site of the common long
// tail, in every school's day: the worst case, where every school is
// decoded (one school's domain search times the number of schools).
//
//	go test ./journal/archive -run '^$' -bench SearchSchools -benchtime 1x -timeout 2h
func BenchmarkSearchSchools(b *testing.B) {
	schools, n := 150, 5_000_000
	if v, err := strconv.Atoi(os.Getenv("VIGIE_SEARCH_SCHOOLS")); err == nil && v > 0 {
		schools = min(v, journaltest.Schools)
	}
	if v, err := strconv.Atoi(os.Getenv("VIGIE_SEARCH_BENCH_RECORDS")); err == nil && v > 0 {
		n = v
	}
	st, day := schoolsArchive(b, schools, n)
	defer st.Close()
	ctx := context.Background()
	k := schools / 2
	wide := Query{From: day.Add(-time.Hour), To: day.Add(24 * time.Hour), Streams: []journal.Stream{journal.Navigation}}
	client, local, common := wide, wide, wide
	client.Client = journaltest.Client(k, 14)
	local.Domain = journaltest.LocalHost(k/3, journaltest.LocalFrom+100)
	common.Domain = "site200.fr"
	for _, c := range []struct {
		name string
		q    Query
	}{{"client", client}, {"domain", local}, {"domain-everywhere", common}} {
		b.Run(c.name, func(b *testing.B) {
			var found int
			holding := map[string]bool{}
			dec0, cpu0 := st.decoded.Load(), cpuTime()
			for i := 0; i < b.N; i++ {
				found = 0
				for s := range schools {
					q := c.q
					q.UAI = schoolUAI(s)
					err := st.Scan(ctx, q, func(_ Chain, r *Stored) error {
						found++
						holding[q.UAI] = true
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				if found == 0 {
					b.Fatal("nothing found")
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/query")
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/query")
			b.ReportMetric(float64(found), "found")
			b.ReportMetric(float64(len(holding)), "schools-holding")
			b.ReportMetric(float64(st.decoded.Load()-dec0)/float64(b.N), "blocks-decoded")
		})
	}
}

// schoolUAI is school s's UAI: a département's code, a number, a letter.
func schoolUAI(s int) string { return fmt.Sprintf("067%04d%c", s, 'A'+s%23) }

// schoolKey is the key school s's edge seals with.
func schoolKey(s int) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(schoolUAI(s)))
	return ed25519.NewKeyFromSeed(seed[:])
}

func schoolsArchive(b *testing.B, schools, n int) (*SQLStore, time.Time) {
	b.Helper()
	day := time.Date(2026, 3, 12, 7, 0, 0, 0, time.UTC)
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("vigie-search-schools-%d-%d", schools, n))
	format := searchBenchFormat + "schools with their own plans (journaltest.AsSchool)\n"
	return keptArchive(b, dir, format, func() error {
		st, err := OpenSQLite(filepath.Join(dir, "archive.db"))
		if err != nil {
			return err
		}
		start := time.Now()
		for s := range schools {
			g := journaltest.New(uint64(100+s), schoolUAI(s), day).AsSchool(s)
			if err := ingestDay(st, filepath.Join(dir, "edge"), schoolKey(s), g, n); err != nil {
				st.Close()
				return fmt.Errorf("school %d: %w", s, err)
			}
			if s%10 == 9 {
				b.Logf("%d schools built in %s", s+1, time.Since(start).Round(time.Second))
			}
		}
		return st.Close()
	}), day
}
