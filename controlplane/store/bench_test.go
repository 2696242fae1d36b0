package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"vigie/controlplane/store/pgtest"
)

// BenchmarkBackends compares the two backends on the control plane's own
// hot operations, side by side in one run: an audited write transaction
// (what every change, publish and login costs, serialized on both) and an
// edge-token lookup (what an uncached edge request costs).
//
//	go test ./controlplane/store -run '^$' -bench Backends -benchtime 2000x
func BenchmarkBackends(b *testing.B) {
	ctx := context.Background()
	stores := []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"sqlite", func(b *testing.B) Store {
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "vigie.db"), 4)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(b *testing.B) Store {
			p, err := OpenPostgres(ctx, pgtest.Shared(b).Database(b), PostgresConfig{MaxConns: 4})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close() })
			return p
		}},
	}
	for _, st := range stores {
		b.Run(st.name+"/audited-write", func(b *testing.B) {
			s := st.open(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				err := s.Update(ctx, func(tx Tx) error { return tx.AppendAudit(ctx, entry("bench")) })
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(st.name+"/edge-by-token", func(b *testing.B) {
			s := st.open(b)
			err := s.Update(ctx, func(tx Tx) error {
				for i := 0; i < 1000; i++ {
					if err := tx.CreateEdge(ctx, Edge{ID: fmt.Sprint("e", i), UAI: "0671234X", CreatedAt: t0, TokenHash: fmt.Sprint("h", i)}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.EdgeByToken(ctx, fmt.Sprint("h", i%1000)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
