package httpbench

import (
	"strings"
	"testing"
	"time"
)

// TestConnectReport: medians per figure, the ratio to each baseline in
// req/s, and the table saying it with the load average.
func TestConnectReport(t *testing.T) {
	mk := func(peer string, rps ...float64) ConnectResult {
		r := ConnectResult{Peer: peer}
		for _, v := range rps {
			r.Samples = append(r.Samples, ConnectSample{RequestsPerSec: v, TunnelsPerSec: v / 2, CPUPerReq: time.Duration(v) * time.Nanosecond})
		}
		r.summarize()
		return r
	}
	rep := &ConnectReport{Options: ConnectOptions{Conns: 50, PerTunnel: 2, Reps: 3, Duration: time.Second},
		LoadStart: "1.00 1.00 1.00", LoadEnd: "2.00 1.00 1.00",
		Results: []ConnectResult{mk(BaselineAgainst, 900, 1000, 5000), mk("vigie@abc", 1000, 1100, 10)}}
	if got := rep.Results[0].RequestsPerSec; got != 1000 {
		t.Fatalf("median req/s %v, want 1000", got)
	}
	if got := rep.Results[1].TunnelsPerSec; got != 500 {
		t.Fatalf("median tunnels/s %v, want 500", got)
	}
	r, ok := rep.Ratio("vigie@abc")
	if !ok || r != 1.0 {
		t.Fatalf("ratio %v %v, want 1", r, ok)
	}
	if _, ok := rep.Ratio("vigie@none"); ok {
		t.Fatal("ratio to a peer that did not run")
	}
	tab := rep.Table()
	for _, want := range []string{"vigie-nojournal against vigie@abc: 1.000× (+0.0 %)", "load average 1.00 1.00 1.00 → 2.00 1.00 1.00", "| vigie@abc | 500 | 1000 |"} {
		if !strings.Contains(tab, want) {
			t.Fatalf("table lacks %q:\n%s", want, tab)
		}
	}
}
