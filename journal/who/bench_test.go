package who

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
)

// BenchmarkWho answers one requisition over a school-day of flow records
// (5 million by default, VIGIE_WHO_BENCH_RECORDS to change it), whose
// whole day lies within the search's lookback. The archive selects the
// blocks by their NAT filter and decodes only those. The archive is built
// once, through a real edge journal and the archive's ingest, and kept in
// $TMPDIR/vigie-who-bench-blocks2-N.
//
// BenchmarkBaselineWhoDecodeAll is the peer in the same run: the search
// as it was before the filters, a scan of the whole day decoding every
// record before comparing its NAT address.
func BenchmarkWho(b *testing.B)                  { benchWho(b, false) }
func BenchmarkBaselineWhoDecodeAll(b *testing.B) { benchWho(b, true) }

func benchRecords() int {
	if n, err := strconv.Atoi(os.Getenv("VIGIE_WHO_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 5_000_000
}

func benchArchive(b *testing.B, n int) (*archive.SQLite, journal.Record) {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("vigie-who-bench-blocks2-%d", n))
	done := filepath.Join(dir, "complete")
	start := time.Date(2026, 3, 12, 7, 0, 0, 0, time.UTC)
	g := journaltest.New(7, uai, start)
	var target journal.Record
	build := false
	if _, err := os.Stat(done); err != nil {
		os.RemoveAll(dir)
		os.MkdirAll(dir, 0o755)
		build = true
	}
	st, err := archive.OpenSQLite(filepath.Join(dir, "archive.db"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// The day goes through a real edge journal (segments of its default
	// size) and the archive's ingest, as in production.
	var l *segment.Log
	if build {
		l, err = segment.Open(segment.Options{Dir: filepath.Join(dir, "edge"), UAI: uai, Stream: journal.Connexions, Key: edgeKey,
			CommitInterval: time.Millisecond, MinFreeBytes: -1, MaxPending: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
	}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		r := g.Flow()
		if seq == uint64(n)-1000 {
			// The requisition's flow, at the end of the day: the search
			// looks at the whole day before it.
			r.NAT = netip.MustParseAddrPort("198.51.100.10:40123")
			r.Verdict, r.Reason, r.Duration = "allow", "", 3*time.Second
			target = r
		}
		if !build {
			continue
		}
		journal.Canonicalize(&r)
		l.Append(&r)
		if seq%50000 == 0 {
			if err := l.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if build {
		if err := l.Rotate(ctx); err != nil {
			b.Fatal(err)
		}
		if err := l.WaitSealed(ctx); err != nil {
			b.Fatal(err)
		}
		segs, err := l.Sealed()
		if err != nil {
			b.Fatal(err)
		}
		arch, err := archive.New(archive.Options{Store: st, Now: func() time.Time { return start.Add(48 * time.Hour) },
			EdgeKey: func(context.Context, string) (ed25519.PublicKey, error) {
				return edgeKey.Public().(ed25519.PublicKey), nil
			}})
		if err != nil {
			b.Fatal(err)
		}
		for _, sg := range segs {
			data, err := os.ReadFile(sg.Path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := arch.Ingest(ctx, data); err != nil {
				b.Fatal(err)
			}
		}
		l.Close()
		os.RemoveAll(filepath.Join(dir, "edge"))
		os.WriteFile(done, nil, 0o644)
	}
	return st, target
}

func benchWho(b *testing.B, naive bool) {
	n := benchRecords()
	st, target := benchArchive(b, n)
	defer st.Close()
	ctx := context.Background()
	q := Query{Addr: target.NAT.Addr(), Port: target.NAT.Port(), At: target.Time.Add(time.Second), Schools: []string{uai}, Lookback: 24 * time.Hour}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if naive {
			found := 0
			var r journal.Record
			err := st.Scan(ctx, archive.Query{UAI: uai, From: q.At.Add(-q.Lookback), To: q.At.Add(3 * time.Second), Streams: []journal.Stream{journal.Connexions}},
				func(c archive.Chain, s *archive.Stored) error {
					if err := journal.DecodeRecord(s.Payload, &r); err != nil {
						return err
					}
					if r.NAT == target.NAT {
						found++
					}
					return nil
				})
			if err != nil || found == 0 {
				b.Fatalf("naive: %d found, %v", found, err)
			}
			continue
		}
		ans, err := Find(ctx, st, q)
		if err != nil || len(ans.Matches) != 1 {
			b.Fatalf("who: %+v, %v", ans, err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/query")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
