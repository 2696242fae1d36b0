package httpbench

import (
	"strings"
	"testing"
	"time"
)

// TestReportJudgesOpenLoop checks that issue 20's p99 targets are judged
// on the open-loop runs at 2,000 req/s (≤ 1 ms at 1 KiB, ≤ 2 ms at
// 100 KiB), that other rates and the closed-loop wrk figure are shown
// for reading without a mark, and that a failed run is reported, not
// judged.
func TestReportJudgesOpenLoop(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * 1e6) }
	rep := &Report{Options: Options{Sizes: []string{"1k"}, Conns: 50, Reps: 1, OpenLoopConns: 200, OpenLoopDuration: 10 * time.Second}}
	rep.Results = []Result{{Peer: "vigie", Size: "1k", Ratio: 0.4, AddedP99: ms(9.5), Peer1: Sample{RPS: 4000}, Direct: Sample{RPS: 10000}}}
	rep.OpenLoop = []OpenLoopResult{
		{Peer: "vigie", Size: "1k", Rate: 500, AddedP50: ms(0.2), AddedP99: ms(0.8), AddedP999: ms(1.5), CPUPerReq: 150 * time.Microsecond,
			Peer1: OpenLoopSample{P50: ms(0.6), P99: ms(2.1), P999: ms(4)}, Direct: OpenLoopSample{P50: ms(0.4), P99: ms(1.3), P999: ms(2.5)}},
		{Peer: "vigie", Size: "1k", Rate: 2000, AddedP99: ms(1.2)},
		{Peer: "vigie", Size: "100k", Rate: 2000, AddedP99: ms(1.9)},
		{Peer: "vigie", Size: "100k", Rate: 500, Err: "load generator: no request answered\nmore"},
	}
	targets := strings.Join(rep.Targets(), "\n")
	table := rep.OpenLoopTable()
	note := rep.OpenLoopNote()
	tests := []struct {
		name, text, want string
		absent           bool
	}{
		{"closed loop for reading", targets, "p99 added over direct, 1k, closed loop (wrk -c50, for reading): 9.50 ms", false},
		{"closed loop not judged", targets, "9.50 ms (target", true},
		{"500 req/s not judged", targets, "1k, open loop at 500 req/s (fixed schedule): 0.80 ms (p50 +0.20 ms, p99.9 +1.50 ms)\n", false},
		{"1k at 2000 judged", targets, "1k, open loop at 2000 req/s (fixed schedule): 1.20 ms (p50 +0.00 ms, p99.9 +0.00 ms) (target ≤ 1ms) — **missed**", false},
		{"100k at 2000 judged", targets, "100k, open loop at 2000 req/s (fixed schedule): 1.90 ms (p50 +0.00 ms, p99.9 +0.00 ms) (target ≤ 2ms) — met", false},
		{"failed run left out of targets", targets, "100k, open loop at 500", true},
		{"table row", table, "| vigie | 1k | 500 | 0.40 / 1.30 / 2.50 | 0.60 / 2.10 / 4.00 | +0.20 / +0.80 / +1.50 | 0 | 150.0 |", false},
		{"table failure", table, "| vigie | 100k | 500 | failed: load generator: no request answered |", false},
		{"note", note, "vigie, 1k at 500 req/s: p50/p99/p99.9", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Contains(tc.text, tc.want); got == tc.absent {
				t.Errorf("contains %q = %v in:\n%s", tc.want, got, tc.text)
			}
		})
	}
}
