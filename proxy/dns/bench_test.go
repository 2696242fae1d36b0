package dns

import (
	"context"
	"crypto/ed25519"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigie/demo"
	"vigie/journal"
	"vigie/journal/segment"
)

// BenchmarkServe runs the whole chain in process (no socket): what one
// query costs the filter, and that cached and blocked names allocate
// nothing. The side-by-side figures over real sockets are in bench/dns.
func BenchmarkServe(b *testing.B) {
	h := newHarness(b, func(c *Config) { c.RateLimit = RateLimitConfig{QPS: 1e12, Burst: 1 << 30} })
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"cached", rawQuery(1, nameAllowed, typeA)},
		{"cached-edns", withOPT(rawQuery(1, nameAllowed, typeA), 0, nil)},
		{"blocked", rawQuery(2, "www.pornhub.com", typeA)},
		{"blocked-edns-ede", withOPT(rawQuery(2, "www.pornhub.com", typeA), 0, nil)},
		{"cname-cloaking", rawQuery(3, nameCloak, typeA)},
		{"safesearch", rawQuery(4, "www.google.fr", typeA)},
	} {
		for _, journaling := range []bool{false, true} {
			name := tc.name
			if journaling {
				name += "/journal"
				h.srv.journal, h.srv.journaling = &journal.Memory{}, true
				h.srv.journal = discardCopy{}
			} else {
				h.srv.journal, h.srv.journaling = journal.Discard{}, false
			}
			b.Run(name, func(b *testing.B) {
				r := h.srv.pool.Get().(*request)
				defer h.srv.pool.Put(r)
				r.tcp, r.udp, r.conn = true, nil, &tcpConn{c: discardConn{}}
				r.client = netip.MustParseAddrPort("127.0.0.1:40000")
				n := copy(r.in, tc.pkt)
				r.pkt = r.in[:n]
				h.srv.serve(r) // warm the cache
				if len(r.out) == 0 {
					b.Fatal("no answer")
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					h.srv.serve(r)
				}
			})
		}
	}
}

// discardCopy is a journal sink that copies the record like a real one
// would, and drops it.
type discardCopy struct{}

var sinkRecord journal.Record

func (discardCopy) Append(r *journal.Record) { sinkRecord = *r }

// BenchmarkServeJournal runs the chain in process with the edge's durable
// journal (a real segment.Journal with its defaults: group commit with
// fsync every 5 ms, 256 Ki-record segments sealed in the background)
// against the same with the journal off, on dnsbench's mix: half listed
// names, nearly all distinct (16,384 of adult-top1m), half cached allowed
// names (1,024). It reports the process CPU time per query (the
// committer and sealer goroutines and the collector included), which the
// load of a shared machine moves far less than wall time. For the CPU
// profile of the journal's share:
//
//	go test ./proxy/dns -run '^$' -bench ServeJournal/segment -benchtime 1000000x -cpuprofile cpu.out
func BenchmarkServeJournal(b *testing.B) {
	h := newHarness(b, func(c *Config) { c.RateLimit = RateLimitConfig{QPS: 1e12, Burst: 1 << 30} })
	f, err := os.ReadFile(filepath.Join(listsDir, "adult-top1m", "domains"))
	if err != nil {
		b.Fatal(err)
	}
	var pkts [][]byte
	for i, name := range strings.Fields(string(f)) {
		if i == 16384 {
			break
		}
		pkts = append(pkts, rawQuery(uint16(i), name, typeA), rawQuery(uint16(i), "a"+strconv.Itoa(i%1024)+"."+nameAllowed, typeA))
	}
	for _, mode := range []string{"off", "segment"} {
		b.Run(mode, func(b *testing.B) {
			var j *segment.Journal
			if mode == "segment" {
				j, err = segment.OpenJournal(segment.Options{Dir: b.TempDir(), UAI: demo.UAI, Key: ed25519.NewKeyFromSeed(make([]byte, 32)), MinFreeBytes: -1})
				if err != nil {
					b.Fatal(err)
				}
				defer j.Close()
				h.srv.journal, h.srv.journaling, h.srv.nameView = j, true, true
			} else {
				h.srv.journal, h.srv.journaling, h.srv.nameView = journal.Discard{}, false, false
			}
			r := h.srv.pool.Get().(*request)
			defer h.srv.pool.Put(r)
			r.tcp, r.udp, r.conn = true, nil, &tcpConn{c: discardConn{}}
			r.client = netip.MustParseAddrPort("127.0.0.1:40000")
			serve := func(i int) {
				r.pkt = r.in[:copy(r.in, pkts[i%len(pkts)])]
				h.srv.serve(r)
			}
			for i := range pkts { // fill the cache
				serve(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for i := range b.N {
				serve(i)
			}
			if j != nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := j.Sync(ctx); err != nil {
					b.Fatal(err)
				}
				if err := j.Log(journal.Navigation).WaitSealed(ctx); err != nil {
					b.Fatal(err)
				}
			}
			cpu = processCPU() - cpu
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/query")
		})
	}
}

// processCPU is the process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
