package dns

import (
	"net/netip"
	"testing"

	"vigie/journal"
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
