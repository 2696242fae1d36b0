// Package dnsbench measures Vigie's DNS filter side by side with the
// resolvers a school would otherwise filter with: Unbound and dnsmasq, each
// loaded with the same blocklist (the UT1 categories whose usage is black
// plus adult-top1m: 282,582 names in the 2026-08 snapshot, each blocking
// its subdomains),
// forwarding to the same loopback upstream, driven by the same dnsperf
// query file. A bare miekg/dns server answering a fixed record shows what
// the DNS library alone costs in Go.
//
// Each run starts the server pinned to one core, times its startup (exec to
// first correct answer), warms its cache with one pass of the query file,
// then measures dnsperf -c 10 for a fixed time: queries per second, average
// latency, server CPU per query, resident memory after the load. Runs
// alternate with the Unbound baseline (unbound, peer, unbound, peer...) and
// every ratio divides a peer's figure by the mean of the baseline runs just
// before and after it: these machines drift by 20–35 % within an hour.
//
// Run is the entry point for `go run ./bench`; cmd/dnsbench runs it alone
// and writes the table into bench/dns/README.md.
package dnsbench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"vigie/bench/benchenv"
)

// Options say what to run. Zero fields take the defaults in brackets.
type Options struct {
	// Root is the repository root (holds go.mod and testdata/blocklists).
	Root string
	// Work is a scratch directory [a new temporary directory, removed after].
	Work string
	// Peers to compare with the baseline [vigie, vigie-nojournal, dnsmasq, miekg-bare, vigie-batch1].
	Peers []string
	// Rounds of (baseline, peer) alternations [3].
	Rounds int
	// Duration of each measured dnsperf run [10s].
	Duration time.Duration
	// Clients is dnsperf -c [10].
	Clients int
	// Queries in the query file [200000]; Allowed distinct allowed names [10000].
	Queries, Allowed int
	// ServerCPU and LoadCPU pin the server and dnsperf (taskset -c lists)
	// [1 and 0 when the machine has two cores or more, else unpinned].
	ServerCPU, LoadCPU string
	// Nice is the scheduling priority of the server and dnsperf [-10 when
	// root, else 0]: on a machine shared with other work, it keeps the
	// other work from stealing the measured cores, equally for every peer.
	Nice int
	// Drain is the pause between runs (sockets, caches) [2s].
	Drain time.Duration
	// NoInstall refuses to apt-get install missing tools.
	NoInstall bool
	// Profile, when set, is a directory where every Vigie run writes a
	// CPU profile, a heap profile, its memory figures at the moment the
	// resident memory is read, and a memory trace (one subdirectory per
	// run, named after its journal setting and port).
	Profile string
	// BaseBin is a vigie-dns binary built from another revision, run as
	// the vigie-base peer [none].
	BaseBin string
	// Log receives progress lines [discarded].
	Log io.Writer
}

func (o *Options) defaults() {
	if len(o.Peers) == 0 {
		o.Peers = []string{PeerVigie, PeerVigieNoJournal, PeerDnsmasq, PeerBare, PeerVigieBatch1}
	}
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Clients == 0 {
		o.Clients = 10
	}
	if o.Queries == 0 {
		o.Queries = 200000
	}
	if o.Allowed == 0 {
		o.Allowed = 10000
	}
	if o.ServerCPU == "" && o.LoadCPU == "" && runtime.NumCPU() >= 2 {
		o.ServerCPU, o.LoadCPU = "1", "0"
	}
	if o.Nice == 0 && os.Geteuid() == 0 {
		o.Nice = -10
	}
	if o.Drain == 0 {
		o.Drain = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Measurement is one run of one server.
type Measurement struct {
	Peer  string `json:"peer"`
	Round int    `json:"round"`
	// Seq orders the runs: ratios use the baseline runs next to a peer's.
	Seq        int     `json:"seq"`
	QPS        float64 `json:"qps"`
	AvgLatency float64 `json:"avg_latency_s"`
	// CPUPerQuery is the server's user+system CPU time per answered query, in seconds.
	CPUPerQuery float64 `json:"cpu_per_query_s"`
	RSS         int64   `json:"rss_bytes"`
	Startup     float64 `json:"startup_s"`
	Completed   int64   `json:"completed"`
	Lost        int64   `json:"lost"`
}

// Result is a whole benchmark run.
type Result struct {
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Options  Options       `json:"-"`
	Entries  int           `json:"blocklist_entries"`
	Runs     []Measurement `json:"runs"`
	Commands []string      `json:"commands"`
	Notes    []string      `json:"notes,omitempty"`
	// LoadBefore and LoadAfter are /proc/loadavg at the start and end: on
	// a shared machine they say how much else was running.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	CPUs       int    `json:"cpus"`
}

// Run performs the benchmark. It returns what it measured even when it
// fails part-way.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	res := Result{Started: time.Now(), Options: o, LoadBefore: benchenv.LoadText(), CPUs: runtime.NumCPU()}
	logf := func(format string, args ...any) {
		fmt.Fprintf(o.Log, "dnsbench: "+format+"\n", args...)
	}
	if o.Root == "" {
		return res, fmt.Errorf("dnsbench: Options.Root is required")
	}
	if err := ensureTools(ctx, !o.NoInstall, logf); err != nil {
		return res.finish(), err
	}
	if o.Work == "" {
		dir, err := os.MkdirTemp("", "vigie-dnsbench-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		o.Work = dir
	}
	lists := filepath.Join(o.Root, "testdata", "blocklists")
	blocked, err := readBlocklist(lists)
	if err != nil {
		return res, err
	}
	res.Entries = len(blocked)
	allowed, err := allowedNames(lists, blocked, o.Allowed)
	if err != nil {
		return res, err
	}
	queries := filepath.Join(o.Work, "queries.txt")
	if err := queryFile(queries, blocked, allowed, o.Queries); err != nil {
		return res, err
	}
	// The warm-up asks each allowed name once: every cache then holds the
	// whole working set (blocked names need no warming).
	warmup := filepath.Join(o.Work, "warmup.txt")
	if err := os.WriteFile(warmup, []byte(strings.Join(allowed, " A\n")+" A\n"), 0o644); err != nil {
		return res, err
	}
	logf("%d blocked names, %d allowed names, %d queries", len(blocked), len(allowed), o.Queries)

	bin := filepath.Join(o.Work, "vigie-dns")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/dns/cmd/vigie-dns")
	build.Dir = o.Root
	if out, err := build.CombinedOutput(); err != nil {
		return res, fmt.Errorf("dnsbench: build the server: %w\n%s", err, out)
	}
	up, err := startUpstream()
	if err != nil {
		return res, err
	}
	defer up.close()

	st := &setup{work: o.Work, upstream: up.addr, blocked: blocked, cacheEntries: 4 * o.Allowed, vigieBin: bin, baseBin: o.BaseBin, profile: o.Profile}
	peers, err := st.peers(append([]string{PeerUnbound}, o.Peers...))
	if err != nil {
		return res, err
	}
	baseline, others := peers[0], peers[1:]
	probe := blocked[len(blocked)/2]
	seq := 0
	measure := func(p *peer, round int) error {
		m, cmds, err := measureOne(ctx, o, p, queries, warmup, probe)
		res.Commands = appendNew(res.Commands, cmds...)
		if err != nil {
			return fmt.Errorf("%s, round %d: %w", p.name, round, err)
		}
		m.Round, m.Seq = round, seq
		seq++
		res.Runs = append(res.Runs, m)
		logf("round %d %-10s %9.0f QPS  %7.3f ms  %5.2f µs CPU/query  %6.1f MB  startup %.3f s  lost %d",
			round, p.name, m.QPS, m.AvgLatency*1e3, m.CPUPerQuery*1e6, float64(m.RSS)/(1<<20), m.Startup, m.Lost)
		time.Sleep(o.Drain)
		return nil
	}
	for round := 1; round <= o.Rounds; round++ {
		// Rotate the peers' order so that no peer always follows the same one.
		order := slices.Clone(others)
		for i := 0; i < (round-1)%max(1, len(order)); i++ {
			order = append(order[1:], order[0])
		}
		for _, p := range order {
			if err := measure(baseline, round); err != nil {
				return res.finish(), err
			}
			if err := measure(p, round); err != nil {
				return res.finish(), err
			}
		}
	}
	if err := measure(baseline, o.Rounds); err != nil {
		return res.finish(), err
	}
	return res.finish(), nil
}

func (r Result) finish() Result {
	r.Finished = time.Now()
	r.LoadAfter = benchenv.LoadText()
	return r
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// measureOne starts p, warms it, measures it and stops it.
func measureOne(ctx context.Context, o Options, p *peer, queries, warmup, probe string) (Measurement, []string, error) {
	m := Measurement{Peer: p.name}
	port, err := freePort()
	if err != nil {
		return m, nil, err
	}
	argv := p.command(port)
	cmds := []string{strings.Join(pinned(argv, o.ServerCPU, o.Nice), " ")}
	s, err := start(ctx, argv, o.ServerCPU, o.Nice, port, probe, p.blocks)
	if err != nil {
		return m, cmds, err
	}
	defer s.stop()
	m.Startup = s.startup.Seconds()
	if _, line, err := dnsperf(ctx, o.LoadCPU, o.Nice, port, warmup, o.Clients, 0, true); err != nil {
		return m, append(cmds, line), err
	}
	before, err := s.cpuTicks()
	if err != nil {
		return m, cmds, err
	}
	pf, line, err := dnsperf(ctx, o.LoadCPU, o.Nice, port, queries, o.Clients, o.Duration, false)
	cmds = append(cmds, line)
	if err != nil {
		return m, cmds, err
	}
	after, err := s.cpuTicks()
	if err != nil {
		return m, cmds, err
	}
	if m.RSS, err = s.rss(); err != nil {
		return m, cmds, err
	}
	m.QPS, m.AvgLatency, m.Completed, m.Lost = pf.QPS, pf.AvgLatency, pf.Completed, pf.Lost
	// Linux reports CPU time in USER_HZ (100) ticks.
	m.CPUPerQuery = float64(after-before) / 100 / float64(max(1, pf.Completed))
	return m, cmds, nil
}

// upstream is the loopback resolver every peer forwards to: it answers any
// A or AAAA question with one record and a day-long TTL, so that after the
// warm-up pass every allowed name is a cache hit for every peer.
type upstream struct {
	addr     string
	udp, tcp *mdns.Server
}

func startUpstream() (*upstream, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	u := &upstream{addr: "127.0.0.1:" + strconv.Itoa(port)}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 {
			hdr := mdns.RR_Header{Name: q.Question[0].Name, Class: mdns.ClassINET, Ttl: 86400, Rrtype: q.Question[0].Qtype}
			switch q.Question[0].Qtype {
			case mdns.TypeA:
				m.Answer = append(m.Answer, &mdns.A{Hdr: hdr, A: net.IPv4(198, 51, 100, 1)})
			case mdns.TypeAAAA:
				m.Answer = append(m.Answer, &mdns.AAAA{Hdr: hdr, AAAA: net.ParseIP("2001:db8::1")})
			}
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", u.addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	u.udp = &mdns.Server{PacketConn: pc, Handler: h}
	u.tcp = &mdns.Server{Listener: ln, Handler: h}
	for _, s := range []*mdns.Server{u.udp, u.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
	}
	return u, nil
}

func (u *upstream) close() {
	u.udp.Shutdown()
	u.tcp.Shutdown()
}
