// Package flowflood measures how many new flows per second the edge's flow
// recorder (proxy/flows) takes from conntrack with nothing lost, beside the
// kernel's own tool, `conntrack -E -e NEW` (Debian's conntrack package),
// listening to the same events in the same run:
//
//	go run ./bench/flowflood/cmd                 # the whole ladder (root)
//	go run ./bench/flowflood/cmd -rates 20000,50000,0 -step 1s
//
// The flood is packets, not netlink requests: a pupil's port scan is
// packets, and a flow made by a packet costs the gateway what it costs in
// a school (forwarding, conntrack, masquerade, then the event). Sender
// processes in the pupil's namespace write bare UDP headers on raw
// IPPROTO_UDP sockets in sendmmsg batches, every datagram a new 5-tuple
// (its own source and destination ports), paced to a target rate; the
// gateway namespace forwards and masquerades them, and the "internet"
// namespace drops them on arrival. A Go dialer making one socket per flow
// tops out at a few thousand flows per second here; the raw senders do
// not need a socket, a port binding or a connect per flow.
//
// Loss is counted, never assumed: the kernel's own count of the flows it
// made (nf_conntrack_count of the gateway's namespace, where nothing else
// runs, with a UDP timeout far longer than a step) against the NEW events
// the recorder received and the lines conntrack -E printed. A step is
// lossless for a listener when it saw exactly the flows made and its
// socket never overran (ENOBUFS).
//
// The ladder runs steps of rising target rates, each a bounded number of
// flows (the gateway's table is flushed after each step; its destroy
// events are the recorder's second half of the work, measured apart), up
// to a last step at whatever rate the senders reach. Everything runs in
// three throwaway network namespaces, removed at the end.
package flowflood

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/bench/benchenv"
	"vigie/journal"
	"vigie/proxy/flows"
	"vigie/testlab/netns"
)

// Options of a run. Zero values take the defaults shown.
type Options struct {
	// Rates are the steps' target new flows per second, in order; 0 is
	// "as fast as the senders go" (default 10k, 20k, 35k, 50k, 70k,
	// 100k, 0).
	Rates []float64
	// Step is a step's length at its target rate (2 s); a step never
	// makes more than MaxFlows flows (150,000: the kernel's table holds
	// 262,144 by default).
	Step     time.Duration
	MaxFlows int
	// Senders is the number of sender processes (one per core).
	Senders int
	// Log receives progress (default: discarded).
	Log io.Writer
}

func (o *Options) defaults() {
	if len(o.Rates) == 0 {
		o.Rates = []float64{10000, 20000, 35000, 50000, 70000, 100000, 0}
	}
	if o.Step <= 0 {
		o.Step = 2 * time.Second
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = 150000
	}
	if o.Senders <= 0 {
		o.Senders = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Step is what one step of the ladder measured.
type Step struct {
	// Target is the asked rate (0: unpaced); Rate the one reached, flows
	// the kernel made over the senders' time (first datagram to last).
	Target  float64 `json:"target"`
	Rate    float64 `json:"rate"`
	Seconds float64 `json:"seconds"`
	// Sent datagrams; Created flows in the gateway's table.
	Sent    int64 `json:"sent"`
	Created int64 `json:"created"`
	// Recorder is the NEW events the recorder received, Overruns its
	// socket's ENOBUFS over the step; Peer the NEW lines conntrack -E
	// printed, PeerOverrun whether it reported ENOBUFS.
	Recorder    int64 `json:"recorder"`
	Overruns    int64 `json:"recorder_overruns"`
	Peer        int64 `json:"peer"`
	PeerOverrun bool  `json:"peer_overrun"`
	// CPU over the flood and its drain: this process (the recorder,
	// nearly all of it), conntrack -E, and the senders (their loop and
	// the kernel's whole path: forwarding, conntrack, NAT, building and
	// multicasting the events, all run in the sending context).
	RecorderCPU time.Duration `json:"recorder_cpu"`
	PeerCPU     time.Duration `json:"peer_cpu"`
	SenderCPU   time.Duration `json:"sender_cpu"`
	// Destroyed is the destroy events the recorder received when the
	// table was flushed after the step (each becomes a record), in
	// DestroyCPU, with DestroyOverruns ENOBUFS: a flush ends flows at
	// the kernel's speed, far above any flood's.
	Destroyed       int64         `json:"destroyed"`
	DestroyCPU      time.Duration `json:"destroy_cpu"`
	DestroyOverruns int64         `json:"destroy_overruns"`
}

// RecorderLossless says whether the recorder saw every flow of the step.
func (s Step) RecorderLossless() bool {
	return s.Created > 0 && s.Recorder == s.Created && s.Overruns == 0
}

// PeerLossless says whether conntrack -E printed every flow of the step.
func (s Step) PeerLossless() bool { return s.Created > 0 && s.Peer == s.Created && !s.PeerOverrun }

// Result is a run's figures.
type Result struct {
	Steps []Step `json:"steps"`
	// RecorderBest and PeerBest are the highest rates reached with
	// nothing lost (0: no lossless step); GeneratorMax the highest rate
	// reached at all.
	RecorderBest float64 `json:"recorder_best"`
	PeerBest     float64 `json:"peer_best"`
	GeneratorMax float64 `json:"generator_max"`
	// CPU per flow at the reference step (RefRate, see summarize): the
	// recorder's for the NEW events, and for NEW plus the flow's destroy
	// and record (what a flow costs it in all); conntrack -E's for
	// printing NEW events; the senders' (the kernel's path) per flow.
	RefRate         float64       `json:"ref_rate"`
	RecorderNewCPU  time.Duration `json:"recorder_new_cpu_per_flow"`
	RecorderFlowCPU time.Duration `json:"recorder_flow_cpu_per_flow"`
	PeerCPU         time.Duration `json:"peer_cpu_per_flow"`
	SenderCPU       time.Duration `json:"sender_cpu_per_flow"`
	// The share of the flows each listener saw at the fastest step
	// (TopRate).
	TopRate          float64 `json:"top_rate"`
	TopRecorderShare float64 `json:"top_recorder_share"`
	TopPeerShare     float64 `json:"top_peer_share"`
	Machine          string  `json:"machine"`
	LoadBefore       string  `json:"load_before"`
	LoadAfter        string  `json:"load_after"`
	ConntrackVersion string  `json:"conntrack_version"`
}

// Addresses of the lab: a pupil behind a masquerading gateway, and one
// "internet" host that drops what it gets.
const (
	clientAddr = "10.10.0.10"
	gwLAN      = "10.10.0.1"
	gwWAN      = "198.51.100.1"
	wanAddr    = "198.51.100.2"
	// probeAddr is nobody: the probes' flows are made (a flow is
	// confirmed before the gateway looks for the next hop) and told
	// apart from the flood's by their destination.
	probeAddr = "198.51.100.3"
)

type lab struct {
	client, gw, wan *netns.NS
	dir             string
}

func newLab(ctx context.Context) (l *lab, err error) {
	var b [3]byte
	rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	l = &lab{}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.dir, err = os.MkdirTemp("", "vigie-flowflood-"); err != nil {
		return l, err
	}
	for _, p := range []struct {
		ns   **netns.NS
		name string
	}{{&l.client, "ff-c-" + sfx}, {&l.gw, "ff-g-" + sfx}, {&l.wan, "ff-w-" + sfx}} {
		if *p.ns, err = netns.Add(ctx, p.name); err != nil {
			return l, err
		}
		// No IPv6: router solicitations and the like would be flows of
		// their own in the gateway's count.
		for _, k := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
			if _, err = (*p.ns).Run(ctx, "sysctl", "-qw", k); err != nil {
				return l, err
			}
		}
	}
	sh := strings.NewReplacer("C", l.client.Name, "G", l.gw.Name, "W", l.wan.Name, "X", sfx).Replace(`
ip link add lX netns C type veth peer name lan0 netns G
ip link add wX netns W type veth peer name wan0 netns G
ip -n C addr add ` + clientAddr + `/24 dev lX; ip -n C link set lX up; ip -n C link set lo up
ip -n C route add default via ` + gwLAN + `
ip -n G addr add ` + gwLAN + `/24 dev lan0; ip -n G link set lan0 up
ip -n G addr add ` + gwWAN + `/24 dev wan0; ip -n G link set wan0 up; ip -n G link set lo up
ip -n W addr add ` + wanAddr + `/24 dev wX; ip -n W link set wX up; ip -n W link set lo up
ip netns exec G sysctl -qw net.ipv4.ip_forward=1
printf 'table ip t {\n chain postrouting { type nat hook postrouting priority 100; oifname "wan0" masquerade; }\n}\n' | ip netns exec G nft -f -
ip netns exec G sysctl -qw net.netfilter.nf_conntrack_udp_timeout=600
printf 'table ip w {\n chain pre { type filter hook prerouting priority -300; ip protocol udp drop; }\n}\n' | ip netns exec W nft -f -
`)
	if out, err := exec.CommandContext(ctx, "sh", "-ec", sh).CombinedOutput(); err != nil {
		return l, fmt.Errorf("flowflood: lab: %v\n%s", err, out)
	}
	return l, nil
}

func (l *lab) close() {
	for _, n := range []*netns.NS{l.client, l.gw, l.wan} {
		if n != nil {
			n.Delete()
		}
	}
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
}

// tableCount is the number of flows in the gateway's table.
func (l *lab) tableCount() (int64, error) {
	var n int64
	err := l.gw.Do(func() error {
		b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
		if err != nil {
			return err
		}
		n, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("flowflood: conntrack count: %w", err)
	}
	return n, nil
}

// recorder is the recorder under test with its counters.
type recorder struct {
	r    *flows.Recorder
	reg  *prometheus.Registry
	done chan error
}

func (rc *recorder) counter(name, label, value string) int64 {
	mfs, err := rc.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return int64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

func (rc *recorder) news() int64 { return rc.counter("vigie_flows_events_total", "kind", "new") }
func (rc *recorder) destroys() int64 {
	return rc.counter("vigie_flows_events_total", "kind", "destroy")
}
func (rc *recorder) overruns() int64 {
	return rc.counter("vigie_flows_lost_total", "cause", flows.LossENOBUFS)
}

// Run measures the ladder. Every wait is bounded; ctx cancels the run.
// It needs root (namespaces, raw sockets) and Debian's conntrack.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }
	if os.Geteuid() != 0 {
		return nil, errors.New("flowflood: needs root (network namespaces, raw sockets)")
	}
	if _, err := exec.LookPath("conntrack"); err != nil {
		return nil, fmt.Errorf("flowflood: the conntrack command is needed (apt-get install conntrack): %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	res := &Result{Machine: benchenv.Machine(), LoadBefore: benchenv.LoadText()}
	defer func() { res.LoadAfter = benchenv.LoadText() }()
	if v, err := exec.Command("conntrack", "--version").CombinedOutput(); err == nil {
		res.ConntrackVersion = strings.TrimSpace(string(v))
	}
	l, err := newLab(ctx)
	if err != nil {
		return nil, err
	}
	defer l.close()

	rc := &recorder{reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	local := func(a netip.Addr) bool {
		return a == netip.MustParseAddr(gwLAN) || a == netip.MustParseAddr(gwWAN)
	}
	rc.r, err = flows.New(flows.Config{UAI: "0671234X", Rate: 1e9, Burst: 1 << 30, ReapInterval: -1},
		flows.Deps{Journal: journal.Discard{}, Local: local, Registry: rc.reg,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(ctx)
	go func() { rc.done <- l.gw.Do(func() error { return rc.r.Run(rctx) }) }()
	defer func() { stop(); <-rc.done }()
	select {
	case <-rc.r.Ready():
	case err := <-rc.done:
		rc.done <- err
		return nil, fmt.Errorf("flowflood: recorder: %w", err)
	case <-time.After(10 * time.Second):
		return nil, errors.New("flowflood: the recorder did not subscribe within 10 s")
	}

	var first uint64
	lossyBoth := 0
	for i, target := range o.Rates {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		n := o.MaxFlows
		if target > 0 {
			n = min(n, int(target*o.Step.Seconds()))
		}
		s, err := l.step(ctx, rc, exe, o.Senders, target, n, first, logf)
		first += uint64(n) + 1
		if err != nil {
			return res, fmt.Errorf("flowflood: step %d (%.0f flows/s): %w", i+1, target, err)
		}
		res.Steps = append(res.Steps, s)
		logf("step %d: target %s, reached %.0f flows/s: sent %d, made %d; recorder %d (overruns %d), conntrack -E %d (overrun %v); CPU recorder %s, conntrack -E %s, senders %s; flush: %d destroys in %s (overruns %d)",
			i+1, rateText(target), s.Rate, s.Sent, s.Created, s.Recorder, s.Overruns, s.Peer, s.PeerOverrun,
			s.RecorderCPU.Round(time.Millisecond), s.PeerCPU.Round(time.Millisecond), s.SenderCPU.Round(time.Millisecond),
			s.Destroyed, s.DestroyCPU.Round(time.Millisecond), s.DestroyOverruns)
		if !s.RecorderLossless() && !s.PeerLossless() {
			if lossyBoth++; lossyBoth >= 2 {
				logf("both listeners lost flows twice in a row: the ladder ends")
				break
			}
		} else {
			lossyBoth = 0
		}
		// The senders saturated: higher targets would measure the same
		// rate again; go to the unpaced step, if any is left.
		if target > 0 && s.Rate < 0.8*target {
			last := o.Rates[len(o.Rates)-1]
			if last == 0 && i == len(o.Rates)-2 {
				continue // the unpaced step is next anyway
			}
			if last == 0 && i < len(o.Rates)-2 {
				logf("the senders reached %.0f of %.0f flows/s: skipping to the unpaced step", s.Rate, target)
				s, err := l.step(ctx, rc, exe, o.Senders, 0, o.MaxFlows, first, logf)
				if err != nil {
					return res, err
				}
				res.Steps = append(res.Steps, s)
			}
			break
		}
	}
	res.summarize()
	return res, nil
}

// summarize fills the figures from the steps. CPU per flow is read at
// one reference step for all three, the same flood: the recorder's
// fastest lossless step (or the first step, when it lost at every one).
func (res *Result) summarize() {
	ref, top := -1, -1
	for i, s := range res.Steps {
		res.GeneratorMax = max(res.GeneratorMax, s.Rate)
		if s.RecorderLossless() && s.Rate > res.RecorderBest {
			res.RecorderBest, ref = s.Rate, i
		}
		if s.PeerLossless() {
			res.PeerBest = max(res.PeerBest, s.Rate)
		}
		if top < 0 || s.Rate > res.Steps[top].Rate {
			top = i
		}
	}
	if len(res.Steps) == 0 {
		return
	}
	if ref < 0 {
		ref = 0
	}
	s := res.Steps[ref]
	res.RefRate = s.Rate
	res.RecorderNewCPU = perFlow(s.RecorderCPU, s.Recorder)
	res.RecorderFlowCPU = res.RecorderNewCPU + perFlow(s.DestroyCPU, s.Destroyed)
	res.PeerCPU = perFlow(s.PeerCPU, s.Peer)
	res.SenderCPU = perFlow(s.SenderCPU, s.Created)
	if t := res.Steps[top]; t.Created > 0 {
		res.TopRate = t.Rate
		res.TopRecorderShare = float64(t.Recorder) / float64(t.Created)
		res.TopPeerShare = float64(t.Peer) / float64(t.Created)
	}
}

func perFlow(d time.Duration, n int64) time.Duration {
	if n <= 0 {
		return 0
	}
	return d / time.Duration(n)
}

func rateText(r float64) string {
	if r == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%.0f/s", r)
}

// step runs one flood of n flows at target flows/s (0: unpaced) and
// flushes the table after it.
func (l *lab) step(ctx context.Context, rc *recorder, exe string, senders int, target float64, n int, first uint64, logf func(string, ...any)) (Step, error) {
	s := Step{Target: target}
	// The kernel's tool, started per step so its counts and CPU are the
	// step's; its own -b sets the same 32 MiB receive buffer as the
	// recorder's.
	outPath := filepath.Join(l.dir, "conntrack-E.txt")
	outFile, err := os.Create(outPath)
	if err != nil {
		return s, err
	}
	defer os.Remove(outPath)
	var peerErr bytes.Buffer
	peer := l.gw.Command(ctx, "conntrack", "-E", "-e", "NEW", "-b", strconv.Itoa(32<<20))
	peer.Stdout, peer.Stderr = outFile, &peerErr
	if err := peer.Start(); err != nil {
		outFile.Close()
		return s, fmt.Errorf("conntrack -E: %w", err)
	}
	peerDone := make(chan struct{})
	go func() { peer.Wait(); outFile.Close(); close(peerDone) }()
	stopPeer := func() {
		peer.Process.Signal(syscall.SIGTERM)
		select {
		case <-peerDone:
		case <-time.After(5 * time.Second):
			peer.Process.Kill()
			<-peerDone
		}
	}
	defer stopPeer()

	// Both listeners are subscribed once the recorder has seen a probe
	// flow.
	news0 := rc.news()
	probeDeadline := time.Now().Add(10 * time.Second)
	for {
		if err := l.probe(ctx); err != nil {
			return s, err
		}
		time.Sleep(200 * time.Millisecond)
		if rc.news() > news0 {
			break
		}
		if time.Now().After(probeDeadline) {
			return s, errors.New("the recorder saw no probe flow within 10 s")
		}
	}
	// conntrack -E has had the same time to subscribe: it was started
	// before the first probe, and a netlink subscription is one bind.
	time.Sleep(300 * time.Millisecond)
	count0, err := l.tableCount()
	if err != nil {
		return s, err
	}
	news0, over0, cpu0 := rc.news(), rc.overruns(), selfCPU()

	// The senders, one per core, each its share of the flows and rate.
	type sender struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	ss := make([]*sender, senders)
	per := (n + senders - 1) / senders
	for i := range ss {
		cnt := min(per, n-i*per)
		if cnt <= 0 {
			ss = ss[:i]
			break
		}
		args, _ := json.Marshal(senderArgs{Rate: target / float64(senders), Count: cnt, First: first + uint64(i*per),
			Src: clientAddr, Dst: wanAddr})
		sd := &sender{cmd: l.client.Command(ctx, exe)}
		sd.cmd.Env = append(os.Environ(), senderEnv+"="+string(args))
		sd.cmd.Stdout = &sd.out
		sd.cmd.Stderr = os.Stderr
		ss[i] = sd
	}
	for _, sd := range ss {
		if err := sd.cmd.Start(); err != nil {
			return s, fmt.Errorf("sender: %w", err)
		}
	}
	var t0, t1 int64
	var errs []error
	for _, sd := range ss {
		err := sd.cmd.Wait()
		var out senderOut
		if jerr := json.Unmarshal(sd.out.Bytes(), &out); jerr != nil {
			errs = append(errs, fmt.Errorf("sender: %v (output %q, %v)", err, sd.out.String(), jerr))
			continue
		}
		if out.Err != "" {
			errs = append(errs, errors.New(out.Err))
		}
		s.Sent += int64(out.Sent)
		if t0 == 0 || out.Start < t0 {
			t0 = out.Start
		}
		t1 = max(t1, out.End)
		if ps := sd.cmd.ProcessState; ps != nil {
			s.SenderCPU += ps.UserTime() + ps.SystemTime()
		}
	}
	if len(errs) > 0 {
		return s, errors.Join(errs...)
	}
	s.Seconds = float64(t1-t0) / 1e9

	// Drain: the listeners may still be reading what the kernel queued.
	count1, err := l.tableCount()
	if err != nil {
		return s, err
	}
	s.Created = count1 - count0
	settle(20*time.Second, func() int64 { return rc.news() }, func(v int64) bool { return v-news0 >= s.Created })
	s.Recorder, s.Overruns, s.RecorderCPU = rc.news()-news0, rc.overruns()-over0, selfCPU()-cpu0
	if s.Seconds > 0 {
		s.Rate = float64(s.Created) / s.Seconds
	}
	// conntrack -E prints as fast as it reads; give it the same drain.
	time.Sleep(500 * time.Millisecond)
	stopPeer()
	if ps := peer.ProcessState; ps != nil {
		s.PeerCPU = ps.UserTime() + ps.SystemTime()
	}
	// The summary conntrack prints on SIGTERM counts what it showed, and
	// the lines are counted too: they must agree. The flood's flows are
	// the lines whose original destination is the flood's.
	lines, flood, err := countLines(outPath, "dst="+wanAddr+" ")
	if err != nil {
		return s, err
	}
	shown := shownEvents(peerErr.String())
	if shown >= 0 && shown != lines {
		logf("conntrack -E says it showed %d events, its output has %d lines", shown, lines)
	}
	s.Peer = flood
	s.PeerOverrun = strings.Contains(peerErr.String(), "ENOBUFS")
	if count1 > count0 && s.Created != s.Sent {
		logf("%d datagrams sent, %d flows made: the kernel dropped some before conntrack", s.Sent, s.Created)
	}

	// Flush: every flow ends at once; the recorder turns each destroy
	// event into a record.
	dest0, over1, cpu1 := rc.destroys(), rc.overruns(), selfCPU()
	if _, err := l.gw.Run(ctx, "conntrack", "-F"); err != nil {
		return s, err
	}
	want := count1
	settle(30*time.Second, rc.destroys, func(v int64) bool { return v-dest0 >= want })
	s.Destroyed, s.DestroyOverruns, s.DestroyCPU = rc.destroys()-dest0, rc.overruns()-over1, selfCPU()-cpu1
	return s, nil
}

// probe makes one flow from the pupil with an ordinary socket.
func (l *lab) probe(ctx context.Context) error {
	c, err := l.client.Dial(ctx, "udp", net.JoinHostPort(probeAddr, "7"))
	if err != nil {
		return fmt.Errorf("flowflood: probe: %w", err)
	}
	defer c.Close()
	_, err = c.Write([]byte("probe"))
	return err
}

// settle polls value until done says so, or until it stopped moving for
// half a second, or max.
func settle(max time.Duration, value func() int64, done func(int64) bool) {
	deadline := time.Now().Add(max)
	last, still := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		v := value()
		if done(v) {
			return
		}
		if v != last {
			last, still = v, time.Now()
		} else if time.Since(still) > 500*time.Millisecond {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countLines counts a file's lines, and those containing with.
func countLines(path, with string) (lines, matching int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines++
		if bytes.Contains(sc.Bytes(), []byte(with)) {
			matching++
		}
	}
	return lines, matching, sc.Err()
}

// shownEvents reads "conntrack v1.4.7 (conntrack-tools): 1234 flow events
// have been shown." from conntrack's standard error, or -1.
func shownEvents(stderr string) int64 {
	for _, line := range strings.Split(stderr, "\n") {
		i := strings.Index(line, " flow events have been shown")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[:i])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseInt(f[len(f)-1], 10, 64); err == nil {
			return v
		}
	}
	return -1
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
