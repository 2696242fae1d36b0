// Command bench runs every side-by-side benchmark of Vigie against the
// tools a school would otherwise use, and writes the figures with their
// ratios to bench/results/latest.md and latest.json:
//
//	go run ./bench                       # everything (about an hour)
//	go run ./bench -short                # every part, shortened (minutes)
//	go run ./bench -parts dns,matcher    # some parts
//	go run ./bench -list                 # what the parts are
//
// Each part is owned by the package that measures it (bench/dns,
// bench/http, bench/controlplane, and the Go benchmarks of rules/ and
// journal/); this command only runs them in turn, on one machine, and puts
// their figures in one table with the machine they ran on. A ratio always
// compares two figures of the same run, because these machines drift by
// 20–35 % within an hour.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"vigie/bench/benchenv"
)

// options are the command line, passed to every part.
type options struct {
	Root        string
	Out         string
	Short       bool
	PartTimeout time.Duration
	Parts       []string
	Args        []string
	// HTTPBaselineRevs are revisions whose Vigie the http part runs as
	// more peers (httpbench.Options.BaselineRevs).
	HTTPBaselineRevs []string
	Quiet            quietRule
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var fails partFailures
	switch {
	case errors.As(err, &fails):
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
}

// partFailures says which parts failed; the report is written anyway.
type partFailures []string

func (p partFailures) Error() string { return "parts failed: " + strings.Join(p, ", ") }

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	partsFlag := fs.String("parts", "all", "comma-separated parts to run (see -list)")
	short := fs.Bool("short", false, "shorten every part (fewer repetitions, shorter loads): indicative figures in minutes")
	out := fs.String("out", "", "directory for latest.md and latest.json (default: ROOT/bench/results)")
	root := fs.String("root", "", "repository root (default: found from the working directory)")
	timeout := fs.Duration("timeout", 45*time.Minute, "time limit of one part")
	maxLoad := fs.Float64("max-load", 1.5, "1-minute load average above which a part's figures are noisy (bruité)")
	maxSpread := fs.Float64("max-spread", 0.15, "relative spread of a figure's baseline runs above which it is noisy (bruité)")
	attempts := fs.Int("attempts", 3, "runs of a noisy part before its figures are marked bruité (1 with -short)")
	settle := fs.Duration("settle", 2*time.Minute, "longest wait, before each part, for the 1-minute load to fall under -max-load")
	list := fs.Bool("list", false, "list the parts and exit")
	httpBaseline := fs.String("http-baseline-rev", "", "http part: comma-separated git revisions whose Vigie runs as one more peer each (vigie@REV), reported as a ratio to this tree's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (parts are chosen with -parts)", fs.Arg(0))
	}
	if *list {
		for _, p := range allParts() {
			fmt.Fprintf(stdout, "%-14s %s\n               peers: %s\n", p.Name, p.About, p.Peers)
		}
		return nil
	}
	opt := options{Short: *short, PartTimeout: *timeout, Args: args,
		Quiet: quietRule{MaxLoad: *maxLoad, MaxSpread: *maxSpread, Attempts: *attempts, Settle: *settle}}
	if opt.Short {
		opt.Quiet.Attempts = 1
	}
	var err error
	if opt.Root, err = benchenv.FindRoot(*root); err != nil {
		return err
	}
	opt.Out = *out
	if *httpBaseline != "" {
		opt.HTTPBaselineRevs = strings.Split(*httpBaseline, ",")
	}
	if opt.Out == "" {
		opt.Out = filepath.Join(opt.Root, "bench", "results")
	}
	parts, err := selectParts(*partsFlag)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := &Report{Started: time.Now(), Args: args, Short: opt.Short}
	rep.Machine = readMachine(ctx, opt.Root, rep.Started)
	fmt.Fprintf(stderr, "bench: %s, %d cores, kernel %s, %s, commit %s\n", rep.Machine.CPU, rep.Machine.Cores, rep.Machine.Kernel, rep.Machine.GoVersion, rep.Machine.Commit)
	var failed partFailures
	for _, p := range parts {
		if ctx.Err() != nil {
			rep.Parts = append(rep.Parts, PartResult{Name: p.Name, Status: "skipped", Error: "interrupted"})
			continue
		}
		fmt.Fprintf(stderr, "bench: part %s (peers: %s)\n", p.Name, p.Peers)
		res := runQuiet(ctx, p, opt, stderr, benchenv.ReadLoad)
		if res.Status != "ok" {
			failed = append(failed, p.Name)
			fmt.Fprintf(stderr, "bench: part %s %s: %s\n", p.Name, res.Status, firstLine(res.Error))
		}
		rep.Parts = append(rep.Parts, res)
		// Write after every part: an interrupted hour-long run keeps
		// what it measured.
		rep.Finished = time.Now()
		if err := writeReport(rep, opt.Out); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(opt.Out, "latest.md"), filepath.Join(opt.Out, "latest.json"))
	if len(failed) > 0 {
		return failed
	}
	return nil
}

// runQuiet runs a part until it runs in quiet conditions, up to
// opt.Quiet.Attempts times, and marks the figures of the last attempt
// that are still noisy. readLoad is injected so tests can play a busy
// machine.
func runQuiet(ctx context.Context, p part, opt options, log io.Writer, readLoad func() (benchenv.Load, error)) PartResult {
	var res PartResult
	for attempt := 1; ; attempt++ {
		before := opt.Quiet.settle(ctx, p.Name, log, readLoad)
		res = runPart(ctx, p, opt, log)
		after, _ := readLoad()
		res.LoadBefore, res.LoadAfter, res.Attempts = before.String(), after.String(), attempt
		noisy := opt.Quiet.mark(before, res.Figures)
		if noisy == 0 || res.Status != "ok" || attempt >= max(opt.Quiet.Attempts, 1) || ctx.Err() != nil {
			return res
		}
		fmt.Fprintf(log, "bench: part %s: %d noisy figure(s) at load %s, attempt %d of %d: running it again\n",
			p.Name, noisy, before, attempt, opt.Quiet.Attempts)
		// Clear the marks: the next attempt is judged afresh.
		for i := range res.Figures {
			res.Figures[i].Noisy, res.Figures[i].NoisyWhy = false, ""
		}
	}
}

// quietRule says when a figure may be quoted: the 1-minute load before
// its part under MaxLoad, and its baseline runs within MaxSpread of each
// other.
type quietRule struct {
	MaxLoad   float64
	MaxSpread float64
	Attempts  int
	// Settle is the longest wait for the load to fall under MaxLoad
	// before an attempt. The previous part's own work keeps the 1-minute
	// average up for a minute or so: without the wait, a quiet machine
	// busy only with the bench itself burns its attempts and marks good
	// figures bruité.
	Settle time.Duration
	// sleep waits between load readings (nil: a real sleep); tests
	// inject it.
	sleep func(context.Context, time.Duration)
}

// settlePoll is how often the load is read while settling.
const settlePoll = 5 * time.Second

// settle waits, up to q.Settle, for the 1-minute load to fall under
// q.MaxLoad, and returns the last reading: the load the attempt starts
// under.
func (q quietRule) settle(ctx context.Context, name string, log io.Writer, readLoad func() (benchenv.Load, error)) benchenv.Load {
	l, _ := readLoad()
	if q.MaxLoad <= 0 || l.One <= q.MaxLoad || q.Settle <= 0 {
		return l
	}
	sleep := q.sleep
	if sleep == nil {
		sleep = func(ctx context.Context, d time.Duration) {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
	fmt.Fprintf(log, "bench: part %s: load %s, waiting up to %s for it to fall under %.2g\n", name, l, q.Settle, q.MaxLoad)
	for waited := time.Duration(0); waited < q.Settle && l.One > q.MaxLoad && ctx.Err() == nil; waited += settlePoll {
		sleep(ctx, settlePoll)
		l, _ = readLoad()
	}
	return l
}

// mark sets Noisy on the figures the rule refuses and returns how many.
func (q quietRule) mark(before benchenv.Load, figs []Figure) int {
	n := 0
	for i := range figs {
		f := &figs[i]
		var why []string
		if q.MaxLoad > 0 && before.One > q.MaxLoad {
			why = append(why, fmt.Sprintf("load %.2f > %.2g before the run", before.One, q.MaxLoad))
		}
		if q.MaxSpread > 0 && f.BaselineSpread > q.MaxSpread {
			why = append(why, fmt.Sprintf("baseline runs %.0f %% apart (> %.0f %%)", f.BaselineSpread*100, q.MaxSpread*100))
		}
		if len(why) > 0 {
			f.Noisy, f.NoisyWhy = true, strings.Join(why, "; ")
			n++
		}
	}
	return n
}

// runPart runs one part under its time limit, turning a panic in another
// package's benchmark into a failed part rather than a lost report.
func runPart(ctx context.Context, p part, opt options, log io.Writer) (res PartResult) {
	start := time.Now()
	res = PartResult{Name: p.Name, Peers: p.Peers}
	opt.PartTimeout = max(opt.PartTimeout, p.Timeout)
	ctx, cancel := context.WithTimeout(ctx, opt.PartTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			res.Status, res.Error = "failed", fmt.Sprintf("panic: %v", r)
		}
		res.Seconds = time.Since(start).Seconds()
	}()
	out, err := p.Run(ctx, opt, log)
	res.Figures, res.Notes, res.Commands = out.Figures, out.Notes, out.Commands
	for i := range res.Figures {
		res.Figures[i].finish()
	}
	res.Status = "ok"
	if err != nil {
		res.Status, res.Error = "failed", err.Error()
	}
	return res
}

func writeReport(rep *Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	for _, w := range []struct {
		name  string
		write func(io.Writer) error
	}{{"latest.json", rep.WriteJSON}, {"latest.md", rep.WriteMarkdown}} {
		path := filepath.Join(dir, w.name)
		tmp, err := os.CreateTemp(dir, ".tmp-"+w.name)
		if err != nil {
			return fmt.Errorf("bench: results: %w", err)
		}
		err = w.write(tmp)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("bench: results %s: %w", path, err)
		}
	}
	return nil
}

func selectParts(spec string) ([]part, error) {
	all := allParts()
	if spec == "" || spec == "all" {
		return all, nil
	}
	var out []part
	seen := map[string]bool{}
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		found := false
		for _, p := range all {
			if p.Name == name {
				out = append(out, p)
				found = true
			}
		}
		if !found {
			var names []string
			for _, p := range all {
				names = append(names, p.Name)
			}
			return nil, fmt.Errorf("unknown part %q (parts: %s)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}
