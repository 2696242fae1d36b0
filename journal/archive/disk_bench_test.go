package archive

import (
	"context"
	"os"
	"strings"
	"testing"

	"vigie/journal"
)

// BenchmarkDiskBytesPerRecord measures what the archive keeps on disk per
// record (the whole database file after a WAL checkpoint: blocks, their
// filters, marks and indexes) against the sealed segments the edges send. The
// figures size a school-year's disk (docs/operator-guide.md).
//
//	go test ./journal/archive -run '^$' -bench DiskBytes -benchtime 1x
func BenchmarkDiskBytesPerRecord(b *testing.B) {
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		b.Run(s.String(), func(b *testing.B) {
			const batches, per = 8, 25000
			data, _ := edgeBatches(b, b.TempDir(), edgeKey, s, batches, per, 1)
			var sealed int64
			for _, d := range data {
				sealed += int64(len(d))
			}
			var db int64
			var parts map[string]int64
			for i := 0; i < b.N; i++ {
				e := newEnv(b)
				for _, d := range data {
					if _, err := e.arch.Ingest(context.Background(), d); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := e.store.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
					b.Fatal(err)
				}
				var path string
				if err := e.store.w.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
					b.Fatal(err)
				}
				// Where the bytes go: the block rows (data and
				// filters), their indexes.
				rows, err := e.store.w.Query(`SELECT name, sum(pgsize) FROM dbstat GROUP BY name`)
				if err != nil {
					b.Fatal(err)
				}
				parts = map[string]int64{}
				for rows.Next() {
					var name string
					var sz int64
					rows.Scan(&name, &sz)
					switch {
					case name == "sealed_blocks" || name == "held_blocks":
						parts["blocks"] += sz
					case strings.HasSuffix(name, "_blocks_chain_first") || strings.HasSuffix(name, "_blocks_chain_time"):
						parts["block-indexes"] += sz
					}
				}
				rows.Close()
				db = 0
				for _, f := range []string{path, path + "-wal"} {
					if st, err := os.Stat(f); err == nil {
						db += st.Size()
					}
				}
			}
			n := float64(batches * per)
			b.ReportMetric(float64(db)/n, "archive-bytes/record")
			b.ReportMetric(float64(sealed)/n, "sealed-bytes/record")
			for k, v := range parts {
				b.ReportMetric(float64(v)/n, k+"-bytes/record")
			}
			var filters, marks int64
			if err := func() error {
				e := newEnv(b)
				for _, d := range data {
					if _, err := e.arch.Ingest(context.Background(), d); err != nil {
						return err
					}
				}
				return e.store.r.QueryRow(`SELECT sum(length(bloom)), coalesce(sum(length(marks)), 0) FROM sealed_blocks`).Scan(&filters, &marks)
			}(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(filters)/n, "filter-bytes/record")
			b.ReportMetric(float64(marks)/n, "marks-bytes/record")
		})
	}
}
