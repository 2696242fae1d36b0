package httpbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/bench/benchenv"
)

// ConnectOptions drive the CONNECT mode: HTTPS through the explicit
// proxy, the path the plain-HTTP runs (wrk) do not take. Each client opens
// a tunnel (CONNECT localhost:443), does a TLS handshake in it with
// "localhost" as SNI, sends PerTunnel keep-alive GETs of 1 KiB and closes
// it, again and again. The origin listens on 127.0.0.1:443: port 443 is
// the only CONNECT port the demo policy's profiles allow by default, and
// the name "localhost" (/etc/hosts) is a name, so the SNI peek and its
// match against the CONNECT host run (an IP literal would be refused).
// Binding port 443 needs root (or CAP_NET_BIND_SERVICE).
type ConnectOptions struct {
	// Root is the module root (go env GOMOD when empty).
	Root string
	// Origin is where the TLS origin listens (127.0.0.1:443); the
	// CONNECT asks for localhost on its port.
	Origin string
	// Conns concurrent clients (50), PerTunnel GETs per tunnel (1),
	// Duration of one run (10 s), Reps runs per peer (3), interleaved.
	Conns, PerTunnel, Reps int
	Duration               time.Duration
	// BaselineRevs are git revisions whose helper's Vigie runs as more
	// peers (vigie@<hash>), compared with this tree's vigie-nojournal.
	BaselineRevs []string
	Log          io.Writer
}

// ConnectSample is one run through one peer.
type ConnectSample struct {
	TunnelsPerSec, RequestsPerSec float64
	Tunnels, Requests, Errors     int64
	SetupP99, ReqP99              time.Duration
	// CPU is the proxy process tree's CPU time during the run.
	CPU        time.Duration
	CPUPerReq  time.Duration
	FirstError string
}

// ConnectResult is one peer: its runs and their medians.
type ConnectResult struct {
	Peer    string
	Samples []ConnectSample
	// Medians over the samples, each figure on its own.
	TunnelsPerSec, RequestsPerSec float64
	SetupP99, ReqP99, CPUPerReq   time.Duration
}

// ConnectReport is the whole CONNECT run.
type ConnectReport struct {
	Options            ConnectOptions
	LoadStart, LoadEnd string
	Results            []ConnectResult
}

// RunConnect measures this tree's Vigie (records discarded) and the
// baselines through CONNECT + TLS, their runs interleaved rep by rep (the
// order reversed every other rep) so that a drift of the machine's load
// falls on all of them alike.
func RunConnect(ctx context.Context, o ConnectOptions) (*ConnectReport, error) {
	bo := Options{Root: o.Root, Log: o.Log, README: "-"}
	if err := bo.defaults(); err != nil {
		return nil, err
	}
	o.Root, o.Log = bo.Root, bo.Log
	if o.Origin == "" {
		o.Origin = "127.0.0.1:443"
	}
	if o.Conns <= 0 {
		o.Conns = 50
	}
	if o.PerTunnel <= 0 {
		o.PerTunnel = 1
	}
	if o.Reps <= 0 {
		o.Reps = 3
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	rep := &ConnectReport{Options: o, LoadStart: benchenv.LoadText()}
	work, err := os.MkdirTemp("", "vigie-bench-connect-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	helper := filepath.Join(work, "helper")
	build := exec.CommandContext(ctx, "go", "build", "-o", helper, "./bench/http/helper")
	build.Dir = o.Root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: build helper: %v\n%s", err, out)
	}
	env := &benchEnv{o: bo, work: work, helper: helper, lists: filepath.Join(o.Root, "testdata", "blocklists"),
		rep: &Report{}, baselines: map[string]string{}}
	peers := []string{BaselineAgainst}
	for _, rev := range o.BaselineRevs {
		name, bin, err := buildBaseline(ctx, bo, work, rev)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(peers, name) {
			peers = append(peers, name)
		}
		env.baselines[name] = bin
	}
	origin, err := env.startHelper(ctx, "tls-origin", "-listen", o.Origin)
	if err != nil {
		return nil, fmt.Errorf("bench: TLS origin on %s (port 443 needs root): %w", o.Origin, err)
	}
	defer origin.stop()
	_, port, _ := strings.Cut(origin.addr, ":")
	host := "localhost:" + port
	procs := map[string]*proc{}
	for _, name := range peers {
		pr, err := env.startPeer(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer pr.stop()
		procs[name] = pr
		// Warm-up: the lists' first lookups, the goroutine pools.
		if _, err := env.connectRun(ctx, pr, host, o, time.Second); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", name, err)
		}
	}
	res := map[string]*ConnectResult{}
	for i := range o.Reps {
		order := slices.Clone(peers)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, name := range order {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			s, err := env.connectRun(ctx, procs[name], host, o, o.Duration)
			if err != nil {
				return rep, fmt.Errorf("%s: %w", name, err)
			}
			fmt.Fprintf(o.Log, "  connect rep %d %s: %.0f tunnels/s %.0f req/s setup p99 %v req p99 %v cpu/req %v errors %d\n",
				i+1, name, s.TunnelsPerSec, s.RequestsPerSec, s.SetupP99, s.ReqP99, s.CPUPerReq, s.Errors)
			if res[name] == nil {
				res[name] = &ConnectResult{Peer: name}
			}
			res[name].Samples = append(res[name].Samples, s)
		}
	}
	for _, name := range peers {
		r := res[name]
		r.summarize()
		rep.Results = append(rep.Results, *r)
	}
	rep.LoadEnd = benchenv.LoadText()
	return rep, nil
}

func (r *ConnectResult) summarize() {
	var tps, rps, setup, req, cpu []float64
	for _, s := range r.Samples {
		tps, rps = append(tps, s.TunnelsPerSec), append(rps, s.RequestsPerSec)
		setup, req, cpu = append(setup, float64(s.SetupP99)), append(req, float64(s.ReqP99)), append(cpu, float64(s.CPUPerReq))
	}
	r.TunnelsPerSec, r.RequestsPerSec = median(tps), median(rps)
	r.SetupP99, r.ReqP99, r.CPUPerReq = time.Duration(median(setup)), time.Duration(median(req)), time.Duration(median(cpu))
}

// connectRun runs the helper's CONNECT generator through pr for d and
// measures pr's CPU time meanwhile.
func (e *benchEnv) connectRun(ctx context.Context, pr *proc, host string, o ConnectOptions, d time.Duration) (ConnectSample, error) {
	var s ConnectSample
	cpu0 := treeCPU(pr.root)
	out, err := exec.CommandContext(ctx, e.helper, "-role", "connect", "-target", pr.addr, "-host", host,
		"-path", "/1k", "-conns", strconv.Itoa(o.Conns), "-per-tunnel", strconv.Itoa(o.PerTunnel),
		"-d", d.String()).Output()
	s.CPU = treeCPU(pr.root) - cpu0
	if err != nil {
		return s, fmt.Errorf("connect generator: %w", err)
	}
	var r struct {
		Tunnels        int64   `json:"tunnels_ok"`
		Requests       int64   `json:"requests"`
		Errors         int64   `json:"errors"`
		TunnelsPerSec  float64 `json:"tunnels_per_sec"`
		RequestsPerSec float64 `json:"requests_per_sec"`
		SetupP99       int64   `json:"setup_p99_ns"`
		ReqP99         int64   `json:"req_p99_ns"`
		FirstError     string  `json:"first_error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return s, fmt.Errorf("connect generator output %q: %w", out, err)
	}
	s.Tunnels, s.Requests, s.Errors, s.FirstError = r.Tunnels, r.Requests, r.Errors, r.FirstError
	s.TunnelsPerSec, s.RequestsPerSec = r.TunnelsPerSec, r.RequestsPerSec
	s.SetupP99, s.ReqP99 = time.Duration(r.SetupP99), time.Duration(r.ReqP99)
	if s.Requests > 0 {
		s.CPUPerReq = s.CPU / time.Duration(s.Requests)
	}
	if s.Requests == 0 {
		return s, fmt.Errorf("connect generator: no request answered (%d errors, first: %s)", s.Errors, s.FirstError)
	}
	return s, nil
}

// Ratio is this tree's Vigie against baseline in median req/s (above 1:
// this tree is faster), and whether both were measured.
func (r *ConnectReport) Ratio(baseline string) (float64, bool) {
	var a, b float64
	for _, x := range r.Results {
		switch x.Peer {
		case BaselineAgainst:
			a = x.RequestsPerSec
		case baseline:
			b = x.RequestsPerSec
		}
	}
	if a == 0 || b == 0 {
		return 0, false
	}
	return a / b, true
}

// Table is the report as Markdown, with a ratio line per baseline.
func (r *ConnectReport) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT + TLS (SNI localhost) + %d× GET 1 KiB per tunnel, %d clients, %v × %d runs; load average %s → %s\n\n",
		r.Options.PerTunnel, r.Options.Conns, r.Options.Duration, r.Options.Reps, r.LoadStart, r.LoadEnd)
	b.WriteString("| peer | tunnels/s | req/s | setup p99 | req p99 | proxy CPU/req | errors |\n|---|---|---|---|---|---|---|\n")
	for _, x := range r.Results {
		var errs int64
		for _, s := range x.Samples {
			errs += s.Errors
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %v | %v | %v | %d |\n", x.Peer, x.TunnelsPerSec, x.RequestsPerSec,
			x.SetupP99.Round(time.Microsecond), x.ReqP99.Round(time.Microsecond), x.CPUPerReq.Round(100*time.Nanosecond), errs)
	}
	for _, x := range r.Results {
		if x.Peer == BaselineAgainst {
			continue
		}
		if v, ok := r.Ratio(x.Peer); ok {
			fmt.Fprintf(&b, "\n- req/s through CONNECT, %s against %s: %.3f× (%+.1f %%)", BaselineAgainst, x.Peer, v, (v-1)*100)
		}
	}
	b.WriteString("\n")
	return b.String()
}
