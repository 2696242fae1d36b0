package segment

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vigie/journal"
)

// The append benchmarks measure durable throughput: records appended from
// all Ps, group-committed with fsync, until the last one is on disk. Run:
//
//	go test ./journal/segment -run '^$' -bench 'Append|Baseline|Seal' -benchtime 1000000x
//
// BenchmarkBaselineJSONGroupFsync is the peer: what a logger usually does
// (one JSON line per record through a mutex-guarded buffer, fsync every
// 5 ms), without CRCs or the hash chain.

var benchRecs = sync.OnceValue(func() []journal.Record {
	var out []journal.Record
	out = append(out, gen(32768, journal.Connexions)...)
	return append(out, gen(32768, journal.Navigation)...)
})

func BenchmarkAppendDurable(b *testing.B) {
	recs := benchRecs()
	opt := testOptions(b.TempDir())
	opt.MinFreeBytes = -1
	opt.SegmentRecords = 1 << 40 // sealing is measured apart
	j, err := OpenJournal(opt)
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			j.Append(&recs[int(i)%len(recs)])
		}
	})
	if err := j.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	var size int64
	filepath.Walk(opt.Dir, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	b.ReportMetric(float64(size)/float64(b.N), "live-bytes/record")
	dropped := 0.0
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		l := j.Log(s)
		dropped += float64(l.Durable())
	}
	if int(dropped) < b.N {
		b.Fatalf("%d records durable of %d appended (dropped under load)", int(dropped), b.N)
	}
	j.Close()
}

func BenchmarkBaselineJSONGroupFsync(b *testing.B) {
	recs := benchRecs()
	f, err := os.Create(filepath.Join(b.TempDir(), "log.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var mu sync.Mutex
	w := bufio.NewWriterSize(f, 1<<20)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			w.Flush()
			mu.Unlock()
			syscall.Fdatasync(int(f.Fd()))
		}
	}()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			line, _ := json.Marshal(&recs[int(i)%len(recs)])
			mu.Lock()
			w.Write(line)
			w.WriteByte('\n')
			mu.Unlock()
		}
	})
	close(stop)
	<-done
	mu.Lock()
	w.Flush()
	mu.Unlock()
	syscall.Fdatasync(int(f.Fd()))
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	st, _ := f.Stat()
	b.ReportMetric(float64(st.Size())/float64(b.N), "bytes/record")
}

// BenchmarkSeal measures sealing (columns, deflate, signature) and reports
// the sealed size per record; the peer is gzip of the JSON lines. The dns
// case seals dnsMix's records the sealer's way, in an arena.
func BenchmarkSeal(b *testing.B) {
	b.Run("dns", func(b *testing.B) {
		recs := dnsMixRecs()
		a := newArena(sealArenaSize)
		defer a.free()
		var payload []byte
		n := 0
		b.ReportAllocs()
		for range b.N {
			bb := newBatchBuilder(uai, journal.Navigation, journal.ChainID{}, 1, journal.Hash{}).inArena(a)
			for i := range recs {
				payload = journal.AppendRecord(payload[:0], &recs[i])
				bb.add(&recs[i], payload)
			}
			out, _, err := bb.finish(true, time.Now(), testKey, 1)
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
			a.reset()
		}
		b.ReportMetric(float64(n)/float64(len(recs)), "sealed-bytes/record")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(recs)*b.N), "ns/record")
	})
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		recs := gen(100000, s)
		b.Run(s.String(), func(b *testing.B) {
			var out []byte
			for i := 0; i < b.N; i++ {
				out = sealRecords(b, recs, 1)
			}
			b.ReportMetric(float64(len(out))/float64(len(recs)), "sealed-bytes/record")
			b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
		})
		b.Run(s.String()+"-baseline-gzip-json", func(b *testing.B) {
			var n countWriter
			for i := 0; i < b.N; i++ {
				n = 0
				zw := gzip.NewWriter(&n)
				enc := json.NewEncoder(zw)
				for j := range recs {
					enc.Encode(&recs[j])
				}
				zw.Close()
			}
			b.ReportMetric(float64(n)/float64(len(recs)), "sealed-bytes/record")
			b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
