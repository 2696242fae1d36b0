package httpbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// BaselinePrefix starts the name of a peer that is Vigie built from
// another revision of this repository: "vigie@<short hash>".
const BaselinePrefix = "vigie@"

// BaselineAgainst is the peer a baseline is compared with: Vigie of the
// tree being measured with its records discarded, as the baseline runs
// (older revisions' helpers have no durable journal).
const BaselineAgainst = "vigie-nojournal"

// buildBaseline builds the benchmark helper (whose -role vigie is Vigie's
// proxy with the demo policy on the full lists) as it was at rev, from a
// temporary git worktree that is removed afterwards, into work. It
// returns the peer's name and the binary.
func buildBaseline(ctx context.Context, o Options, work, rev string) (name, bin string, err error) {
	out, err := exec.CommandContext(ctx, "git", "-C", o.Root, "rev-parse", "--verify", "--short=9", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("bench: baseline %q: not a commit of %s: %w", rev, o.Root, err)
	}
	short := strings.TrimSpace(string(out))
	tmp, err := os.MkdirTemp("", "vigie-baseline-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "src")
	if out, err := exec.CommandContext(ctx, "git", "-C", o.Root, "worktree", "add", "--detach", src, short).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("bench: baseline %s: git worktree add: %v\n%s", short, err, out)
	}
	defer func() {
		// Not ctx: the worktree goes even when the run was interrupted.
		exec.Command("git", "-C", o.Root, "worktree", "remove", "--force", src).Run()
		exec.Command("git", "-C", o.Root, "worktree", "prune").Run()
	}()
	if _, err := os.Stat(filepath.Join(src, "bench", "http", "helper")); err != nil {
		return "", "", fmt.Errorf("bench: baseline %s has no bench/http/helper to build", short)
	}
	bin = filepath.Join(work, "helper-"+short)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/http/helper")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("bench: baseline %s: build helper: %v\n%s", short, err, out)
	}
	fmt.Fprintf(o.Log, "baseline %s (%s) built\n", BaselinePrefix+short, rev)
	return BaselinePrefix + short, bin, nil
}

// withBaselines returns peers with the baseline peers placed right after
// the one they are compared with (at the end when it does not run), so
// that the two run close together in time.
func withBaselines(peers, baselines []string) []string {
	if len(baselines) == 0 {
		return peers
	}
	i := slices.Index(peers, BaselineAgainst)
	if i < 0 {
		return append(slices.Clone(peers), baselines...)
	}
	out := slices.Clone(peers[:i+1])
	out = append(out, baselines...)
	return append(out, peers[i+1:]...)
}

// BaselineRatio is Vigie of this tree against a baseline at size: the
// ratio of their req/s ratios to their paired direct runs (above 1: this
// tree is faster), and whether both were measured.
func (r *Report) BaselineRatio(baseline, size string) (float64, bool) {
	return r.peerRatio(BaselineAgainst, baseline, size)
}

// peerRatio is peer a against peer b at size, through their ratios to
// their paired direct runs.
func (r *Report) peerRatio(a, b, size string) (float64, bool) {
	x, ok1 := r.find(a, size)
	y, ok2 := r.find(b, size)
	if !ok1 || !ok2 || y.Ratio == 0 {
		return 0, false
	}
	return x.Ratio / y.Ratio, true
}

// Baselines are the baseline peers of the run, in order.
func (r *Report) Baselines() []string {
	var out []string
	for _, x := range r.Results {
		if strings.HasPrefix(x.Peer, BaselinePrefix) && !slices.Contains(out, x.Peer) {
			out = append(out, x.Peer)
		}
	}
	return out
}

// baselineLines say, for each baseline and size, what this tree's Vigie
// does against it in req/s, and each baseline against the one given
// before it (two revisions apart: the cost of what lies between them).
func (r *Report) baselineLines() []string {
	var out []string
	line := func(a, b, size string) {
		x, ok := r.peerRatio(a, b, size)
		if !ok {
			out = append(out, fmt.Sprintf("- req/s, %s, %s against %s: not measured", size, a, b))
			return
		}
		out = append(out, fmt.Sprintf("- req/s, %s, %s against %s (records discarded on both sides, ratio of their ratios to the paired direct runs): %.3f× (%+.1f %%)",
			size, a, b, x, (x-1)*100))
	}
	bs := r.Baselines()
	for i, b := range bs {
		for _, size := range r.Options.Sizes {
			line(BaselineAgainst, b, size)
			if i > 0 {
				line(b, bs[i-1], size)
			}
		}
	}
	return out
}
