package archive

import (
	"context"
	"database/sql"
	"path/filepath"
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

func benchIngest(b *testing.B, be backend) {
	batches, _ := edgeBatches(b, b.TempDir(), edgeKey, journal.Navigation, 8, 25000, 1)
	n := 8 * 25000
	b.ResetTimer()
	var total, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnvOn(b, be)
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		for _, data := range batches {
			if _, err := e.arch.Ingest(context.Background(), data); err != nil {
				b.Fatal(err)
			}
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
