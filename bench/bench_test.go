package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"vigie/bench/benchenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const sampleOutput = `goos: linux
goarch: amd64
pkg: vigie/rules
cpu: AMD EPYC
BenchmarkDecide/ut1-2         	  300000	      3025 ns/op	       0 B/op	       0 allocs/op
BenchmarkDecide/ut1-2         	  300000	       805.6 ns/op	       0 B/op	       0 allocs/op
BenchmarkDecide/ut1-2         	  300000	       900.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkDecide/ut1-map-baseline-2         	  300000	       970.4 ns/op	       0 B/op	       0 allocs/op
BenchmarkDecide/ut1-map-baseline-2         	  300000	       469.3 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	vigie/rules	13.150s
pkg: vigie/rules/domainset
BenchmarkMemory/n=370k-2         	       1	1183780355 ns/op	         8.782 B/domain	        61.78 mapstring-B/domain	72984464 B/op	 1483846 allocs/op
BenchmarkBroken-2   	 garbage
--- FAIL: BenchmarkOther
`

func TestParseBench(t *testing.T) {
	res, err := parseBench(strings.NewReader(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		bench, metric string
		want          float64
		runs          int
	}{
		{"BenchmarkDecide/ut1", "ns/op", 900, 3}, // the median of three
		{"BenchmarkDecide/ut1", "allocs/op", 0, 3},
		{"BenchmarkDecide/ut1-map-baseline", "ns/op", (970.4 + 469.3) / 2, 2},
		{"BenchmarkMemory/n=370k", "B/domain", 8.782, 1},
		{"BenchmarkMemory/n=370k", "mapstring-B/domain", 61.78, 1},
	}
	for _, c := range cases {
		t.Run(c.bench+" "+c.metric, func(t *testing.T) {
			r, ok := res[c.bench]
			if !ok {
				t.Fatalf("no result for %s (have %v)", c.bench, sortedKeys(res))
			}
			if got := r.Metrics[c.metric]; got != c.want || r.Runs != c.runs {
				t.Errorf("%s = %v over %d runs, want %v over %d", c.metric, got, r.Runs, c.want, c.runs)
			}
		})
	}
	if r := res["BenchmarkMemory/n=370k"]; r == nil || r.Pkg != "vigie/rules/domainset" {
		t.Errorf("package of BenchmarkMemory: %+v", r)
	}
	if _, ok := res["BenchmarkBroken"]; ok {
		t.Error("a malformed line was parsed")
	}
}

func TestComparison(t *testing.T) {
	res, _ := parseBench(strings.NewReader(sampleOutput))
	cases := []struct {
		name    string
		c       comparison
		value   float64
		ratio   float64
		met     string // "", "yes", "no"
		wantErr string
	}{
		{"peer benchmark", comparison{Bench: "BenchmarkDecide/ut1", Metric: "ns/op", Better: Lower, Peer: "map", PeerBench: "BenchmarkDecide/ut1-map-baseline", TargetRatio: 2},
			900, 900 / ((970.4 + 469.3) / 2), "yes", ""},
		{"peer metric of the same line", comparison{Bench: "BenchmarkMemory/n=370k", Metric: "B/domain", Better: Lower, Peer: "map", PeerMetric: "mapstring-B/domain", TargetRatio: 0.1},
			8.782, 8.782 / 61.78, "no", ""},
		{"absolute target, scaled", comparison{Bench: "BenchmarkDecide/ut1", Metric: "ns/op", Scale: 1e9, Invert: true, Better: Higher, TargetValue: 1e6},
			1e9 / 900, 0, "yes", ""},
		{"missing benchmark", comparison{Bench: "BenchmarkNope", Metric: "ns/op"}, 0, 0, "", "did not run"},
		{"missing metric", comparison{Bench: "BenchmarkDecide/ut1", Metric: "records/s"}, 0, 0, "", `no "records/s"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := c.c.figure(res)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !near(f.Value, c.value) || !near(f.Ratio, c.ratio) {
				t.Errorf("value %v ratio %v, want %v and %v", f.Value, f.Ratio, c.value, c.ratio)
			}
			if got := metText(f.Met); strings.Trim(got, "*") != c.met {
				t.Errorf("met %q, want %q", got, c.met)
			}
		})
	}
}

func near(a, b float64) bool { return a == b || (a-b)/b < 1e-9 && (b-a)/b < 1e-9 }

func TestBenchMatches(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"^Benchmark(Memory5M|Load5M)$", "BenchmarkMemory5M", true},
		{"^BenchmarkDecide$/^ut1", "BenchmarkDecide/ut1-map-baseline", true},
		{"^BenchmarkDecide$/^ut1", "BenchmarkDecide/5M", false},
		{"^BenchmarkSeal$", "BenchmarkSeal/navigation", true},
	}
	for _, c := range cases {
		if got := benchMatches(c.pattern, c.name); got != c.want {
			t.Errorf("benchMatches(%q, %q) = %v", c.pattern, c.name, got)
		}
	}
}

func TestSelectParts(t *testing.T) {
	all, err := selectParts("all")
	if err != nil || len(all) != len(allParts()) {
		t.Fatalf("all: %d parts, %v", len(all), err)
	}
	some, err := selectParts("dns, matcher,dns")
	if err != nil || len(some) != 2 || some[0].Name != "dns" || some[1].Name != "matcher" {
		t.Errorf("dns,matcher: %v %v", some, err)
	}
	if _, err := selectParts("dns,squid"); err == nil || !strings.Contains(err.Error(), `"squid"`) {
		t.Errorf("unknown part: %v", err)
	}
}

// TestReportGolden renders a fixed report; refresh with -update and review
// the diff.
func TestReportGolden(t *testing.T) {
	yes, no := true, false
	rep := &Report{
		Machine: Machine{CPU: "AMD EPYC", Cores: 2, MemoryBytes: 24 << 30, Kernel: "6.1.0", OS: "Debian GNU/Linux 12 (bookworm)", GoVersion: "go1.26.8", Commit: "abc123"},
		Started: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), Finished: time.Date(2026, 11, 28, 10, 42, 0, 0, time.UTC),
		Args: []string{"-parts", "dns,http"},
		Parts: []PartResult{
			{Name: "dns", Status: "ok", Seconds: 600, Peers: "Unbound (baseline), dnsmasq", Figures: []Figure{
				{Name: "QPS", Value: 151234, Unit: "q/s", Better: Higher, Peer: "unbound", PeerValue: 143000, Ratio: 1.06, TargetRatio: 1, Met: &yes, Source: "bench/dns"},
				{Name: "resident memory after load", Value: 23 << 20, Unit: "B", Better: Lower, Peer: "unbound", PeerValue: 163 << 20, Ratio: 0.141, TargetRatio: 0.25, Met: &yes, Source: "bench/dns"},
				{Name: "startup", Value: 0.25, Unit: "s", Better: Lower, TargetValue: 0.2, Met: &no, Source: "bench/dns", Note: "includes mapping the bundle"},
				{Name: "CPU per query", Value: 9.1, Unit: "µs", Better: Lower, Peer: "unbound", PeerValue: 11.2, Ratio: 0.81, BaselineRuns: []float64{11.2, 14.1}, BaselineSpread: 0.26,
					Noisy: true, NoisyWhy: "baseline runs 26 % apart (> 15 %)", Source: "bench/dns"},
			}, Commands: []string{"dnsperf -c 10"}, LoadBefore: "0.42 0.30 0.20", LoadAfter: "1.10 0.50 0.30", Attempts: 3},
			{Name: "http", Status: "failed", Seconds: 3, Error: "httpbench: wrk not found\nmore"},
		},
	}
	var md, js bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Parts) != 2 || back.Parts[0].Figures[0].Ratio != 1.06 {
		t.Errorf("JSON does not round-trip: %v", err)
	}
	golden := filepath.Join("testdata", "report.golden.md")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, md.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./bench -run TestReportGolden -update)", err)
	}
	if !bytes.Equal(md.Bytes(), want) {
		t.Errorf("markdown differs from %s (run with -update and review the diff):\n%s", golden, md.String())
	}
}

func TestFormatValue(t *testing.T) {
	cases := []struct {
		v    float64
		unit string
		want string
	}{
		{151234, "q/s", "151.2 kq/s"},
		{2.5e6, "records/s", "2.50 Mrecords/s"},
		{0.0331, "s", "0.0331 s"},
		{5.54, "ms", "5.54 ms"},
		{23 << 20, "B", "23.0 MiB"},
		{512, "B", "512 B"},
		{0, "allocs", "0 allocs"},
	}
	for _, c := range cases {
		if got := formatValue(c.v, c.unit); got != c.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

// TestSettle: a part waits, bounded, for the load its predecessor left to
// fall before it starts, rather than spending an attempt on it.
func TestSettle(t *testing.T) {
	for _, tc := range []struct {
		name      string
		loads     []float64
		settle    time.Duration
		wantLoad  float64
		wantSleep int
	}{
		{"quiet", []float64{0.4}, time.Minute, 0.4, 0},
		{"falls", []float64{2.1, 1.8, 1.2, 0.2}, time.Minute, 1.2, 2},
		{"stays busy: bounded", []float64{3}, 20 * time.Second, 3, 4},
		{"no settling asked", []float64{3}, 0, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads, sleeps := 0, 0
			readLoad := func() (benchenv.Load, error) {
				l := tc.loads[min(reads, len(tc.loads)-1)]
				reads++
				return benchenv.Load{One: l}, nil
			}
			q := quietRule{MaxLoad: 1.5, Settle: tc.settle, sleep: func(context.Context, time.Duration) { sleeps++ }}
			got := q.settle(context.Background(), "fake", io.Discard, readLoad)
			if got.One != tc.wantLoad || sleeps != tc.wantSleep {
				t.Errorf("load %.1f after %d sleeps, want %.1f after %d", got.One, sleeps, tc.wantLoad, tc.wantSleep)
			}
		})
	}
}

// TestRunQuiet: a part measured on a busy machine, or whose baseline moved
// by more than 15 %, is run again, then marked bruité rather than quoted.
func TestRunQuiet(t *testing.T) {
	steady := []float64{100, 104}
	drifting := []float64{100, 130}
	for _, tc := range []struct {
		name         string
		loads        []float64 // 1-minute load read before each attempt (and after)
		baseline     []float64
		wantAttempts int
		wantNoisy    string
	}{
		{"quiet at once", []float64{0.3}, steady, 1, ""},
		{"busy then quiet", []float64{4, 0.5}, steady, 2, ""},
		{"busy throughout", []float64{4}, steady, 3, "load 4.00 > 1.5"},
		{"baseline drifts", []float64{0.2}, drifting, 3, "baseline runs 30 % apart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads := 0
			readLoad := func() (benchenv.Load, error) {
				l := tc.loads[min(reads/2, len(tc.loads)-1)]
				reads++
				return benchenv.Load{One: l, Five: l, Fifteen: l}, nil
			}
			runs := 0
			p := part{Name: "fake", Run: func(context.Context, options, io.Writer) (partOutput, error) {
				runs++
				return partOutput{Figures: []Figure{{Name: "x", Value: 1, Peer: "p", PeerValue: 1, BaselineRuns: tc.baseline}}}, nil
			}}
			opt := options{PartTimeout: time.Minute, Quiet: quietRule{MaxLoad: 1.5, MaxSpread: 0.15, Attempts: 3}}
			res := runQuiet(context.Background(), p, opt, io.Discard, readLoad)
			if res.Attempts != tc.wantAttempts || runs != tc.wantAttempts {
				t.Errorf("attempts %d (runs %d), want %d", res.Attempts, runs, tc.wantAttempts)
			}
			f := res.Figures[0]
			if tc.wantNoisy == "" && f.Noisy {
				t.Errorf("figure marked noisy: %s", f.NoisyWhy)
			}
			if tc.wantNoisy != "" && (!f.Noisy || !strings.Contains(f.NoisyWhy, tc.wantNoisy)) {
				t.Errorf("noisy=%v why=%q, want %q", f.Noisy, f.NoisyWhy, tc.wantNoisy)
			}
			var md bytes.Buffer
			(&Report{Parts: []PartResult{res}}).WriteMarkdown(&md)
			if quoted := strings.Contains(md.String(), "1.00×"); quoted == f.Noisy {
				t.Errorf("summary quotes the ratio: %v, noisy: %v\n%s", quoted, f.Noisy, md.String())
			}
		})
	}
}
