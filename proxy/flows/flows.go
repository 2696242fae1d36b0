// Package flows turns the kernel's conntrack events into connection
// records: one journal record per flow crossing the gateway, whatever its
// protocol, written when the flow ends (the destroy event carries the
// byte counters and the timestamps) with its NAT mapping taken from the
// reply tuple.
//
// What it does not write twice: a flow redirected to the edge's own DNS
// filter or proxy is journalled by them; the flow that the proxy or the
// DNS filter then opens upstream is written here, with zone "edge" and
// Link naming the service, because it holds the WAN port a requisition
// names.
//
// Floods are survived and declared: records go out at a bounded rate, and
// what is refused (over the rate, behind a full queue, or lost by the
// kernel when the netlink socket overran with ENOBUFS) is counted, exposed
// as a metric and declared in the chain by a gap record carrying the count
// in Lost ("Enregistrements perdus" in exports) before the next record.
package flows

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
)

// Config is what the recorder needs to know about the school's gateway.
type Config struct {
	UAI string
	// Rate bounds the flow records written per second; Burst is how many
	// may go at once after a quiet spell. Defaults: 20,000/s, 40,000.
	Rate  float64
	Burst int
	// QueueSize is no longer used: events are handled as they are read,
	// and the socket's receive buffer (ReadBuffer) is the queue.
	QueueSize int
	// ReadBuffer is the netlink socket's receive buffer in bytes (the
	// kernel's default, about 200 KB, overruns within milliseconds of a
	// port scan). Default 32 MiB.
	ReadBuffer int
	// Redirects maps the edge's own service ports to the service that
	// journals what is redirected to them (53 → dns, the proxy's ports →
	// proxy). Flows to a local address on these ports are not written.
	Redirects map[uint16]string
	// Upstreams names, by destination port, the service whose upstream
	// connections leave from the edge itself (53 → dns, 80 and 443 →
	// proxy): such a flow gets Link set.
	Upstreams map[uint16]string
	// ReapInterval is how often the recorder dumps the conntrack table:
	// a dump makes the kernel evict expired flows at once, and so send
	// their destroy events, instead of when its garbage collector next
	// passes (up to a minute later). Default 5 s; negative disables.
	ReapInterval time.Duration
}

func (c *Config) defaults() {
	if c.Rate <= 0 {
		c.Rate = 20000
	}
	if c.Burst <= 0 {
		c.Burst = 2 * int(c.Rate)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1 << 16
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 32 << 20
	}
	if c.ReapInterval == 0 {
		c.ReapInterval = 5 * time.Second
	}
}

// Deps are what the recorder is given.
type Deps struct {
	Journal journal.Sink
	// Local reports the edge's own addresses (the gateway's legs).
	Local func(netip.Addr) bool
	// Zone names the zone of a client address ("" outside the IP plan).
	Zone     func(netip.Addr) string
	Log      *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time
}

// Flow is one ended flow as the kernel reports it, independent of the
// netlink library (tests and the NFLOG reader build them too).
type Flow struct {
	Proto string
	// Orig is the tuple as the client sent it, Reply as the server
	// answers it: with source NAT, Reply's destination is the public
	// source; with a redirect, Reply's source is the local service.
	OrigSrc, OrigDst   netip.AddrPort
	ReplySrc, ReplyDst netip.AddrPort
	Start, End         time.Time
	// BytesOrig counts the client's bytes, BytesReply the server's.
	BytesOrig, BytesReply uint64
	// Dropped flows carry the firewall counter that dropped them.
	Dropped bool
	Reason  string
}

// Recorder writes flow records. Safe for concurrent use.
type Recorder struct {
	cfg Config
	d   Deps
	m   *metrics

	mu     sync.Mutex
	tokens float64
	last   time.Time
	// lost counts records refused since the last gap record; lostWhy
	// says why (the first cause in the run).
	lost    int64
	lostWhy string

	starts starts
	// stamped says the kernel stamps flows (set by Run before reading).
	stamped   bool
	drops     dropSeen
	ready     chan struct{}
	readyOnce sync.Once

	dropsReady chan struct{}
	dropsOnce  sync.Once
}

// New prepares a recorder.
func New(cfg Config, d Deps) (*Recorder, error) {
	cfg.defaults()
	if cfg.UAI == "" {
		return nil, fmt.Errorf("flows: uai is required")
	}
	if d.Journal == nil {
		d.Journal = journal.Discard{}
	}
	if d.Local == nil {
		d.Local = func(netip.Addr) bool { return false }
	}
	if d.Zone == nil {
		d.Zone = func(netip.Addr) string { return "" }
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	return &Recorder{cfg: cfg, d: d, m: m, tokens: float64(cfg.Burst), starts: starts{max: 1 << 20},
		ready: make(chan struct{}), dropsReady: make(chan struct{})}, nil
}

// Loss causes, the metric's label and the gap record's reason.
const (
	LossRate    = "rate"
	LossQueue   = "queue"
	LossENOBUFS = "enobufs"
)

// Lose counts n records that could not be written, for cause why.
func (r *Recorder) Lose(n int64, why string) {
	r.m.lost.WithLabelValues(why).Add(float64(n))
	r.mu.Lock()
	if r.lost == 0 {
		r.lostWhy = why
	}
	r.lost += n
	r.mu.Unlock()
}

// Record writes the record of one flow, or counts it as lost when the
// bounded rate is spent. Flows that are not the gateway's to write
// (loopback, management, redirected to the edge's own services) are
// skipped.
func (r *Recorder) Record(f *Flow) {
	rec, why := r.build(f)
	if rec == nil {
		r.m.skipped.WithLabelValues(why).Inc()
		return
	}
	now := r.d.Now()
	r.mu.Lock()
	if el := now.Sub(r.last).Seconds(); el > 0 {
		r.tokens = min(float64(r.cfg.Burst), r.tokens+el*r.cfg.Rate)
	}
	r.last = now
	if r.tokens < 1 {
		if r.lost == 0 {
			r.lostWhy = LossRate
		}
		r.lost++
		r.mu.Unlock()
		r.m.lost.WithLabelValues(LossRate).Inc()
		return
	}
	r.tokens--
	var gap *journal.Record
	if r.lost > 0 && r.tokens >= 1 {
		// The gap record takes a token too: a flood cannot turn into a
		// flood of gap records.
		r.tokens--
		gap = &journal.Record{Stream: journal.Connexions, Time: now, UAI: r.cfg.UAI, Proto: "conntrack",
			Verdict: "gap", Lost: r.lost, Reason: "conntrack." + r.lostWhy}
		r.lost = 0
	}
	r.mu.Unlock()
	if gap != nil {
		r.d.Log.Warn("flows: records lost", "lost", gap.Lost, "cause", gap.Reason)
		r.d.Journal.Append(gap)
		r.m.gaps.Inc()
	}
	r.d.Journal.Append(rec)
	r.m.written.WithLabelValues(rec.Verdict).Inc()
}

// Flush writes the pending gap record, if any, whatever the rate (on
// shutdown, and periodically so that a loss is declared even when no
// flow follows it).
func (r *Recorder) Flush() {
	r.mu.Lock()
	lost, why := r.lost, r.lostWhy
	r.lost = 0
	r.mu.Unlock()
	if lost == 0 {
		return
	}
	r.d.Journal.Append(&journal.Record{Stream: journal.Connexions, Time: r.d.Now(), UAI: r.cfg.UAI, Proto: "conntrack",
		Verdict: "gap", Lost: lost, Reason: "conntrack." + why})
	r.m.gaps.Inc()
}

// Skip reasons (metric label).
const (
	skipLoopback   = "loopback"
	skipRedirected = "redirected"
	skipLocal      = "local"
	skipInvalid    = "invalid"
)

// build makes the record of f, or says why there is none.
func (r *Recorder) build(f *Flow) (*journal.Record, string) {
	src, dst := f.OrigSrc.Addr(), f.OrigDst.Addr()
	switch {
	case !src.IsValid() || !dst.IsValid():
		return nil, skipInvalid
	case src.IsLoopback() || dst.IsLoopback():
		return nil, skipLoopback
	}
	rec := &journal.Record{Stream: journal.Connexions, Time: f.Start, UAI: r.cfg.UAI, Proto: f.Proto,
		Client: f.OrigSrc, Dest: f.OrigDst, Verdict: "allow"}
	if f.Start.IsZero() {
		rec.Time = f.End
	}
	if !f.End.IsZero() && !f.Start.IsZero() && f.End.After(f.Start) {
		rec.Duration = f.End.Sub(f.Start)
	}
	if f.Dropped {
		rec.Verdict, rec.Reason = "drop", f.Reason
		rec.Zone = r.d.Zone(src)
		return rec, ""
	}
	rec.BytesOut, rec.BytesIn = int64(f.BytesOrig), int64(f.BytesReply)
	replySrc := f.ReplySrc.Addr()
	switch {
	case r.d.Local(src):
		if r.d.Local(dst) || (replySrc.IsValid() && r.d.Local(replySrc)) {
			return nil, skipLocal
		}
		// The edge's own upstream connection: its source is the WAN
		// address and port a requisition names.
		rec.Zone = "edge"
		rec.Link = r.cfg.Upstreams[f.OrigDst.Port()]
		rec.NAT = natOf(f)
		return rec, ""
	case replySrc.IsValid() && r.d.Local(replySrc):
		// Sent to the edge: redirected to one of its services, which
		// journal it, or addressed to the gateway itself.
		if svc := r.cfg.Redirects[f.ReplySrc.Port()]; svc != "" {
			return nil, skipRedirected
		}
		return nil, skipLocal
	}
	rec.Zone = r.d.Zone(src)
	rec.NAT = natOf(f)
	return rec, ""
}

// natOf is the source as seen beyond the gateway: the reply's destination
// (rewritten by source NAT, or the client's own address when there is no
// translation).
func natOf(f *Flow) netip.AddrPort {
	if f.ReplyDst.Addr().IsValid() {
		return f.ReplyDst
	}
	return f.OrigSrc
}

// ProtoName names an IP protocol number as the journal writes it.
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 33:
		return "dccp"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	case 136:
		return "udplite"
	}
	return fmt.Sprintf("ip%d", p)
}
