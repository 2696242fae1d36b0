package segment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigie/journal"
)

// What the journal costs in memory beside the DNS filter (issue 20): the
// heap a pending record takes until its group commit, what a commit
// leaves behind, and what sealing a full segment holds and allocates.
// Figures are heap bytes (runtime.MemStats), which do not depend on the
// machine's load; the budgets are a few times today's figures, so that a
// regression (a segment read whole, a buffer kept at its peak) fails.

// dnsMix returns n records shaped like the DNS filter's under bench/dns's
// query file: half blocked names, nearly all distinct (282,582 listed
// names), half allowed names drawn from 10,000; one client with dnsperf's
// ten sockets; cached answers (no upstream latency).
func dnsMix(n int) []journal.Record {
	rng := rand.New(rand.NewPCG(20, 26))
	t := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	client := netip.MustParseAddr("127.0.0.1")
	out := make([]journal.Record, n)
	for i := range out {
		t = t.Add(time.Duration(5+rng.IntN(20)) * time.Microsecond)
		r := journal.Record{Stream: journal.Navigation, Time: t, UAI: uai, Proto: "dns", QType: "A", RCode: "NOERROR", Verdict: "allow",
			Client: netip.AddrPortFrom(client, uint16(40000+rng.IntN(10)))}
		if rng.IntN(2) == 0 {
			r.Host = fmt.Sprintf("www.listed-%06d.example.com", rng.IntN(282582))
			r.RCode, r.Verdict, r.Category = "NXDOMAIN", "block", "adult"
		} else {
			r.Host = fmt.Sprintf("allowed-%05d.example.fr", rng.IntN(10000))
		}
		journal.Canonicalize(&r)
		out[i] = r
	}
	return out
}

var dnsMixRecs = sync.OnceValue(func() []journal.Record { return dnsMix(1 << 16) })

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func frameBytes(recs []journal.Record) int {
	n := 0
	var b []byte
	for i := range recs {
		b, _ = appendRecordFrame(b[:0], &recs[i])
		n += len(b)
	}
	return n
}

// TestPendingMemory: a record waiting for its commit costs the heap its
// frame (about 100 bytes for a DNS query) and little more, and a commit
// gives a burst's memory back instead of keeping the buffer at its peak.
func TestPendingMemory(t *testing.T) {
	recs := dnsMixRecs()[:50000]
	opt := testOptions(t.TempDir())
	opt.MinFreeBytes = -1
	opt.SegmentRecords = 1 << 40
	// Nothing commits until Sync: every record stays pending.
	opt.CommitInterval = time.Hour
	opt.CommitRecords = 1 << 30
	opt.MaintainEvery = time.Hour
	l := openT(t, opt)
	defer l.Close()
	frames := float64(frameBytes(recs)) / float64(len(recs))
	base := heapAlloc()
	for i := range recs {
		l.Append(&recs[i])
	}
	pending := float64(heapAlloc()-base) / float64(len(recs))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Small groups after the burst: the burst's buffer serves them for a
	// while, then must be let go.
	for range 64 {
		for i := range recs[:100] {
			l.Append(&recs[i])
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	left := int64(heapAlloc()) - int64(base)
	t.Logf("pending: %.1f heap bytes per record (frames: %.1f bytes); after the commits: %d bytes kept", pending, frames, left)
	if pending > 2*frames {
		t.Errorf("a pending record costs %.1f heap bytes, budget 2× its %.1f-byte frame", pending, frames)
	}
	if left > 512<<10 {
		t.Errorf("%d heap bytes kept after the burst was committed, budget 512 KiB", left)
	}
}

// BenchmarkAppendDNS appends DNS-shaped records from one goroutine, as
// the DNS filter's reader does, through the edge's journal with its
// defaults (group commit with fsync every 5 ms, 256 Ki-record segments
// sealed in the background), and reports the process CPU time per record
// (appender, committer, sealer and collector together: the load moves it
// far less than wall time) and the heap's peak. Run it over several
// segments:
//
//	go test ./journal/segment -run '^$' -bench AppendDNS -benchtime 1000000x
func BenchmarkAppendDNS(b *testing.B) {
	recs := dnsMixRecs()
	j, err := OpenJournal(Options{Dir: b.TempDir(), UAI: uai, Key: testKey, MinFreeBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	base := heapAlloc()
	var peak heapPeak
	peak.start()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := range b.N {
		j.Append(&recs[i%len(recs)])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := j.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	if err := j.Log(journal.Navigation).WaitSealed(ctx); err != nil {
		b.Fatal(err)
	}
	cpu = processCPU() - cpu
	b.StopTimer()
	top := peak.stop()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
	b.ReportMetric(float64(top-min(top, base))/(1<<20), "peak-heap-MiB")
	if got := j.Log(journal.Navigation).Durable(); got < uint64(b.N) {
		b.Fatalf("%d records durable of %d appended", got, b.N)
	}
}

// heapPeak samples the heap in use (objects and the unused part of their
// spans: MemStats.HeapInuse) every 5 ms, through runtime/metrics, which
// does not stop the world.
type heapPeak struct {
	max  uint64
	quit chan struct{}
	done chan struct{}
}

func (p *heapPeak) start() {
	p.quit, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		for {
			metrics.Read(s)
			p.max = max(p.max, s[0].Value.Uint64()+s[1].Value.Uint64())
			select {
			case <-t.C:
			case <-p.quit:
				return
			}
		}
	}()
}

func (p *heapPeak) stop() uint64 {
	close(p.quit)
	<-p.done
	return p.max
}

// processCPU is the process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
