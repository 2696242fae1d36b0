// Package dns is the edge's DNS filter: a forwarding resolver that answers
// every device of a collège, judges each name (and each CNAME target of the
// answer) with the policy generation in force for the client's zone, and
// answers blocked names with NXDOMAIN, a null address or the block page's
// address, with an Extended DNS Error naming the category.
//
// A query goes through one chain of small stages, assembled in
// (*Server).serve: rate limit, parse, zone and profile, DoH canary,
// decision, SafeSearch, cache, upstream (coalesced), CNAME re-check,
// answer (truncated to the client's buffer), journal and metrics. The
// path from the socket to the answer allocates nothing for a cached or
// blocked name; miekg/dns is used behind a small seam (msg.go) for the
// rare paths only.
package dns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
	"vigie/proxy/generation"
)

// Config is the DNS filter's configuration, and the dns section of an
// edge's configuration file (yaml tags). Zero fields take the defaults
// documented on each, set in setDefaults only; New validates the whole and
// names the bad field.
type Config struct {
	// UAI is the school this edge serves; it selects the school's zones.
	UAI string `yaml:"-"`
	// Listen is the UDP and TCP address (default ":53"). A wildcard host
	// listens on IPv4 and IPv6 and answers from the address each query
	// was sent to.
	Listen string `yaml:"listen,omitempty"`
	// Upstreams are the resolvers queries are forwarded to, as IP:port, in
	// order of preference. Default: the nameservers of ResolvConf.
	Upstreams []string `yaml:"upstreams,omitempty"`
	// ResolvConf is read when Upstreams is empty (default /etc/resolv.conf).
	ResolvConf string `yaml:"resolv_conf,omitempty"`
	// Timeout is how long one upstream may take to answer before the next
	// is tried (default 2s).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// UDPSockets is the number of SO_REUSEPORT sockets per UDP address
	// (default GOMAXPROCS: the kernel spreads clients over them).
	UDPSockets int `yaml:"udp_sockets,omitempty"`
	// UDPBatch is how many datagrams one system call reads or writes
	// (recvmmsg/sendmmsg; default and maximum 32, 1 reads one at a time).
	UDPBatch int `yaml:"udp_batch,omitempty"`
	// UpstreamSockets is the number of persistent UDP sockets per upstream
	// (default 4).
	UpstreamSockets int `yaml:"upstream_sockets,omitempty"`
	// UpstreamSocketExpiry and UpstreamSocketQueries bound the life of an
	// upstream socket (default 10s and 1000 queries, whichever comes
	// first): a new socket has a new source port, which an attacker
	// spoofing answers must find again. A negative value disables that
	// bound.
	UpstreamSocketExpiry  time.Duration `yaml:"upstream_socket_expiry,omitempty"`
	UpstreamSocketQueries int           `yaml:"upstream_socket_queries,omitempty"`

	Cache     CacheConfig     `yaml:"cache,omitempty"`
	RateLimit RateLimitConfig `yaml:"rate_limit,omitempty"`

	// BlockTTL is the TTL of block answers (default 30s): short, so that
	// a lifted block takes effect quickly.
	BlockTTL time.Duration `yaml:"block_ttl,omitempty"`
	// BlockPageIPv4 and BlockPageIPv6 are the edge's block page addresses,
	// answered for blocked names in profiles with block_answer: blockpage.
	// Default: the Listen host when it is a specific address. A profile
	// asking for the block page without an address gets null answers.
	BlockPageIPv4 netip.Addr `yaml:"blockpage_ipv4,omitempty"`
	BlockPageIPv6 netip.Addr `yaml:"blockpage_ipv6,omitempty"`
	// SafeSearchTargets overrides the enforced-safe endpoint of an engine
	// (google, bing, duckduckgo, qwant, youtube_strict, youtube_moderate).
	SafeSearchTargets map[string]string `yaml:"safesearch_targets,omitempty"`

	// MaxTCPConns bounds concurrent TCP clients (default 1024), and
	// MaxTCPConnsPerSource those of one address (default 32).
	MaxTCPConns          int `yaml:"max_tcp_conns,omitempty"`
	MaxTCPConnsPerSource int `yaml:"max_tcp_conns_per_source,omitempty"`
	// TCPIdleTimeout closes idle TCP connections (default 10s, RFC 7766).
	TCPIdleTimeout time.Duration `yaml:"tcp_idle_timeout,omitempty"`
	// MaxWaiting bounds the queries waiting for an upstream answer
	// (default 8192); beyond it queries get SERVFAIL at once.
	MaxWaiting int `yaml:"max_waiting,omitempty"`
}

// CacheConfig sizes the answer cache and clamps its TTLs.
type CacheConfig struct {
	// Entries bounds the cache (default 100000; negative disables it).
	Entries int `yaml:"entries,omitempty"`
	// MinTTL and MaxTTL clamp the TTL of cached answers (defaults 0 and 24h).
	MinTTL time.Duration `yaml:"min_ttl,omitempty"`
	MaxTTL time.Duration `yaml:"max_ttl,omitempty"`
	// NegativeMaxTTL caps the life of cached NXDOMAIN and NODATA answers
	// (default 1h); NegativeTTL is used when they carry no SOA (default 60s).
	NegativeMaxTTL time.Duration `yaml:"negative_max_ttl,omitempty"`
	NegativeTTL    time.Duration `yaml:"negative_ttl,omitempty"`
	// ServeStale is how long past its expiry a cached answer may still be
	// served when no upstream answers (default 24h; negative disables), so
	// that a resolver outage does not cut the school off (RFC 8767).
	ServeStale time.Duration `yaml:"serve_stale,omitempty"`
}

// RateLimitConfig bounds the queries of each source address.
type RateLimitConfig struct {
	// QPS is the sustained queries per second allowed per source address
	// (default 500; negative disables). Queries over the limit are dropped.
	QPS float64 `yaml:"qps,omitempty"`
	// Burst is how many queries a source may send at once (default 2×QPS).
	Burst int `yaml:"burst,omitempty"`
}

// Deps are what the server is given rather than reaching for.
type Deps struct {
	// Gen is the policy generation in force (required).
	Gen      *generation.Current
	Journal  journal.Sink
	Registry prometheus.Registerer
	Log      *slog.Logger
	// Now is the clock for TTLs, time windows and journal times.
	Now func() time.Time
	// Dial opens upstream sockets (default net.Dialer).
	Dial Dialer
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = ":53"
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.UDPSockets == 0 {
		c.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if c.UDPBatch == 0 {
		c.UDPBatch = batchSize
	}
	if c.UpstreamSockets == 0 {
		c.UpstreamSockets = 4
	}
	if c.UpstreamSocketExpiry == 0 {
		c.UpstreamSocketExpiry = 10 * time.Second
	}
	if c.UpstreamSocketQueries == 0 {
		c.UpstreamSocketQueries = 1000
	}
	if c.Cache.Entries == 0 {
		c.Cache.Entries = 100000
	}
	if c.Cache.MaxTTL == 0 {
		c.Cache.MaxTTL = 24 * time.Hour
	}
	if c.Cache.NegativeMaxTTL == 0 {
		c.Cache.NegativeMaxTTL = time.Hour
	}
	if c.Cache.NegativeTTL == 0 {
		c.Cache.NegativeTTL = time.Minute
	}
	if c.Cache.ServeStale == 0 {
		c.Cache.ServeStale = 24 * time.Hour
	}
	if c.RateLimit.QPS == 0 {
		c.RateLimit.QPS = 500
	}
	if c.RateLimit.Burst == 0 {
		c.RateLimit.Burst = int(2 * c.RateLimit.QPS)
	}
	if c.BlockTTL == 0 {
		c.BlockTTL = 30 * time.Second
	}
	if c.MaxTCPConns == 0 {
		c.MaxTCPConns = 1024
	}
	if c.MaxTCPConnsPerSource == 0 {
		c.MaxTCPConnsPerSource = 32
	}
	if c.TCPIdleTimeout == 0 {
		c.TCPIdleTimeout = 10 * time.Second
	}
	if c.MaxWaiting == 0 {
		c.MaxWaiting = 8192
	}
}

func (c *Config) validate() error {
	if c.UAI == "" {
		return errors.New("dns: uai is required")
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("dns: listen %q: %w", c.Listen, err)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("dns: listen %q: the host must be an IP address", c.Listen)
		}
	}
	for i, u := range c.Upstreams {
		ap, err := parseUpstream(u)
		if err != nil {
			return fmt.Errorf("dns: upstreams[%d]: %w", i, err)
		}
		c.Upstreams[i] = ap.String()
	}
	switch {
	case c.Timeout < 0:
		return errors.New("dns: timeout must be positive")
	case c.UDPSockets < 1 || c.UDPSockets > 256:
		return fmt.Errorf("dns: udp_sockets %d: want 1 to 256", c.UDPSockets)
	case c.UDPBatch < 1 || c.UDPBatch > batchSize:
		return fmt.Errorf("dns: udp_batch %d: want 1 to %d", c.UDPBatch, batchSize)
	case c.UpstreamSockets < 1 || c.UpstreamSockets > 64:
		return fmt.Errorf("dns: upstream_sockets %d: want 1 to 64", c.UpstreamSockets)
	case c.Cache.MinTTL < 0 || c.Cache.MaxTTL < 0 || c.Cache.NegativeMaxTTL < 0 || c.Cache.NegativeTTL < 0:
		return errors.New("dns: cache TTLs must not be negative")
	case c.Cache.MaxTTL < c.Cache.MinTTL:
		return fmt.Errorf("dns: cache max_ttl %s is below min_ttl %s", c.Cache.MaxTTL, c.Cache.MinTTL)
	case c.BlockTTL < 0 || c.BlockTTL > 24*time.Hour:
		return fmt.Errorf("dns: block_ttl %s: want 0 to 24h", c.BlockTTL)
	case c.RateLimit.QPS > 0 && c.RateLimit.Burst < 1:
		return fmt.Errorf("dns: rate_limit burst %d must be positive", c.RateLimit.Burst)
	case c.MaxTCPConns < 1 || c.MaxTCPConnsPerSource < 1 || c.MaxWaiting < 1:
		return errors.New("dns: connection and waiting limits must be positive")
	}
	if c.BlockPageIPv4.IsValid() && !c.BlockPageIPv4.Unmap().Is4() {
		return fmt.Errorf("dns: blockpage_ipv4 %s is not an IPv4 address", c.BlockPageIPv4)
	}
	if c.BlockPageIPv6.IsValid() && (!c.BlockPageIPv6.Is6() || c.BlockPageIPv6.Is4In6()) {
		return fmt.Errorf("dns: blockpage_ipv6 %s is not an IPv6 address", c.BlockPageIPv6)
	}
	return nil
}

// parseUpstream accepts IP:port, [IPv6]:port, or a bare IP (port 53).
// Names are refused: resolving them would need this very resolver.
func parseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return ap, fmt.Errorf("%q: port 0", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address with an optional port", s)
	}
	return netip.AddrPortFrom(a.Unmap(), 53), nil
}

// resolvConfUpstreams reads the nameservers of a resolv.conf, leaving out
// this server's own address (forwarding to itself would loop).
func resolvConfUpstreams(path, listen string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lhost, lport, _ := net.SplitHostPort(listen)
	own, _ := netip.ParseAddr(lhost)
	self := func(a netip.Addr) bool {
		if lport != "53" {
			return false
		}
		if own.IsValid() && !own.IsUnspecified() {
			return own.Unmap() == a
		}
		if a.IsLoopback() {
			return true
		}
		addrs, _ := net.InterfaceAddrs()
		for _, ia := range addrs {
			if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
				return true
			}
		}
		return false
	}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(strings.SplitN(fields[1], "%", 2)[0])
		if err != nil || self(a.Unmap()) {
			continue
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), 53).String())
	}
	return out, sc.Err()
}

// Server is one running DNS filter.
type Server struct {
	cfg     Config
	gen     *generation.Current
	journal journal.Sink
	// journaling is false when the sink discards everything, so that no
	// record is built for nothing.
	journaling bool
	// nameView is set when the sink has encoded a record by the time
	// Append returns (the durable journal): the record's host is then the
	// request's own buffer, not a copy made for every query.
	nameView bool
	log      *slog.Logger
	now      func() time.Time
	dial     Dialer
	m        *metrics

	cache    *cache
	flight   flight
	up       *upstreams
	limit    *limiter
	safe     *safeSearch
	ttl      ttlPolicy
	blockTTL uint32
	blockV4  []byte
	blockV6  []byte
	waiting  atomic.Int32
	// limitLogged is when a rate-limited client was last logged.
	limitLogged atomic.Int64

	pool sync.Pool

	// ctx bounds upstream exchanges; bgCancel stops the background
	// goroutines (prober, limiter sweep) first thing at shutdown.
	ctx      context.Context
	cancel   context.CancelFunc
	bgCancel context.CancelFunc
	udp      []*udpListener
	tcp      []net.Listener
	wg       sync.WaitGroup
	addr     string

	tcpMu    sync.Mutex
	tcpBySrc map[netip.Addr]int
	tcpConns map[net.Conn]struct{}
	closing  bool
}

// New validates cfg and prepares a server; Start binds its sockets.
func New(cfg Config, d Deps) (*Server, error) {
	cfg.Upstreams = append([]string(nil), cfg.Upstreams...)
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d.Gen == nil {
		return nil, errors.New("dns: no policy generation given")
	}
	if len(cfg.Upstreams) == 0 {
		ups, err := resolvConfUpstreams(cfg.ResolvConf, cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("dns: no upstreams configured and %w", err)
		}
		if len(ups) == 0 {
			return nil, fmt.Errorf("dns: no upstreams configured and %s names none usable (set dns.upstreams)", cfg.ResolvConf)
		}
		cfg.Upstreams = ups
	}
	safe, err := newSafeSearch(cfg.SafeSearchTargets)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, gen: d.Gen, journal: d.Journal, log: d.Log, now: d.Now, dial: d.Dial,
		cache: newCache(cfg.Cache.Entries),
		limit: newLimiter(cfg.RateLimit.QPS, cfg.RateLimit.Burst),
		safe:  safe,
		ttl: ttlPolicy{
			min: uint32(cfg.Cache.MinTTL / time.Second), max: uint32(cfg.Cache.MaxTTL / time.Second),
			negMax: uint32(cfg.Cache.NegativeMaxTTL / time.Second), negDefault: uint32(cfg.Cache.NegativeTTL / time.Second),
		},
		blockTTL: uint32(cfg.BlockTTL / time.Second),
		tcpBySrc: map[netip.Addr]int{},
		tcpConns: map[net.Conn]struct{}{},
	}
	if s.journal == nil {
		s.journal = journal.Discard{}
	}
	_, discard := s.journal.(journal.Discard)
	s.journaling = !discard
	_, s.nameView = s.journal.(encodingSink)
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.dial == nil {
		s.dial = &net.Dialer{}
	}
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.m = newMetrics(reg, func() float64 { return float64(s.cache.len()) })
	v4, v6 := cfg.BlockPageIPv4, cfg.BlockPageIPv6
	if host, _, _ := net.SplitHostPort(cfg.Listen); host != "" {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			if a = a.Unmap(); a.Is4() && !v4.IsValid() {
				v4 = a
			} else if a.Is6() && !v6.IsValid() {
				v6 = a
			}
		}
	}
	if v4.IsValid() {
		b := v4.Unmap().As4()
		s.blockV4 = b[:]
	}
	if v6.IsValid() {
		b := v6.As16()
		s.blockV6 = b[:]
	}
	s.pool.New = func() any {
		return &request{s: s, in: make([]byte, maxQuery), out: make([]byte, 0, 1500), ede: make([]byte, 0, 2*maxEDEText)}
	}
	return s, nil
}

// Addr is the address the server listens on (UDP and TCP), with the port
// chosen by the system when the configuration asked for port 0.
func (s *Server) Addr() string { return s.addr }

// Start binds the sockets and starts serving. It returns once the server
// answers.
func (s *Server) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	up, err := newUpstreams(s.ctx, s.cfg.Upstreams, s.cfg.UpstreamSockets, s.cfg.Timeout,
		sockExpiry{maxAge: s.cfg.UpstreamSocketExpiry, maxQueries: int64(s.cfg.UpstreamSocketQueries)}, s.dial, s.now, s.log, s.m)
	if err != nil {
		s.cancel()
		return err
	}
	s.up = up
	if err := s.listen(); err != nil {
		s.Shutdown(context.Background())
		return err
	}
	bg, bgCancel := context.WithCancel(s.ctx)
	s.bgCancel = bgCancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.up.probe(bg, time.Second)
	}()
	if s.limit != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				select {
				case <-bg.Done():
					return
				case <-t.C:
					s.limit.sweep(s.now().UnixNano())
				}
			}
		}()
	}
	s.log.Info("dns filter listening", "addr", s.addr, "upstreams", s.cfg.Upstreams, "udp_sockets", len(s.udp))
	return nil
}

// Shutdown stops listening, lets the queries in progress finish until ctx
// ends, and closes the upstream sockets.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	if s.bgCancel != nil {
		s.bgCancel()
	}
	for _, l := range s.udp {
		l.conn.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
	// Idle TCP clients would hold the shutdown for their idle timeout.
	s.tcpMu.Lock()
	s.closing = true
	for c := range s.tcpConns {
		c.Close()
	}
	s.tcpMu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("dns: shutdown: %w", ctx.Err())
	}
	s.cancel()
	if s.up != nil {
		s.up.close()
	}
	return err
}
