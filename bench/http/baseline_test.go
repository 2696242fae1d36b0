package httpbench

import (
	"slices"
	"strings"
	"testing"
)

func TestWithBaselines(t *testing.T) {
	tests := []struct {
		name                   string
		peers, baselines, want []string
	}{
		{"none", []string{"squid", "vigie"}, nil, []string{"squid", "vigie"}},
		{"right after vigie-nojournal", []string{"squid", "vigie", "vigie-nojournal", "goproxy"}, []string{"vigie@a", "vigie@b"},
			[]string{"squid", "vigie", "vigie-nojournal", "vigie@a", "vigie@b", "goproxy"}},
		{"at the end without it", []string{"vigie"}, []string{"vigie@a"}, []string{"vigie", "vigie@a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := slices.Clone(tc.peers)
			if got := withBaselines(tc.peers, tc.baselines); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if !slices.Equal(tc.peers, orig) {
				t.Errorf("peers changed to %v", tc.peers)
			}
		})
	}
}

// TestBaselineLines checks the ratios the targets list gives for other
// revisions: this tree against each, and each against the one before.
func TestBaselineLines(t *testing.T) {
	rep := &Report{Options: Options{Sizes: []string{"1k", "100k"}}}
	rep.Results = []Result{
		{Peer: "vigie-nojournal", Size: "1k", Ratio: 0.45},
		{Peer: "vigie@aaaa", Size: "1k", Ratio: 0.50},
		{Peer: "vigie@bbbb", Size: "1k", Ratio: 0.45},
		{Peer: "vigie-nojournal", Size: "100k", Ratio: 0.8},
		{Peer: "vigie@aaaa", Size: "100k", Err: "wrk: failed"},
	}
	if got := rep.Baselines(); !slices.Equal(got, []string{"vigie@aaaa", "vigie@bbbb"}) {
		t.Fatalf("baselines %v", got)
	}
	if x, ok := rep.BaselineRatio("vigie@aaaa", "1k"); !ok || x != 0.9 {
		t.Errorf("ratio %v %v, want 0.9", x, ok)
	}
	text := strings.Join(rep.Targets(), "\n")
	for _, want := range []string{
		"req/s, 1k, vigie-nojournal against vigie@aaaa (records discarded on both sides, ratio of their ratios to the paired direct runs): 0.900× (-10.0 %)",
		"req/s, 1k, vigie@bbbb against vigie@aaaa (records discarded on both sides, ratio of their ratios to the paired direct runs): 0.900× (-10.0 %)",
		"req/s, 1k, vigie-nojournal against vigie@bbbb (records discarded on both sides, ratio of their ratios to the paired direct runs): 1.000× (+0.0 %)",
		"req/s, 100k, vigie-nojournal against vigie@aaaa: not measured",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}
