package store

import (
	"context"
	"path/filepath"
	"testing"

	"vigie/controlplane/audit"
)

// BenchmarkRecentExports compares, in one run on one SQLite log of
// 100,000 entries (one export in 200), the two ways a page finds the 50
// newest exports: the UI's former one (page forward to the end, then read
// windows of 500 backwards, filtering in Go) and AuditTail (backwards,
// filtered by the database).
//
//	go test ./controlplane/store -run '^$' -bench RecentExports -benchtime 20x
func BenchmarkRecentExports(b *testing.B) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "vigie.db"), 4)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n, want = 100000, 50
	err = s.Update(ctx, func(tx Tx) error {
		for i := 1; i <= n; i++ {
			e := entry("page.read")
			if i%200 == 0 {
				e = entry("export")
			}
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("forward-then-windows", func(b *testing.B) {
		for b.Loop() {
			var tail uint64
			for {
				es, err := s.AuditEntries(ctx, tail, 1000)
				if err != nil {
					b.Fatal(err)
				}
				if len(es) == 0 {
					break
				}
				tail = es[len(es)-1].Seq
			}
			var found []audit.Entry
			for hi := tail + 1; hi > 1 && len(found) < want; {
				lo := uint64(1)
				if hi > 500 {
					lo = hi - 500
				}
				es, err := s.AuditEntries(ctx, lo-1, int(hi-lo))
				if err != nil {
					b.Fatal(err)
				}
				for i := len(es) - 1; i >= 0 && len(found) < want; i-- {
					if es[i].Action == "export" {
						found = append(found, es[i])
					}
				}
				hi = lo
			}
			if len(found) != want {
				b.Fatalf("found %d", len(found))
			}
		}
	})
	b.Run("tail", func(b *testing.B) {
		for b.Loop() {
			es, err := s.AuditTail(ctx, AuditQuery{Actions: []string{"export"}, Limit: want})
			if err != nil || len(es) != want {
				b.Fatalf("found %d (%v)", len(es), err)
			}
		}
	})
}
