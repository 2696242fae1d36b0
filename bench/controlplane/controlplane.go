// Package controlplane measures how fast a publication reaches the edges:
// it starts the real control plane (the vigie binary, as a child process,
// so that its CPU and memory are its own) on a policy with the full UT1
// lists, parks N simulated edges on real HTTP long-polls (each a real
// proxy/policysync agent with its own connection), publishes a one-domain change
// and measures publish → applied on every edge (p50, p100), the control
// plane's CPU and memory, and the bytes each edge received, against the
// same change sent as whole bundles (the baseline, measured in the same
// run).
//
//	go run ./bench/controlplane/cmd -edges 1000
//
// Run is what `go run ./bench` calls.
package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"syscall"
	"time"

	"vigie/bench/benchenv"
	cp "vigie/controlplane"
	"vigie/controlplane/audit"
	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/demo"
	"vigie/keyfile"
	agent "vigie/proxy/policysync"
	"vigie/rules"
	"vigie/rules/bundle"
)

// Options of a run. Zero values take the defaults shown.
type Options struct {
	// Root is the repository (default: found from the working directory).
	Root string
	// Lists is the blocklists folder (default ROOT/testdata/blocklists:
	// the UT1 snapshot and the adult top list).
	Lists string
	// Binary is a built vigie (default: built from Root into a temporary
	// directory).
	Binary string
	// Edges is the number of simulated edges (1000).
	Edges int
	// Rounds is the number of one-domain publications measured (3).
	Rounds int
	// BaselineEdges run the whole-bundle baseline (50: bytes per edge do
	// not depend on the number of edges, and a thousand edges each
	// decompressing megabytes would measure this process, not the
	// control plane).
	BaselineEdges int
	// Spread, when not zero, overrides the agents' Spread (their wait
	// after applying, before reporting and polling again): to measure
	// what the follow-up requests cost the delivery to the last edges.
	Spread time.Duration
	// Log receives progress (default: discarded).
	Log io.Writer
	// Profile, when set, receives a CPU profile of the control plane
	// taken over the first delta round (of the first replica; the others'
	// go to Profile+".replicaN"), and Profile+".edges" one of this
	// process (the simulated edges) over the same round; each replica's
	// log is kept as Profile+".replicaN.log".
	Profile string
	// Postgres runs the control plane on a throwaway PostgreSQL cluster
	// (initdb and pg_ctl in a temporary directory) instead of SQLite,
	// with Replicas processes sharing it (default 1) and the edges spread
	// over them in turn; publications go through the first.
	Postgres bool
	Replicas int
	// SkipBaseline leaves out the whole-bundle baseline.
	SkipBaseline bool
}

// ReplicaMemory is one control-plane process's resident memory before
// its edges arrived and with all of them parked on a long-poll.
type ReplicaMemory struct {
	Edges     int   `json:"edges"`
	RSSBefore int64 `json:"rss_before_bytes"`
	RSSParked int64 `json:"rss_parked_bytes"`
}

// Mode is what one way of transferring measured.
type Mode struct {
	Name  string `json:"name"`
	Edges int    `json:"edges"`
	// Publish is the publication request's duration (validate, compile,
	// sign, store), per round.
	Publish []time.Duration `json:"publish"`
	// Applied is, over all rounds and edges, the time from the version's
	// creation (signature) to each edge holding every byte of it, verified
	// (manifest signature, section hashes), ready to load.
	AppliedP50  time.Duration   `json:"applied_p50"`
	AppliedP100 time.Duration   `json:"applied_p100"`
	AppliedMax  []time.Duration `json:"applied_p100_per_round"`
	// BytesPerEdge is what the control plane sent each edge for one
	// publication (HTTP headers included), averaged over rounds.
	BytesPerEdge float64 `json:"bytes_per_edge"`
	// CPUFanout is the control plane's CPU time from the publication's
	// answer to the last edge applied; CPUPublish that of the publication
	// request itself (mostly compiling); per round, averaged.
	CPUFanout  time.Duration `json:"cpu_fanout"`
	CPUPublish time.Duration `json:"cpu_publish"`
	// CPUEdges is this process's CPU over the fan-out: the simulated
	// edges' share of the same two cores.
	CPUEdges time.Duration `json:"cpu_edges"`
	// CPUDatabase is PostgreSQL's CPU over the fan-out (its server and
	// backends: the edges' reports, the follower's reads), zero on SQLite,
	// whose work is the control plane's own.
	CPUDatabase time.Duration `json:"cpu_database"`
}

// Result is a run's figures.
type Result struct {
	Edges       int   `json:"edges"`
	BundleBytes int64 `json:"bundle_bytes"`
	Domains     int   `json:"domains"`
	// ManifestBytes is the signed head every update sends.
	ManifestBytes int  `json:"manifest_bytes"`
	Delta         Mode `json:"delta"`
	Full          Mode `json:"full"`
	// RSS of the control plane (summed over replicas): idle with every
	// edge parked on a poll, and its peak over the run.
	RSSIdle int64 `json:"rss_idle_bytes"`
	RSSPeak int64 `json:"rss_peak_bytes"`
	// Backend is "sqlite" or "postgres"; Replicas each process's memory.
	Backend  string          `json:"backend"`
	Replicas []ReplicaMemory `json:"replicas"`
	// EdgeApply is one real edge's cost to verify and load the bundle
	// (rules.DecodeBundle), paid on each edge's own CPU.
	EdgeApply time.Duration `json:"edge_apply"`
	Machine   string        `json:"machine"`
	// Load is the machine's load average before and after the run: the
	// figures are only as good as the machine was quiet.
	LoadBefore, LoadAfter string
}

func (o *Options) defaults() error {
	if o.Root == "" {
		root, err := benchenv.FindRoot("")
		if err != nil {
			return err
		}
		o.Root = root
	}
	if o.Lists == "" {
		o.Lists = filepath.Join(o.Root, "testdata", "blocklists")
	}
	if o.Edges <= 0 {
		o.Edges = 1000
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.BaselineEdges <= 0 {
		o.BaselineEdges = 50
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Replicas > 1 && !o.Postgres {
		return errors.New("bench: several replicas need PostgreSQL")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Run measures. Every wait is bounded; ctx cancels the run.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }
	work, err := os.MkdirTemp("", "vigie-bench-cp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	res := &Result{Edges: o.Edges, Machine: benchenv.Machine(), LoadBefore: benchenv.LoadText(), Backend: "sqlite"}
	defer func() { res.LoadAfter = benchenv.LoadText() }()
	// One socket per edge here, their other ends in the replicas.
	if err := raiseNoFile(uint64(max(o.Edges, o.BaselineEdges)) + 4096); err != nil {
		return nil, err
	}
	var db database
	dbCPU := func() time.Duration { return 0 }
	if o.Postgres {
		res.Backend = "postgres"
		logf("starting a throwaway PostgreSQL cluster")
		pg, err := startPostgres()
		if err != nil {
			return nil, err
		}
		defer pg.stop()
		db = database{URL: pg.url("postgres"), Schema: "ac_bench"}
		dbCPU = pg.cpu
	}

	logf("preparing the control plane data (full UT1 policy, %d edges, %s)", o.Edges, res.Backend)
	setup, err := prepare(ctx, work, o, db)
	if err != nil {
		return nil, err
	}
	res.BundleBytes, res.Domains, res.ManifestBytes = int64(len(setup.bundle)), setup.domains, setup.manifest
	// The in-process compilation left a large heap behind: collect it now
	// rather than in the middle of a measured round.
	runtime.GC()
	debug.FreeOSMemory()
	start := time.Now()
	if _, _, err := rules.DecodeBundle(setup.bundle, setup.pub); err != nil {
		return nil, err
	}
	res.EdgeApply = time.Since(start)

	bin := o.Binary
	if bin == "" {
		logf("building vigie")
		bin = filepath.Join(work, "vigie")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
		cmd.Dir = o.Root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("bench: go build: %v\n%s", err, out)
		}
	}
	var procs []*process
	defer func() {
		for i, p := range procs {
			p.stop()
			if o.Profile != "" {
				// Beside the profiles: what each replica logged (the
				// publication's sign and store times, the follower's read).
				if b, err := os.ReadFile(p.log); err == nil {
					os.WriteFile(fmt.Sprintf("%s.replica%d.log", o.Profile, i+1), b, 0o644)
				}
			}
		}
	}()
	for i := 0; i < o.Replicas; i++ {
		proc, err := startControlPlane(ctx, bin, work, setup, db, fmt.Sprintf("controlplane-%d", i))
		if err != nil {
			return nil, err
		}
		procs = append(procs, proc)
		logf("control plane pid %d on %s", proc.cmd.Process.Pid, proc.url)
	}

	res.Delta, err = measure(ctx, procs, setup, o, o.Edges, false, logf, &res.Replicas, dbCPU)
	if err != nil {
		return res, err
	}
	for _, r := range res.Replicas {
		res.RSSIdle += r.RSSParked
	}
	if !o.SkipBaseline {
		res.Full, err = measure(ctx, procs, setup, o, o.BaselineEdges, true, logf, nil, dbCPU)
		if err != nil {
			return res, err
		}
	}
	for _, p := range procs {
		res.RSSPeak += p.status("VmHWM")
	}
	return res, nil
}

// database is where the control plane keeps its state: SQLite in the
// data directory when URL is empty, else PostgreSQL.
type database struct {
	URL    string
	Schema string
}

// BytesPerEdge is the replicas' resident memory per parked edge: what
// their memory grew by once the edges arrived, over the edges.
func (r *Result) BytesPerEdge() float64 {
	var grown, edges float64
	for _, m := range r.Replicas {
		grown += float64(m.RSSParked - m.RSSBefore)
		edges += float64(m.Edges)
	}
	if edges == 0 {
		return 0
	}
	return grown / edges
}

// setup is the prepared data directory.
type setup struct {
	dir       string
	pub       ed25519.PublicKey
	bundle    []byte
	domains   int
	manifest  int
	rssiToken string
	tokens    []string
}

// prepare builds the data directory in process: key, draft with the full
// lists, serial 1, the RSSI's token and one token per edge.
func prepare(ctx context.Context, work string, o Options, db database) (*setup, error) {
	s := &setup{dir: filepath.Join(work, "data")}
	keyPath := filepath.Join(s.dir, "academie.key")
	pub, err := keyfile.Generate(keyPath)
	if err != nil {
		return nil, err
	}
	s.pub = pub
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := cp.Open(ctx, cp.Config{DataDir: s.dir, Database: db.URL, DatabaseSchema: db.Schema}, cp.Deps{Log: quiet})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	pol, err := demo.Policy(o.Lists)
	if err != nil {
		return nil, err
	}
	for i := range pol.Sources {
		pol.Sources[i].Path = filepath.Join(o.Lists, pol.Sources[i].Path)
	}
	if _, err := os.Stat(pol.Sources[0].Path); err != nil {
		return nil, fmt.Errorf("bench: lists: %w", err)
	}
	who := publish.Actor{Name: "bench"}
	now := time.Now()
	if err := publish.ReplaceDraft(ctx, c.Store, pol, who, now); err != nil {
		return nil, err
	}
	v, err := c.Publisher.Publish(ctx, who, "bench: full UT1", false)
	if err != nil {
		return nil, err
	}
	s.domains = v.Domains
	b, err := c.Publisher.Bundle(ctx, v.Serial)
	if err != nil {
		return nil, err
	}
	s.bundle = b.Raw
	m, _ := bundle.Manifest(b.Raw)
	s.manifest = len(m)
	acc, err := cp.CreateAccount(ctx, c.Store, c.Auth, "bench", "rssi", auth.RSSI, "", true, now)
	if err != nil {
		return nil, err
	}
	s.rssiToken = acc.Token
	err = c.Store.Update(ctx, func(tx store.Tx) error {
		for i := 0; i < max(o.Edges, o.BaselineEdges); i++ {
			tok, hash := auth.NewToken(auth.EdgeTokenPrefix)
			id := fmt.Sprintf("bench-%04d", i)
			if err := tx.CreateEdge(ctx, store.Edge{ID: id, UAI: demo.UAI, CreatedAt: now, TokenHash: hash}); err != nil {
				return err
			}
			s.tokens = append(s.tokens, tok)
		}
		return tx.AppendAudit(ctx, &audit.Entry{Time: now, Actor: "bench", Action: "edge.create", Target: "edges",
			After: json.RawMessage(strconv.Itoa(len(s.tokens)))})
	})
	return s, err
}

// process is the control plane child.
type process struct {
	cmd     *exec.Cmd
	url     string
	metrics string
	log     string
	done    chan struct{}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startControlPlane(ctx context.Context, bin, work string, s *setup, db database, name string) (*process, error) {
	api, err := freeAddr()
	if err != nil {
		return nil, err
	}
	met, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(work, name+".yaml")
	text := fmt.Sprintf("listen: %s\ndata_dir: %s\nmetrics_listen: %s\nlong_poll: 30s\n", api, s.dir, met)
	if db.URL != "" {
		text += fmt.Sprintf("database: %q\ndatabase_schema: %s\n", db.URL, db.Schema)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(work, name+".log"))
	if err != nil {
		return nil, err
	}
	p := &process{url: "http://" + api, metrics: "http://" + met + "/metrics", log: logFile.Name(), done: make(chan struct{})}
	p.cmd = exec.Command(bin, "controlplane", "serve", "--config", cfg)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); logFile.Close(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("bench: the control plane exited (see %s)", logFile.Name())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("bench: the control plane did not answer within 60 s")
		}
	}
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// cpu returns the child's user+system CPU time.
func (p *process) cpu() time.Duration {
	t, _ := procCPU(p.cmd.Process.Pid)
	return t
}

// status reads a /proc/PID/status field in bytes (VmRSS, VmHWM).
func (p *process) status(field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// gauge reads one metric of the control plane.
func (p *process) gauge(name string) float64 {
	resp, err := http.Get(p.metrics)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return -1
}

// call makes an API request as the RSSI.
func (p *process) call(token, method, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// simEdge is one simulated edge: a real agent that hands each verified
// version over in pieces (ApplyParts), and records when it arrived instead
// of laying it out and loading it (that local work is measured once, as
// EdgeApply: each real edge pays it on its own CPU, not on this machine's
// two cores).
type simEdge struct {
	serial  atomic.Uint64
	applied atomic.Int64 // Unix ns
	bytes   atomic.Int64
	// dials counts the connections this edge opened: one per edge for
	// the whole run when keep-alive works.
	dials atomic.Int64
}

// apply is the simulated edge's ApplyParts: the agent verified the
// signature and every section already; reading the serial is all that is
// left to do here.
func (e *simEdge) apply(v agent.Version) error {
	e.applied.Store(time.Now().UnixNano())
	e.serial.Store(v.Header.Serial)
	return nil
}

type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func measure(ctx context.Context, ps []*process, s *setup, o Options, n int, full bool, logf func(string, ...any),
	mem *[]ReplicaMemory, dbCPU func() time.Duration) (Mode, error) {
	p := ps[0] // publications and reads go through the first replica
	m := Mode{Name: "delta (changed sections)", Edges: n}
	if full {
		m.Name = "whole bundle (baseline)"
	}
	var head struct {
		Serial uint64 `json:"serial"`
	}
	if err := p.call(s.rssiToken, "GET", "/api/v1/health", nil, &head); err != nil {
		return m, err
	}
	var current []byte
	if err := fetchBundle(p, s.rssiToken, head.Serial, &current); err != nil {
		return m, err
	}
	if mem != nil {
		*mem = make([]ReplicaMemory, len(ps))
		for j, q := range ps {
			(*mem)[j].RSSBefore = q.status("VmRSS")
		}
	}
	edges := make([]*simEdge, n)
	runCtx, cancel := context.WithCancel(ctx)
	var wg gosync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	// Discarded, not formatted: the agents' logs would cost this process
	// a text record per update only to throw it away.
	quiet := slog.New(slog.DiscardHandler)
	for i := range edges {
		// Thousands of dials at once would overflow the listeners'
		// accept queues (SYN retries cost a second): arrive in waves.
		if i > 0 && i%250 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		q := ps[i%len(ps)]
		if mem != nil {
			(*mem)[i%len(ps)].Edges++
		}
		e := &simEdge{}
		e.serial.Store(head.Serial)
		edges[i] = e
		tr := &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				e.dials.Add(1)
				return countConn{Conn: c, n: &e.bytes}, nil
			},
			MaxIdleConnsPerHost: 2,
			DisableCompression:  true,
		}
		a, err := agent.New(agent.Config{
			URL: q.url, Token: s.tokens[i], PublicKey: s.pub,
			ApplyParts: e.apply,
			Current:    func() (uint64, string, bool) { return e.serial.Load(), "", false },
			Initial:    current,
			Full:       full,
			Spread:     o.Spread,
			Hold:       30 * time.Second, MinBackoff: time.Second, MaxBackoff: 5 * time.Second,
			Client: &http.Client{Transport: tr},
			Log:    quiet,
		})
		if err != nil {
			return m, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(runCtx) }()
	}
	parked := func() float64 {
		var sum float64
		for _, q := range ps {
			sum += q.gauge("vigie_controlplane_longpolls")
		}
		return sum
	}
	if err := waitFor(ctx, 60*time.Second+time.Duration(n)*5*time.Millisecond, func() bool { return parked() >= float64(n) }); err != nil {
		return m, fmt.Errorf("bench: %d edges parked on a poll (%.0f are): %w", n, parked(), err)
	}
	logf("%s: %d edges parked on a long-poll over %d control plane process(es)", m.Name, n, len(ps))
	if mem != nil {
		for j, q := range ps {
			(*mem)[j].RSSParked = q.status("VmRSS")
		}
	}
	cpu := func() time.Duration {
		var sum time.Duration
		for _, q := range ps {
			sum += q.cpu()
		}
		return sum
	}
	rounds := o.Rounds
	if full {
		rounds = 1
	}
	var applied []time.Duration
	var bytesTotal float64
	for r := 0; r < rounds; r++ {
		for _, e := range edges {
			e.bytes.Store(0)
			e.dials.Store(0)
		}
		domain := fmt.Sprintf("bench-%d-%d-%s.example", r, time.Now().UnixNano(), strings.ReplaceAll(m.Name[:5], " ", ""))
		if err := p.call(s.rssiToken, "POST", "/api/v1/lists/academie-bloque/entries", map[string]any{"domains": []string{domain}}, nil); err != nil {
			return m, err
		}
		var prof *gosync.WaitGroup
		if o.Profile != "" && r == 0 && !full {
			// Every replica's profile: the first one's in Profile, the
			// others' in Profile+".replicaN".
			prof = new(gosync.WaitGroup)
			for j, q := range ps {
				name := o.Profile
				if j > 0 {
					name = fmt.Sprintf("%s.replica%d", o.Profile, j+1)
				}
				prof.Go(func() { profileReplica(q, name) })
			}
			time.Sleep(100 * time.Millisecond)
		}
		cpu0 := cpu()
		t0 := time.Now()
		var v struct {
			Serial  uint64    `json:"serial"`
			Created time.Time `json:"created"`
		}
		if err := p.call(s.rssiToken, "POST", "/api/v1/publish", map[string]any{"comment": "bench " + domain}, &v); err != nil {
			return m, err
		}
		m.Publish = append(m.Publish, time.Since(t0))
		cpu1 := cpu()
		self1, db1 := selfCPU(), dbCPU()
		if prof != nil {
			if f, err := os.Create(o.Profile + ".edges"); err == nil {
				pprof.StartCPUProfile(f)
				defer f.Close()
			}
		}
		// Serials only grow: each check resumes at the first edge still
		// behind instead of reading all of them again (every 2 ms, ten
		// thousand cache misses would be this process's CPU, not the
		// edges').
		behind := 0
		if err := waitFor(ctx, 120*time.Second, func() bool {
			for ; behind < len(edges); behind++ {
				if edges[behind].serial.Load() < v.Serial {
					return false
				}
			}
			return true
		}); err != nil {
			return m, fmt.Errorf("bench: round %d: every edge on serial %d: %w", r, v.Serial, err)
		}
		cpu2, self2, db2 := cpu(), selfCPU(), dbCPU()
		m.CPUEdges += (self2 - self1) / time.Duration(rounds)
		m.CPUDatabase += (db2 - db1) / time.Duration(rounds)
		m.CPUPublish += (cpu1 - cpu0) / time.Duration(rounds)
		m.CPUFanout += (cpu2 - cpu1) / time.Duration(rounds)
		var worst time.Duration
		var dials int64
		byProc := make([][]time.Duration, len(ps))
		for i, e := range edges {
			a := time.Duration(e.applied.Load() - v.Created.UnixNano())
			applied = append(applied, a)
			byProc[i%len(ps)] = append(byProc[i%len(ps)], a)
			worst = max(worst, a)
			bytesTotal += float64(e.bytes.Load())
			dials += e.dials.Load()
		}
		if len(ps) > 1 {
			// Which replica's edges were late says whether the wake-up
			// crossed replicas (LISTEN/NOTIFY) or the cores ran out.
			for j, ds := range byProc {
				logf("  edges of process %d: first %s, p50 %s, p100 %s", j+1, pct(ds, 0).Round(time.Millisecond), pct(ds, 50).Round(time.Millisecond), pct(ds, 100).Round(time.Millisecond))
			}
		}
		m.AppliedMax = append(m.AppliedMax, worst)
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Wait()
		}
		logf("%s round %d: serial %d, publish request %s, last edge applied %s after the version was created (p50 %s); control plane CPU %s, edges' CPU %s, database CPU %s, %d new connections",
			m.Name, r+1, v.Serial, m.Publish[r].Round(time.Millisecond), worst.Round(time.Millisecond),
			pct(applied[len(applied)-n:], 50).Round(time.Millisecond), (cpu2 - cpu1).Round(time.Millisecond),
			(self2 - self1).Round(time.Millisecond), (db2 - db1).Round(time.Millisecond), dials)
		// Status reports after the apply are part of the cost: let them land.
		time.Sleep(200 * time.Millisecond)
	}
	m.BytesPerEdge = bytesTotal / float64(n*rounds)
	m.AppliedP50, m.AppliedP100 = pct(applied, 50), pct(applied, 100)
	return m, nil
}

// profileReplica writes a 15 s CPU profile of one control-plane process
// (its pprof endpoint, on the loopback metrics address) to name.
func profileReplica(p *process, name string) {
	resp, err := http.Get(strings.TrimSuffix(p.metrics, "/metrics") + "/debug/pprof/profile?seconds=15")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(name)
	if err == nil {
		io.Copy(f, resp.Body)
		f.Close()
	}
}

func fetchBundle(p *process, token string, serial uint64, out *[]byte) error {
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/versions/%d/bundle", p.url, serial), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("bench: bundle %d: %s", serial, resp.Status)
	}
	*out, err = io.ReadAll(resp.Body)
	return err
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
