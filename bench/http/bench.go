// Package httpbench is the side-by-side benchmark of Vigie's HTTP proxy
// against the peers a school would pick instead: Squid alone, Squid with
// squidGuard, E2Guardian, and a bare goproxy. Every peer gets the same UT1
// domain lists and is driven by wrk with absolute-form URIs against one
// loopback origin; each peer run is paired with a direct run (no proxy)
// right before it, and figures are quoted as ratios to that run, because
// a shared machine drifts by tens of percent within an hour.
//
// Run installs the peers with apt when they are missing (squid,
// squidguard, e2guardian, wrk), writes its table into bench/http/README.md
// and returns it. `go run ./bench/http/cmd/vigie-bench-http` runs it.
package httpbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vigie/bench/benchenv"
)

// Options bound the run. Zero fields take the protocol.
type Options struct {
	// Root is the module root (testdata/blocklists, bench/http/README.md).
	Root string
	// Duration of one wrk run (15 s), Threads and Conns (2 and 50).
	Duration       time.Duration
	Threads, Conns int
	// Reps is the number of paired runs per peer and size (3).
	Reps int
	// Sizes are origin paths: "1k", "100k".
	Sizes []string
	// Peers to run, among PeerNames (all by default).
	Peers []string
	// Install runs apt-get for missing tools.
	Install bool
	// Drain waits between peers so TIME_WAIT sockets drain (5 s).
	Drain time.Duration
	// README is where the table is written ("" for Root/bench/http/README.md,
	// "-" for nowhere).
	README string
	// ProfileDir, when set, receives a CPU profile of Vigie under the
	// first 1 KiB run.
	ProfileDir string
	// Log receives progress (os.Stderr when nil).
	Log io.Writer

	// Open-loop latency (see openloop.go): requests on a fixed schedule at
	// each of OpenLoopRates req/s (500 and 2000) for OpenLoopDuration
	// (10 s, the first second left out) over up to OpenLoopConns
	// keep-alive connections (200), 1 KiB responses, for the peers in
	// OpenLoopPeers (vigie), each run paired with a direct one, Reps pairs.
	OpenLoopRates    []int
	OpenLoopDuration time.Duration
	OpenLoopConns    int
	OpenLoopPeers    []string
	// OpenLoopSizes are the origin paths of the open-loop runs ("1k").
	OpenLoopSizes []string
	// NoOpenLoop skips the open-loop runs.
	NoOpenLoop bool
	// Interleave starts every peer at once and alternates them rep by
	// rep (the order rotating each rep), instead of running all reps of
	// one peer before the next. A machine whose speed drifts over the
	// minutes then moves every peer alike, so the ratios between peers
	// stay honest. Drain is waited between reps.
	Interleave bool

	// BaselineRevs are git revisions of this repository whose Vigie runs
	// as one more peer each, "vigie@<short hash>", right after
	// vigie-nojournal: the helper is built as it was at that revision
	// (from a temporary git worktree, removed once built) and runs with
	// its records discarded. Its ratio to the paired direct runs is then
	// compared with vigie-nojournal's (Report.BaselineRatio): the cost
	// of a change, measured in the same run.
	BaselineRevs []string
}

// PeerNames are the peers in the order they run.
// "vigie" is the edge's configuration, durable journal on; "vigie-nojournal"
// the same with the records discarded (the second row).
var PeerNames = []string{"squid", "squid+squidguard", "e2guardian", "e2guardian-nophrase", "goproxy-2idle", "goproxy", "vigie", "vigie-nojournal"}

// Run is one sample: a wrk run and what the proxy used meanwhile.
type Sample struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	Errors   int64
	// CPU is the proxy process tree's CPU time during the run.
	CPU time.Duration
	// RSS is the peak resident memory of the proxy's process tree.
	RSS   int64
	Procs int
}

// Result is one peer at one size: medians over the paired runs.
type Result struct {
	Peer, Size string
	Peer1      Sample // median sample of the peer
	Direct     Sample // median of the direct runs paired with it
	// Ratio is the median of peer/direct req/s over the pairs.
	Ratio float64
	// AddedP99 is the median of peer p99 minus paired direct p99.
	AddedP99 time.Duration
	// CPUPerReq is the proxy's CPU time per request.
	CPUPerReq time.Duration
	Err       string
}

// Report is the whole run.
type Report struct {
	Started time.Time
	Options Options
	Results []Result
	Machine string
	Notes   []string
	// OpenLoop are the fixed-rate latency runs, by peer and rate.
	OpenLoop []OpenLoopResult
}

func (o *Options) defaults() error {
	if o.Root == "" {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			return fmt.Errorf("bench: find module root: %w", err)
		}
		o.Root = filepath.Dir(strings.TrimSpace(string(out)))
	}
	if o.Duration <= 0 {
		o.Duration = 15 * time.Second
	}
	if o.Threads <= 0 {
		o.Threads = 2
	}
	if o.Conns <= 0 {
		o.Conns = 50
	}
	if o.Reps <= 0 {
		o.Reps = 3
	}
	if len(o.Sizes) == 0 {
		o.Sizes = []string{"1k", "100k"}
	}
	if len(o.Peers) == 0 {
		o.Peers = PeerNames
	}
	for _, p := range o.Peers {
		if !slices.Contains(PeerNames, p) {
			return fmt.Errorf("bench: unknown peer %q (known: %s)", p, strings.Join(PeerNames, ", "))
		}
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Second
	}
	if o.README == "" {
		o.README = filepath.Join(o.Root, "bench", "http", "README.md")
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if len(o.OpenLoopRates) == 0 {
		o.OpenLoopRates = []int{500, 2000}
	}
	if o.OpenLoopDuration <= 0 {
		o.OpenLoopDuration = 10 * time.Second
	}
	if o.OpenLoopConns <= 0 {
		o.OpenLoopConns = 200
	}
	if len(o.OpenLoopPeers) == 0 {
		o.OpenLoopPeers = []string{"vigie"}
	}
	if len(o.OpenLoopSizes) == 0 {
		o.OpenLoopSizes = []string{"1k"}
	}
	return nil
}

// Run runs the benchmark and writes its table.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now(), Options: o, Machine: machine()}
	if err := ensureTools(ctx, o); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "vigie-bench-http-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755)
	helper := filepath.Join(work, "helper")
	build := exec.CommandContext(ctx, "go", "build", "-o", helper, "./bench/http/helper")
	build.Dir = o.Root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: build helper: %v\n%s", err, out)
	}
	baselines := map[string]string{}
	var baselineNames []string
	for _, rev := range o.BaselineRevs {
		name, bin, err := buildBaseline(ctx, o, work, rev)
		if err != nil {
			return nil, err
		}
		if baselines[name] == "" {
			baselineNames = append(baselineNames, name)
		}
		baselines[name] = bin
	}
	lists := filepath.Join(o.Root, "testdata", "blocklists")
	if _, err := os.Stat(filepath.Join(lists, "ut1")); err != nil {
		return nil, fmt.Errorf("bench: the UT1 lists: %w", err)
	}
	env := &benchEnv{o: o, work: work, helper: helper, lists: lists, rep: rep, baselines: baselines}
	origin, err := env.startHelper(ctx, "origin")
	if err != nil {
		return nil, err
	}
	defer origin.stop()
	env.origin = origin.addr
	fmt.Fprintf(o.Log, "origin on %s\n", origin.addr)

	if o.Interleave {
		res, err := env.runInterleaved(ctx, withBaselines(o.Peers, baselineNames))
		rep.Results = append(rep.Results, res...)
		if err != nil {
			return rep, err
		}
	} else {
		for _, name := range withBaselines(o.Peers, baselineNames) {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			res, err := env.runPeer(ctx, name)
			if err != nil {
				fmt.Fprintf(o.Log, "%s: %v\n", name, err)
				for _, s := range o.Sizes {
					rep.Results = append(rep.Results, Result{Peer: name, Size: s, Err: err.Error()})
				}
			}
			rep.Results = append(rep.Results, res...)
			time.Sleep(o.Drain)
		}
	}
	if o.README != "-" {
		if err := writeREADME(o.README, rep); err != nil {
			return rep, err
		}
	}
	// The README has its own open-loop table; callers that only read
	// Notes (go run ./bench) get the figures as one line.
	if n := rep.OpenLoopNote(); n != "" {
		rep.Notes = append(rep.Notes, n)
	}
	return rep, nil
}

type benchEnv struct {
	o      Options
	work   string
	helper string
	lists  string
	origin string
	rep    *Report
	// journals counts the vigie starts, one journal directory each.
	journals int
	// baselines are the helpers built from other revisions, by peer name.
	baselines map[string]string
}

func (e *benchEnv) runPeer(ctx context.Context, name string) ([]Result, error) {
	fmt.Fprintf(e.o.Log, "== %s\n", name)
	pr, err := e.startPeer(ctx, name)
	if err != nil {
		return nil, err
	}
	defer pr.stop()
	// Warm up: connections, caches, helpers started lazily.
	if _, err := e.wrk(ctx, pr, e.o.Sizes[0], 2*time.Second); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	var out []Result
	for _, size := range e.o.Sizes {
		var ps pairs
		for i := range e.o.Reps {
			if err := e.pair(ctx, name, pr, size, i, &ps); err != nil {
				return out, err
			}
		}
		out = append(out, ps.result(name, size))
	}
	if !e.o.NoOpenLoop && slices.Contains(e.o.OpenLoopPeers, name) {
		e.rep.OpenLoop = append(e.rep.OpenLoop, e.openLoop(ctx, pr, name)...)
	}
	return out, nil
}

// pairs are one peer's paired runs at one size.
type pairs struct {
	peers, directs []Sample
	ratios, added  []float64
}

// pair runs rep i: a direct wrk run, then the same through pr.
func (e *benchEnv) pair(ctx context.Context, name string, pr *proc, size string, i int, ps *pairs) error {
	d, err := e.wrk(ctx, nil, size, e.o.Duration)
	if err != nil {
		return fmt.Errorf("direct %s: %w", size, err)
	}
	if pr.pprof != "" && size == "1k" && i == 0 {
		go profile(ctx, pr.pprof, filepath.Join(e.o.ProfileDir, name+"-1k.pprof"), e.o.Duration/2)
	}
	s, err := e.wrk(ctx, pr, size, e.o.Duration)
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, size, err)
	}
	fmt.Fprintf(e.o.Log, "  %s rep %d: direct %.0f req/s p99 %v | %s %.0f req/s p99 %v cpu %v rss %.1f MB (%d procs) errors %d\n",
		size, i+1, d.RPS, d.P99, name, s.RPS, s.P99, s.CPU, float64(s.RSS)/1e6, s.Procs, s.Errors)
	ps.directs, ps.peers = append(ps.directs, d), append(ps.peers, s)
	ps.ratios = append(ps.ratios, s.RPS/d.RPS)
	ps.added = append(ps.added, float64(s.P99-d.P99))
	return nil
}

func (ps *pairs) result(name, size string) Result {
	r := Result{Peer: name, Size: size, Peer1: medianSample(ps.peers), Direct: medianSample(ps.directs),
		Ratio: median(ps.ratios), AddedP99: time.Duration(median(ps.added))}
	if r.Peer1.Requests > 0 {
		r.CPUPerReq = r.Peer1.CPU / time.Duration(r.Peer1.Requests)
	}
	return r
}

// runInterleaved starts every peer, then runs rep 1 of each, rep 2 of
// each, and so on, rotating the order so that no peer always runs first
// after the drain. A peer that fails to start is reported and left out.
func (e *benchEnv) runInterleaved(ctx context.Context, names []string) ([]Result, error) {
	var out []Result
	var live []string
	procs := map[string]*proc{}
	for _, name := range names {
		fmt.Fprintf(e.o.Log, "== %s\n", name)
		pr, err := e.startPeer(ctx, name)
		if err == nil {
			defer pr.stop()
			_, err = e.wrk(ctx, pr, e.o.Sizes[0], 2*time.Second)
		}
		if err != nil {
			fmt.Fprintf(e.o.Log, "%s: %v\n", name, err)
			for _, s := range e.o.Sizes {
				out = append(out, Result{Peer: name, Size: s, Err: err.Error()})
			}
			continue
		}
		procs[name] = pr
		live = append(live, name)
	}
	for _, size := range e.o.Sizes {
		ps := make(map[string]*pairs, len(live))
		for _, name := range live {
			ps[name] = &pairs{}
		}
		for i := range e.o.Reps {
			for j := range live {
				name := live[(i+j)%len(live)]
				if err := ctx.Err(); err != nil {
					return out, err
				}
				if err := e.pair(ctx, name, procs[name], size, i, ps[name]); err != nil {
					return out, err
				}
				time.Sleep(e.o.Drain)
			}
		}
		for _, name := range live {
			out = append(out, ps[name].result(name, size))
		}
	}
	if !e.o.NoOpenLoop {
		for _, name := range live {
			if slices.Contains(e.o.OpenLoopPeers, name) {
				e.rep.OpenLoop = append(e.rep.OpenLoop, e.openLoop(ctx, procs[name], name)...)
			}
		}
	}
	return out, nil
}

// proc is a started process (and its process group).
type proc struct {
	cmd   *exec.Cmd
	addr  string
	pprof string
	// root is the pid whose process tree is measured.
	root int
	stop func()
}

func (e *benchEnv) startHelper(ctx context.Context, role string, args ...string) (*proc, error) {
	return e.startHelperBin(ctx, e.helper, role, args...)
}

// startHelperBin starts the helper binary bin (this tree's, or a
// baseline's) in the given role.
func (e *benchEnv) startHelperBin(ctx context.Context, bin, role string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"-role", role}, args...)...)
	cmd.Dir = e.o.Root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = &prefixWriter{w: e.o.Log, prefix: "  [" + role + "] "}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	p := &proc{cmd: cmd, root: cmd.Process.Pid}
	p.stop = func() { stopGroup(cmd) }
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening ") {
				line <- strings.TrimPrefix(sc.Text(), "listening ")
			}
		}
	}()
	select {
	case p.addr = <-line:
	case <-time.After(120 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not start", role)
	}
	return p, nil
}

// pprofAddr is a free loopback address for a Vigie peer's profile
// endpoint, or "" when no profile is asked for. Each peer gets its own,
// since -interleave runs them side by side.
func (e *benchEnv) pprofAddr() (string, error) {
	if e.o.ProfileDir == "" {
		return "", nil
	}
	return freePort()
}

// stopGroup ends the process group this benchmark started, by its id.
func stopGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}

func (e *benchEnv) startPeer(ctx context.Context, name string) (*proc, error) {
	if bin, ok := e.baselines[name]; ok {
		// Flags every revision's helper knows; no journal (older ones
		// have none), as vigie-nojournal.
		args := []string{"-lists", e.lists}
		pp, err := e.pprofAddr()
		if err != nil {
			return nil, err
		}
		if pp != "" {
			args = append(args, "-pprof", pp)
		}
		p, err := e.startHelperBin(ctx, bin, "vigie", args...)
		if p != nil {
			p.pprof = pp
		}
		return p, err
	}
	switch name {
	case "goproxy":
		return e.startHelper(ctx, "goproxy", "-idle", "256")
	case "goproxy-2idle":
		return e.startHelper(ctx, "goproxy", "-idle", "2")
	case "vigie", "vigie-nojournal":
		args := []string{"-lists", e.lists}
		if name == "vigie" {
			// A fresh journal per start, on the work directory's disk
			// (not a tmpfs): the group commit's fsync is part of the cost.
			e.journals++
			args = append(args, "-journal", filepath.Join(e.work, "vigie-journal-"+strconv.Itoa(e.journals)))
		}
		pp, err := e.pprofAddr()
		if err != nil {
			return nil, err
		}
		if pp != "" {
			args = append(args, "-pprof", pp)
		}
		p, err := e.startHelper(ctx, "vigie", args...)
		if p != nil {
			p.pprof = pp
		}
		return p, err
	case "squid", "squid+squidguard":
		return e.startSquid(ctx, name == "squid+squidguard")
	case "e2guardian", "e2guardian-nophrase":
		return e.startE2Guardian(ctx, name == "e2guardian-nophrase")
	}
	return nil, fmt.Errorf("unknown peer %q", name)
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reTotal   = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrk runs wrk through pr (nil: straight to the origin) and measures pr.
func (e *benchEnv) wrk(ctx context.Context, pr *proc, size string, d time.Duration) (Sample, error) {
	var s Sample
	script := filepath.Join(e.work, "absolute.lua")
	target := "http://" + e.origin + "/" + size
	args := []string{"-t", strconv.Itoa(e.o.Threads), "-c", strconv.Itoa(e.o.Conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", "--timeout", "5s"}
	if pr != nil {
		lua := fmt.Sprintf("wrk.method = \"GET\"\nwrk.path = %q\nwrk.headers[\"Host\"] = %q\n", target, e.origin)
		if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
			return s, err
		}
		args = append(args, "-s", script, "http://"+pr.addr+"/")
	} else {
		args = append(args, target)
	}
	var cpu0 time.Duration
	var stopSampling func() (int64, int)
	if pr != nil {
		cpu0 = treeCPU(pr.root)
		stopSampling = sampleRSS(pr.root)
	}
	cmd := exec.CommandContext(ctx, "wrk", args...)
	out, err := cmd.CombinedOutput()
	if pr != nil {
		s.CPU = treeCPU(pr.root) - cpu0
		s.RSS, s.Procs = stopSampling()
	}
	if err != nil {
		return s, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	text := string(out)
	m := reRPS.FindStringSubmatch(text)
	if m == nil {
		return s, fmt.Errorf("wrk: no Requests/sec in\n%s", text)
	}
	s.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, l := range reLatency.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[l[3]]
		dur := time.Duration(v * float64(unit))
		if l[1] == "50" {
			s.P50 = dur
		} else {
			s.P99 = dur
		}
	}
	if m := reTotal.FindStringSubmatch(text); m != nil {
		s.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(text); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		s.Errors += n
	}
	if m := reSocket.FindStringSubmatch(text); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.ParseInt(g, 10, 64)
			s.Errors += n
		}
	}
	return s, nil
}

func ensureTools(ctx context.Context, o Options) error {
	need := map[string]string{"wrk": "wrk"}
	for _, p := range o.Peers {
		switch {
		case strings.HasPrefix(p, "squid"):
			need["squid"] = "squid"
			if p == "squid+squidguard" {
				need["squidGuard"] = "squidguard"
			}
		case strings.HasPrefix(p, "e2guardian"):
			need["e2guardian"] = "e2guardian"
		}
	}
	var missing []string
	for bin, pkg := range need {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !o.Install {
		return fmt.Errorf("bench: missing %s (run with install, or apt-get install them)", strings.Join(missing, " "))
	}
	slices.Sort(missing)
	fmt.Fprintf(o.Log, "installing %s with apt-get\n", strings.Join(missing, " "))
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("bench: apt-get %s: %v\n%s", args[0], err, out)
		}
	}
	// Debian may start the packaged daemons: they are not ours to run.
	for _, svc := range []string{"squid", "e2guardian"} {
		exec.Command("service", svc, "stop").Run()
	}
	return nil
}

func machine() string {
	return benchenv.Machine() + ", load average at start " + benchenv.LoadText()
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			io.WriteString(p.w, p.prefix+l)
		}
	}
	return len(b), nil
}
