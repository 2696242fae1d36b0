package dnsbench

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePerf(t *testing.T) {
	out := `DNS Performance Testing Tool
Statistics:

  Queries sent:         1523446
  Queries completed:    1523401 (100.00%)
  Queries lost:         45 (0.00%)

  Response codes:       NOERROR 761700 (50.00%), NXDOMAIN 761701 (50.00%)
  Average packet size:  request 37, response 53
  Run time (s):         10.000079
  Queries per second:   152339.099563

  Average Latency (s):  0.000640 (min 0.000012, max 0.016511)
  Latency StdDev (s):   0.000259
`
	p, err := parsePerf(out)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != 1523446 || p.Completed != 1523401 || p.Lost != 45 || p.QPS != 152339.099563 || p.AvgLatency != 0.000640 || p.Elapsed != 10.000079 {
		t.Errorf("parsed %+v", p)
	}
	if _, err := parsePerf("dnsperf: error: could not open file"); err == nil {
		t.Error("garbage parsed")
	}
}

func TestLists(t *testing.T) {
	lists := filepath.Join("..", "..", "testdata", "blocklists")
	blocked, err := readBlocklist(lists)
	if err != nil {
		t.Fatal(err)
	}
	// 282,582 names in the 2026-08 snapshot (IP literals left out).
	if len(blocked) < 250000 || len(blocked) > 450000 {
		t.Errorf("%d blocked names", len(blocked))
	}
	for _, want := range []string{"pornhub.com", "0-casino.info"} {
		found := false
		for _, b := range blocked {
			found = found || b == want
		}
		if !found {
			t.Errorf("%s missing from the blocklist", want)
		}
	}
	allowed, err := allowedNames(lists, blocked, 1000)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]struct{}{}
	for _, b := range blocked {
		set[b] = struct{}{}
	}
	for _, a := range allowed {
		if blockedBy(set, a) {
			t.Errorf("allowed name %s is blocked", a)
		}
	}
	q := filepath.Join(t.TempDir(), "q.txt")
	if err := queryFile(q, blocked, allowed, 10000); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(q)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	nb, www := 0, 0
	for _, l := range lines {
		name := strings.TrimSuffix(l, " A")
		if blockedBy(set, name) {
			nb++
			if strings.HasPrefix(name, "www.") {
				www++
			}
		}
	}
	if len(lines) != 10000 || nb != 5000 || math.Abs(float64(www)-2500) > 250 {
		t.Errorf("%d lines, %d blocked, %d www.", len(lines), nb, www)
	}
}

func TestSummaries(t *testing.T) {
	r := Result{Runs: []Measurement{
		{Peer: PeerUnbound, Seq: 0, QPS: 100, RSS: 100},
		{Peer: PeerVigie, Seq: 1, QPS: 150, RSS: 20, Startup: 0.1},
		{Peer: PeerUnbound, Seq: 2, QPS: 200, RSS: 100},
		{Peer: PeerVigie, Seq: 3, QPS: 300, RSS: 20, Startup: 0.1},
		{Peer: PeerUnbound, Seq: 4, QPS: 200, RSS: 100},
	}}
	s := r.Summaries()
	if len(s) != 2 || s[0].Peer != PeerUnbound || s[1].Peer != PeerVigie {
		t.Fatalf("%+v", s)
	}
	// Ratios against the neighbours: 150/150 = 1, 300/200 = 1.5; median 1.25.
	if s[1].QPSRatio != 1.25 || s[1].RSSRatio != 0.2 || s[1].QPS != 225 {
		t.Errorf("%+v", s[1])
	}
	if md := r.Markdown(); !strings.Contains(md, "QPS ≥ 1.50× Unbound: **missed** (1.25×)") {
		t.Errorf("markdown:\n%s", md)
	}
	figs := r.Figures()
	if len(figs) < 3 || figs[0].PeerValue != 200 || figs[0].Value != 225 {
		t.Errorf("figures %+v", figs)
	}
}
