package flows

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/journal"
)

var (
	t0      = time.Date(2026, 3, 12, 13, 32, 5, 0, time.UTC)
	gateway = []netip.Addr{netip.MustParseAddr("10.10.0.1"), netip.MustParseAddr("198.51.100.1")}
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func newTestRecorder(t *testing.T, cfg Config, now *time.Time) (*Recorder, *journal.Memory, *prometheus.Registry) {
	t.Helper()
	mem := &journal.Memory{}
	reg := prometheus.NewRegistry()
	cfg.UAI = "0671234X"
	if cfg.Redirects == nil {
		cfg.Redirects = map[uint16]string{53: "dns", 3129: "proxy"}
		cfg.Upstreams = map[uint16]string{53: "dns", 443: "proxy", 80: "proxy"}
	}
	r, err := New(cfg, Deps{Journal: mem, Registry: reg, Now: func() time.Time { return *now },
		Local: func(a netip.Addr) bool {
			for _, g := range gateway {
				if a == g {
					return true
				}
			}
			return false
		},
		Zone: func(a netip.Addr) string {
			if netip.MustParsePrefix("10.10.0.0/16").Contains(a) {
				return "pedagogique"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	return r, mem, reg
}

func TestRecordKinds(t *testing.T) {
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		name string
		f    Flow
		want *journal.Record
	}{
		{"forwarded with masquerade", Flow{Proto: "tcp", OrigSrc: ap("10.10.0.10:40123"), OrigDst: ap("203.0.113.7:8443"),
			ReplySrc: ap("203.0.113.7:8443"), ReplyDst: ap("198.51.100.1:61000"), Start: t0, End: t0.Add(3 * time.Second),
			BytesOrig: 500, BytesReply: 9000},
			&journal.Record{Proto: "tcp", Client: ap("10.10.0.10:40123"), Dest: ap("203.0.113.7:8443"), NAT: ap("198.51.100.1:61000"),
				Duration: 3 * time.Second, BytesOut: 500, BytesIn: 9000, Verdict: "allow", Zone: "pedagogique"}},
		{"forwarded without translation", Flow{Proto: "udp", OrigSrc: ap("[fd00:10::10]:5000"), OrigDst: ap("[2001:db8::1]:123"),
			ReplySrc: ap("[2001:db8::1]:123"), ReplyDst: ap("[fd00:10::10]:5000"), Start: t0, End: t0.Add(time.Second)},
			&journal.Record{Proto: "udp", Client: ap("[fd00:10::10]:5000"), Dest: ap("[2001:db8::1]:123"), NAT: ap("[fd00:10::10]:5000"),
				Duration: time.Second, Verdict: "allow"}},
		{"proxy upstream", Flow{Proto: "tcp", OrigSrc: ap("198.51.100.1:50000"), OrigDst: ap("203.0.113.9:443"),
			ReplySrc: ap("203.0.113.9:443"), ReplyDst: ap("198.51.100.1:50000"), Start: t0, End: t0.Add(time.Second)},
			&journal.Record{Proto: "tcp", Client: ap("198.51.100.1:50000"), Dest: ap("203.0.113.9:443"), NAT: ap("198.51.100.1:50000"),
				Duration: time.Second, Verdict: "allow", Zone: "edge", Link: "proxy"}},
		{"dropped", Flow{Proto: "udp", OrigSrc: ap("10.10.0.10:40000"), OrigDst: ap("203.0.113.7:51820"), Start: t0,
			Dropped: true, Reason: "internet.pedagogique"},
			&journal.Record{Proto: "udp", Client: ap("10.10.0.10:40000"), Dest: ap("203.0.113.7:51820"), Verdict: "drop",
				Reason: "internet.pedagogique", Zone: "pedagogique"}},
		{"redirected to the proxy", Flow{Proto: "tcp", OrigSrc: ap("10.10.0.10:40000"), OrigDst: ap("203.0.113.7:443"),
			ReplySrc: ap("10.10.0.1:3129"), ReplyDst: ap("10.10.0.10:40000"), Start: t0}, nil},
		{"to the gateway", Flow{Proto: "tcp", OrigSrc: ap("10.10.0.10:40000"), OrigDst: ap("10.10.0.1:22"),
			ReplySrc: ap("10.10.0.1:22"), ReplyDst: ap("10.10.0.10:40000"), Start: t0}, nil},
		{"loopback", Flow{Proto: "tcp", OrigSrc: ap("127.0.0.1:40000"), OrigDst: ap("127.0.0.1:53"), Start: t0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, mem, _ := newTestRecorder(t, Config{}, &now)
			r.Record(&tc.f)
			got := mem.Records()
			if tc.want == nil {
				if len(got) != 0 {
					t.Fatalf("wrote %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("wrote %d records, want 1", len(got))
			}
			w := *tc.want
			w.Stream, w.UAI, w.Time = journal.Connexions, "0671234X", t0
			if got[0] != w {
				t.Fatalf("got  %+v\nwant %+v", got[0], w)
			}
		})
	}
}

// TestFloodIsBoundedAndDeclared sends a burst far beyond the rate: the
// journal gets at most the burst, and one gap record declares exactly
// what was refused before the next flow.
func TestFloodIsBoundedAndDeclared(t *testing.T) {
	now := t0
	r, mem, reg := newTestRecorder(t, Config{Rate: 100, Burst: 50}, &now)
	for i := 0; i < 1000; i++ {
		f := Flow{Proto: "tcp", OrigSrc: netip.AddrPortFrom(netip.MustParseAddr("10.10.0.66"), uint16(1000+i)),
			OrigDst: ap("203.0.113.7:22"), ReplySrc: ap("203.0.113.7:22"), ReplyDst: ap("198.51.100.1:40000"), Start: now, End: now}
		r.Record(&f)
	}
	if n := len(mem.Records()); n != 50 {
		t.Fatalf("%d records during the burst, want the burst of 50", n)
	}
	if got := testutil.ToFloat64(r.m.lost.WithLabelValues(LossRate)); got != 950 {
		t.Fatalf("lost metric %v, want 950", got)
	}
	now = now.Add(time.Second)
	r.Record(&Flow{Proto: "udp", OrigSrc: ap("10.10.0.10:1"), OrigDst: ap("203.0.113.7:123"), Start: now, End: now})
	recs := mem.Records()
	gap := recs[50]
	if gap.Verdict != "gap" || gap.Lost != 950 || gap.Reason != "conntrack.rate" {
		t.Fatalf("gap record %+v, want 950 lost for rate", gap)
	}
	if recs[51].Proto != "udp" {
		t.Fatalf("the flow after the gap is %+v", recs[51])
	}
	if n, _ := testutil.GatherAndCount(reg, "vigie_flows_lost_total"); n == 0 {
		t.Fatal("vigie_flows_lost_total not exposed")
	}
	// A loss with no flow after it is still declared by Flush.
	r.Lose(3, LossENOBUFS)
	r.Flush()
	recs = mem.Records()
	if last := recs[len(recs)-1]; last.Lost != 3 || last.Reason != "conntrack.enobufs" {
		t.Fatalf("flushed gap %+v", last)
	}
}
