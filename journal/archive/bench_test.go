package archive

import (
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/segment"
)

// BenchmarkIngest measures the archive's ingest rate: verify (signature,
// inflate, decode, chain), build the block's filter and store 8 sealed
// segments of 25,000 records into a fresh SQLite archive, one row each.
// The peer, BenchmarkBaselineSQLiteInsert, is what the archive did before
// blocks were its unit, without even the verification: the same records
// inserted as one row each, with the three indexes requisitions used.
//
//	go test ./journal/archive -run '^$' -bench . -benchtime 3x
func BenchmarkIngest(b *testing.B) { benchIngest(b, backends[0]) }

// BenchmarkIngestPostgres is BenchmarkIngest on PostgreSQL (a throwaway
// cluster on this machine, reached through its Unix socket).
func BenchmarkIngestPostgres(b *testing.B) { benchIngest(b, backends[1]) }

// BenchmarkConcurrentIngest is BenchmarkIngest with the batches arriving
// as the ingest handler receives them from several edges or a catching-up
// one: GOMAXPROCS requests at once (the control plane admits MaxIngests),
// verified in parallel and stored in sequence order.
func BenchmarkConcurrentIngest(b *testing.B) { benchIngestN(b, backends[0], runtime.GOMAXPROCS(0)) }

func benchIngest(b *testing.B, be backend) { benchIngestN(b, be, 1) }

func benchIngestN(b *testing.B, be backend, workers int) {
	batches, _ := edgeBatches(b, b.TempDir(), edgeKey, journal.Navigation, 8, 25000, 1)
	n := 8 * 25000
	b.ResetTimer()
	var total, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnvOn(b, be)
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		next := make(chan []byte)
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			go func() {
				var err error
				for data := range next {
					if _, e := e.arch.Ingest(context.Background(), data); e != nil && err == nil {
						err = e
					}
				}
				errs <- err
			}()
		}
		for _, data := range batches {
			next <- data
		}
		close(next)
		for w := 0; w < workers; w++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		if len(e.audit.actions()) != 0 {
			b.Fatalf("audit entries %v: a gap was opened", e.audit.actions())
		}
		total += time.Since(start)
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "records/s")
	b.ReportMetric(float64(n*b.N)/cpu.Seconds(), "records/cpu-s")
}

func BenchmarkBaselineSQLiteInsert(b *testing.B) {
	batches, _ := edgeBatches(b, b.TempDir(), edgeKey, journal.Navigation, 8, 25000, 1)
	var rows []Stored
	for _, data := range batches {
		segment.DecodeBatch(data, nil, func(r *journal.Record, p []byte, link journal.Hash) error {
			rows = append(rows, Stored{Seq: r.Seq, Time: r.Time, Client: r.Client.Addr(), Host: r.Host, Link: link, Payload: append([]byte(nil), p...)})
			return nil
		})
	}
	b.ResetTimer()
	var total, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := OpenSQLite(filepath.Join(b.TempDir(), "floor.db"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.w.Exec(legacySchema); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		for k := 0; k < len(rows); k += 25000 {
			if err := insertPlain(st.w, rows[k:k+25000]); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		st.Close()
	}
	b.ReportMetric(float64(len(rows)*b.N)/total.Seconds(), "records/s")
	b.ReportMetric(float64(len(rows)*b.N)/cpu.Seconds(), "records/cpu-s")
}

func insertPlain(db *sql.DB, rows []Stored) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.Prepare(`INSERT INTO records (chain, seq, uai, stream, time, client, rhost, link, payload) VALUES (1, ?, ?, 2, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := ins.Exec(r.Seq, uai, micros(r.Time), addrText(r.Client), ReverseHost(r.Host), r.Link[:], r.Payload); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// cpuTime is the process's user and system CPU time: on a shared machine
// wall-clock rates say more about the neighbours than about the code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
