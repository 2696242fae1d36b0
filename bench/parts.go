package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// part is one side-by-side comparison.
type part struct {
	Name  string
	About string
	Peers string
	Run   func(ctx context.Context, opt options, log io.Writer) (partOutput, error)
	// Timeout, when longer than -timeout, is the part's own limit: a
	// part that builds a kept data set on its first run.
	Timeout time.Duration
}

// partOutput is what a part measured. A part that fails part-way returns
// the figures it has with its error.
type partOutput struct {
	Figures  []Figure
	Notes    []string
	Commands []string
}

// allParts is the table of parts, in the order they run: the quick
// in-process ones first, so a run interrupted later still has them.
func allParts() []part {
	return []part{
		matcherPart(),
		journalPart(),
		exportPart(),
		flowsPart(),
		propagationPart(),
		propagationPGPart(),
		schoolsPart(),
		dnsPart(),
		httpPart(),
	}
}

// goBenchPart builds a part from `go test -bench` invocations and the
// comparisons read from their output.
func goBenchPart(name, about, peers string, runs []goBench, cmps []comparison) part {
	return part{Name: name, About: about, Peers: peers, Run: func(ctx context.Context, opt options, log io.Writer) (partOutput, error) {
		var out partOutput
		res := map[string]*benchResult{}
		var errs []error
		for _, gb := range runs {
			if opt.Short && gb.SkipShort {
				out.Notes = append(out.Notes, fmt.Sprintf("skipped in -short: go test -bench '%s' %s", gb.Pattern, gb.Pkg))
				continue
			}
			r, cmdline, err := runGoBench(ctx, opt, gb, log)
			out.Commands = append(out.Commands, cmdline)
			for k, v := range r {
				res[k] = v
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		for _, c := range cmps {
			f, err := c.figure(res)
			if err != nil {
				if !opt.Short || !skippedInShort(c, runs) {
					errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
				}
				continue
			}
			out.Figures = append(out.Figures, f)
		}
		return out, errors.Join(errs...)
	}}
}

// skippedInShort says whether a comparison reads a benchmark that -short
// leaves out (its absence is then expected).
func skippedInShort(c comparison, runs []goBench) bool {
	for _, gb := range runs {
		if gb.SkipShort && benchMatches(gb.Pattern, c.Bench) {
			return true
		}
	}
	return false
}

// matcherPart: the compiled matcher against a plain Go map of the same
// names, both in the same process (rules/ and rules/domainset/).
func matcherPart() part {
	return goBenchPart("matcher",
		"policy decision per host and memory per listed domain (rules.Decide, domainset.Set)",
		"Go map[string] / map[uint64] holding the same names, same run",
		[]goBench{
			{Pkg: "./rules/", Pattern: "^BenchmarkDecide$/^ut1", Benchtime: "2000000x", Count: 5, ShortBenchtime: "300000x", ShortCount: 2},
			{Pkg: "./rules/domainset/", Pattern: "^BenchmarkMemory$/^n=370k$", Benchtime: "1x", Count: 3, ShortBenchtime: "1x", ShortCount: 1},
			{Pkg: "./rules/", Pattern: "^Benchmark(Memory5M|Load5M)$", Benchtime: "1x", Count: 3, SkipShort: true},
			// Decide and the map timed in alternating blocks of the same
			// queries with the thread's CPU clock: on a shared machine the
			// wall-clock figure above swings tenfold within a run, this
			// pair does not.
			{Pkg: "./rules/", Pattern: "^BenchmarkDecidePaired$", Benchtime: "1000000x", Count: 5, SkipShort: true},
			// The realistic trace (Zipf over real hostnames): Decide with
			// its verdict cache, without it, and the map, interleaved.
			{Pkg: "./rules/", Pattern: "^BenchmarkDecideZipf$", Benchtime: "2000000x", Count: 5, ShortBenchtime: "300000x", ShortCount: 2},
		},
		[]comparison{
			{Name: "Decide, UT1 black lists + adult-top1m (≈370k names), per host", Bench: "BenchmarkDecide/ut1", Metric: "ns/op", Unit: "ns", Better: Lower,
				Peer: "map[string] of the same names, one lookup per suffix", PeerBench: "BenchmarkDecide/ut1-map-baseline",
				Note: "both walk every parent domain; Vigie also applies exceptions, URL rules and the profile"},
			{Name: "Decide, CPU time per host, UT1 union (≈370k names), paired", Bench: "BenchmarkDecidePaired/ut1", Metric: "decide-ns", Unit: "ns", Better: Lower,
				Peer: "map[string], same queries in alternating blocks", PeerMetric: "map-ns", TargetValue: 150,
				Note: "thread CPU time, so other processes' time is not counted, but their cache pressure is"},
			{Name: "Decide, CPU time per host, 5M generated names, paired", Bench: "BenchmarkDecidePaired/5M", Metric: "decide-ns", Unit: "ns", Better: Lower,
				Peer: "map[string], same queries in alternating blocks", PeerMetric: "map-ns", TargetValue: 150},
			{Name: "Decide, CPU time per host, Zipf (s≈1) trace over real hostnames, verdict cache on", Bench: "BenchmarkDecideZipf", Metric: "decide-ns", Unit: "ns", Better: Lower,
				Peer: "map[string], same trace in alternating blocks", PeerMetric: "map-ns", TargetValue: 150,
				Note: "school head (Google, Pronote, ENT…), white UT1 names and subdomains, ~10 % blocked names; thread CPU time"},
			{Name: "Decide, Zipf trace, verdict cache on against off", Bench: "BenchmarkDecideZipf", Metric: "decide-ns", Unit: "ns", Better: Lower,
				Peer: "the same Decide without its cache, alternating blocks", PeerMetric: "nocache-ns"},
			{Name: "Decide allocations per host", Bench: "BenchmarkDecide/ut1", Metric: "allocs/op", Unit: "allocs", Better: Lower},
			{Name: "fingerprint set memory, 370k names", Bench: "BenchmarkMemory/n=370k", Metric: "B/domain", Unit: "B/domain", Better: Lower,
				Peer: "map[string]struct{}", PeerMetric: "mapstring-B/domain"},
			{Name: "compiled ruleset memory, 5M names", Bench: "BenchmarkMemory5M", Metric: "vigie-B/domain", Unit: "B/domain", Better: Lower,
				Peer: "map[string]struct{}", PeerMetric: "map-B/domain"},
			{Name: "load a signed 5M-name bundle (verify + map)", Bench: "BenchmarkLoad5M", Metric: "ns/op", Unit: "s", Scale: 1e-9, Better: Lower},
		})
}
