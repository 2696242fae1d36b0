package flows

import (
	"net/netip"
	"testing"
	"time"

	"vigie/journal"
)

// BenchmarkRecordFlow is the recorder's own work per ended flow: building
// the record (NAT, zone, link) under the rate bound and handing it to the
// journal. cpu-ms-per-s-per-1k-flows is the CPU it takes at 1,000 flows/s.
func BenchmarkRecordFlow(b *testing.B) {
	now := time.Date(2026, 3, 12, 13, 0, 0, 0, time.UTC)
	r, err := New(Config{UAI: "0671234X", Rate: 1e12, Burst: 1 << 30}, Deps{Journal: journal.Discard{},
		Local: func(a netip.Addr) bool { return a == netip.MustParseAddr("198.51.100.1") },
		Zone:  func(netip.Addr) string { return "pedagogique" }, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	f := Flow{Proto: "tcp", OrigSrc: ap("10.10.0.10:40123"), OrigDst: ap("203.0.113.7:8443"), ReplySrc: ap("203.0.113.7:8443"),
		ReplyDst: ap("198.51.100.1:61000"), Start: now, End: now.Add(time.Second), BytesOrig: 500, BytesReply: 9000}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Record(&f)
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns*1000/1e6, "cpu-ms-per-s-per-1k-flows")
}
