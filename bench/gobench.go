package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// goBench is one `go test -bench` invocation whose output feeds figures.
type goBench struct {
	Pkg     string // "./rules/"
	Pattern string // the -bench regexp
	// Benchtime and Count for a full run; the Short ones for -short.
	Benchtime, ShortBenchtime string
	Count, ShortCount         int
	// SkipShort leaves the invocation out of a -short run (5 M-name
	// benchmarks take minutes and gigabytes).
	SkipShort bool
	// ShortEnv is added to the environment of a -short run, for
	// benchmarks that run once whatever b.N and shorten themselves.
	ShortEnv []string
}

// comparison turns benchmark results into one Figure: a metric of one
// benchmark, against the same or another metric of a peer benchmark of the
// same invocation, or against an absolute target.
type comparison struct {
	Name   string
	Bench  string // full name without the -GOMAXPROCS suffix
	Metric string // "ns/op", "B/op", "allocs/op" or a ReportMetric unit
	Unit   string // shown unit ("ns", "B", "records/s")
	// Scale multiplies the metric (e.g. 1e9 to turn ns/op into ops/s
	// with Invert).
	Scale  float64
	Invert bool // use Scale/value (ns/op → per second)
	Better Better

	Peer       string
	PeerBench  string // empty: the same benchmark
	PeerMetric string // empty: the same metric

	TargetRatio, TargetValue float64
	Note                     string
}

// benchResult is one benchmark's metrics, medians over -count runs.
type benchResult struct {
	Name    string
	Pkg     string
	Runs    int
	Metrics map[string]float64
	// Samples are every run's values of each metric (with -count N), for
	// the spread of a baseline.
	Samples map[string][]float64
}

var procSuffix = regexp.MustCompile(`-[0-9]+$`)

// parseBench reads `go test -bench` output. With -count N each benchmark
// appears N times; the result keeps the median of each metric, which a
// single slow run (machine drift) does not move.
func parseBench(r io.Reader) (map[string]*benchResult, error) {
	samples := map[string]map[string][]float64{}
	pkgOf := map[string]string{}
	var order []string
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		// name, iterations, then value-unit pairs.
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		m := samples[name]
		if m == nil {
			m = map[string][]float64{}
			samples[name] = m
			pkgOf[name] = pkg
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bench: %q: value %q: %w", line, f[i], err)
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := map[string]*benchResult{}
	for _, name := range order {
		res := &benchResult{Name: name, Pkg: pkgOf[name], Metrics: map[string]float64{}, Samples: samples[name]}
		for unit, vs := range samples[name] {
			res.Metrics[unit] = median(vs)
			res.Runs = max(res.Runs, len(vs))
		}
		out[name] = res
	}
	return out, nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// runGoBench runs one invocation from the repository root and returns its
// parsed results and the command line, for the report.
func runGoBench(ctx context.Context, opt options, gb goBench, log io.Writer) (map[string]*benchResult, string, error) {
	benchtime, count := gb.Benchtime, gb.Count
	if opt.Short {
		benchtime, count = gb.ShortBenchtime, gb.ShortCount
	}
	if count == 0 {
		count = 1
	}
	args := []string{"test", "-run", "^$", "-bench", gb.Pattern, "-benchmem", "-count", strconv.Itoa(count), "-timeout", opt.PartTimeout.String()}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	args = append(args, gb.Pkg)
	cmdline := "go " + strings.Join(quoteArgs(args), " ")
	fmt.Fprintf(log, "bench: %s\n", cmdline)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = opt.Root
	cmd.Env = os.Environ()
	if opt.Short {
		cmd.Env = append(cmd.Env, gb.ShortEnv...)
		if len(gb.ShortEnv) > 0 {
			cmdline = strings.Join(gb.ShortEnv, " ") + " " + cmdline
		}
	}
	var out strings.Builder
	cmd.Stdout = io.MultiWriter(&out, prefixWriter(log, "  | "))
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	res, perr := parseBench(strings.NewReader(out.String()))
	if err != nil {
		return res, cmdline, fmt.Errorf("%s: %w\n%s", cmdline, err, tail(out.String(), 20))
	}
	if perr != nil {
		return res, cmdline, perr
	}
	if len(res) == 0 {
		return res, cmdline, fmt.Errorf("%s: no benchmark ran (pattern %q)", cmdline, gb.Pattern)
	}
	return res, cmdline, nil
}

// figure evaluates a comparison against the results, or says which
// benchmark or metric is missing.
func (c comparison) figure(res map[string]*benchResult) (Figure, error) {
	get := func(bench, metric string) (float64, error) {
		r, ok := res[bench]
		if !ok {
			return 0, fmt.Errorf("benchmark %s did not run", bench)
		}
		v, ok := r.Metrics[metric]
		if !ok {
			return 0, fmt.Errorf("benchmark %s reported no %q (it reported %s)", bench, metric, strings.Join(sortedKeys(r.Metrics), ", "))
		}
		return c.scale(v), nil
	}
	f := Figure{Name: c.Name, Unit: c.Unit, Better: c.Better, Peer: c.Peer, TargetRatio: c.TargetRatio, TargetValue: c.TargetValue, Note: c.Note,
		Source: c.Bench + " " + c.Metric}
	v, err := get(c.Bench, c.Metric)
	if err != nil {
		return f, err
	}
	f.Value = v
	if c.Peer != "" {
		pb, pm := c.PeerBench, c.PeerMetric
		if pb == "" {
			pb = c.Bench
		}
		if pm == "" {
			pm = c.Metric
		}
		if f.PeerValue, err = get(pb, pm); err != nil {
			return f, err
		}
		if pb != c.Bench || pm != c.Metric {
			f.Source += " vs " + pb + " " + pm
		}
		for _, v := range res[pb].Samples[pm] {
			f.BaselineRuns = append(f.BaselineRuns, c.scale(v))
		}
	}
	f.finish()
	return f, nil
}

func (c comparison) scale(v float64) float64 {
	s := c.Scale
	if s == 0 {
		s = 1
	}
	if c.Invert {
		if v == 0 {
			return 0
		}
		return s / v
	}
	return v * s
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ^$*|()[]'\"") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// prefixWriter writes each line of the subprocess's output with a prefix,
// so a long run shows progress without mixing with the program's own log.
type prefixed struct {
	w      io.Writer
	prefix string
	midway bool
}

func prefixWriter(w io.Writer, prefix string) io.Writer { return &prefixed{w: w, prefix: prefix} }

func (p *prefixed) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if !p.midway {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
			p.midway = true
		}
		i := strings.IndexByte(string(b), '\n')
		if i < 0 {
			_, err := p.w.Write(b)
			return n, err
		}
		if _, err := p.w.Write(b[:i+1]); err != nil {
			return 0, err
		}
		p.midway = false
		b = b[i+1:]
	}
	return n, nil
}

// benchMatches says whether a -bench pattern selects a benchmark name
// (slash-separated levels matched one by one, as go test does).
func benchMatches(pattern, name string) bool {
	pats := strings.Split(pattern, "/")
	parts := strings.Split(name, "/")
	for i, p := range pats {
		if i >= len(parts) {
			return true
		}
		re, err := regexp.Compile(p)
		if err != nil || !re.MatchString(parts[i]) {
			return false
		}
	}
	return true
}
