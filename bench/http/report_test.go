package httpbench

import (
	"strings"
	"testing"
	"time"
)

// TestReportLabelsBothLoops checks that the ≤ 2 ms target is judged on the
// closed-loop wrk figure only, and that the open-loop figures are shown
// beside it, labelled, without a mark of their own.
func TestReportLabelsBothLoops(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * 1e6) }
	rep := &Report{Options: Options{Sizes: []string{"1k"}, Conns: 50, Reps: 1, OpenLoopConns: 200, OpenLoopDuration: 10 * time.Second}}
	rep.Results = []Result{{Peer: "vigie", Size: "1k", Ratio: 0.4, AddedP99: ms(9.5), Peer1: Sample{RPS: 4000}, Direct: Sample{RPS: 10000}}}
	rep.OpenLoop = []OpenLoopResult{
		{Peer: "vigie", Rate: 500, AddedP50: ms(0.2), AddedP99: ms(0.8), AddedP999: ms(1.5), CPUPerReq: 150 * time.Microsecond,
			Peer1: OpenLoopSample{P50: ms(0.6), P99: ms(2.1), P999: ms(4)}, Direct: OpenLoopSample{P50: ms(0.4), P99: ms(1.3), P999: ms(2.5)}},
		{Peer: "vigie", Rate: 2000, Err: "load generator: no request answered\nmore"},
	}
	targets := strings.Join(rep.Targets(), "\n")
	table := rep.OpenLoopTable()
	note := rep.OpenLoopNote()
	tests := []struct {
		name, text, want string
		absent           bool
	}{
		{"closed loop judged", targets, "p99 added over direct, 1k, closed loop (wrk -c50, the issue's measure): 9.50 ms (target ≤ 2 ms) — MISSED", false},
		{"open loop shown", targets, "open loop at 500 req/s (fixed schedule, for reading, not the target's measure): 0.80 ms", false},
		{"open loop not judged", targets, "0.80 ms (p50 +0.20 ms, p99.9 +1.50 ms) —", true},
		{"failed rate left out of targets", targets, "2000 req/s", true},
		{"table row", table, "| vigie | 500 | 0.40 / 1.30 / 2.50 | 0.60 / 2.10 / 4.00 | +0.20 / +0.80 / +1.50 | 0 | 150.0 |", false},
		{"table failure", table, "| vigie | 2000 | failed: load generator: no request answered |", false},
		{"note", note, "not the issue's closed-loop wrk -c50 measure", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Contains(tc.text, tc.want); got == tc.absent {
				t.Errorf("contains %q = %v in:\n%s", tc.want, got, tc.text)
			}
		})
	}
}
