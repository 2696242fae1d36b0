package httpproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/elazarl/goproxy"

	"vigie/journal"
	"vigie/proxy/generation"
)

// Proxy is the filtering proxy of one edge. Create it with New, give it
// listeners with the Serve methods, stop it with Shutdown.
type Proxy struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	gen     *generation.Current
	journal journal.Sink
	m       *metrics

	gp      *goproxy.ProxyHttpServer
	tr      *http.Transport
	origins *originPool
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	origDst func(net.Conn) (netip.AddrPort, error)
	certs   *certStore
	mitmTLS func(host string, ctx *goproxy.ProxyCtx) (*tls.Config, error)
	own     ownAddrs
	local   localAddrs
	records sync.Pool

	mu        sync.Mutex
	closing   bool
	conns     map[*conn]struct{}
	servers   []*http.Server
	listeners []net.Listener
	// raw are the listeners no http.Server owns (transparent HTTPS).
	raw []net.Listener
	wg  sync.WaitGroup
}

// New builds a proxy. It validates cfg, registers the vigie_http_*
// metrics on deps.Registry and assembles the request path.
func New(cfg Config, deps Deps) (*Proxy, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Generation == nil {
		return nil, errors.New("http: no policy generation given")
	}
	p := &Proxy{cfg: cfg, deps: deps, log: deps.Log, now: deps.Now, gen: deps.Generation, journal: deps.Journal,
		dial: deps.Dial, origDst: deps.OriginalDst, conns: map[*conn]struct{}{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.journal == nil {
		p.journal = journal.Discard{}
	}
	if p.deps.Resolve == nil {
		p.deps.Resolve = defaultResolve
	}
	if p.dial == nil {
		d := &net.Dialer{Timeout: cfg.Timeouts.Dial, KeepAlive: 30 * time.Second}
		p.dial = d.DialContext
	}
	if p.origDst == nil {
		p.origDst = originalDst
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheusNoop{}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	p.m = m
	p.tr = p.newTransport()
	p.origins = newOriginPool(cfg.MaxIdleConnsPerHost, 4*cfg.MaxIdleConnsPerHost, originIdleTimeout, p.now)

	// goproxy carries TLS interception only: the tunnels the front
	// handlers hand it (intercept, serveConnect), whose requests it reads
	// and passes to serveIntercepted, its one request hook. Plain HTTP
	// and WebSocket never go through it (relay).
	gp := goproxy.NewProxyHttpServer()
	gp.Tr = p.tr
	gp.ConnectDial = nil // never an upstream proxy from the environment
	gp.ConnectDialWithReq = nil
	gp.KeepAcceptEncoding = true
	gp.Verbose = false
	gp.Logger = slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)
	gp.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serveNotProxy(w, r, nil) })
	gp.OnRequest().DoFunc(p.serveIntercepted)
	gp.OnRequest().HandleConnectFunc(p.onConnect)
	if cfg.CA != nil {
		p.certs = newCertStore(cfg.CertCacheSize, p.now, m.certsGenerated.Inc)
		gp.CertStore = p.certs
		p.mitmTLS = goproxy.TLSConfigFromCA(cfg.CA)
	}
	p.gp = gp
	return p, nil
}

// ServeExplicit serves the explicit forward proxy on ln until Shutdown.
func (p *Proxy) ServeExplicit(ln net.Listener) error {
	return p.serveHTTP(ln, entryExplicit, p.serveExplicit)
}

// ServeTransparentHTTP serves redirected port-80 traffic on ln.
func (p *Proxy) ServeTransparentHTTP(ln net.Listener) error {
	return p.serveHTTP(ln, entryTransparentHTTP, p.serveTransparentHTTP)
}

// serveHTTP serves ln with net/http, handing each request to the front
// handler serve with the client connection it arrived on.
func (p *Proxy) serveHTTP(ln net.Listener, e entry, serve func(http.ResponseWriter, *http.Request, *conn)) error {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := r.Context().Value(connKey{}).(*conn)
			serve(w, r, c)
		}),
		ReadHeaderTimeout: p.cfg.Timeouts.HeaderRead,
		IdleTimeout:       p.cfg.Timeouts.Idle,
		// net/http allows 4 KiB over MaxHeaderBytes.
		MaxHeaderBytes: max(p.cfg.MaxHeaderBytes-4096, 4096),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	if err := p.register(ln, srv); err != nil {
		return nil // shutting down already
	}
	err := srv.Serve(&listener{Listener: ln, p: p, entry: e})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("http: %s listener %s: %w", e, ln.Addr(), err)
}

// ServeTransparentHTTPS serves redirected port-443 traffic on ln.
func (p *Proxy) ServeTransparentHTTPS(ln net.Listener) error {
	if err := p.register(ln, nil); err != nil {
		return nil // shutting down already
	}
	l := &listener{Listener: ln, p: p, entry: entryTransparentHTTPS}
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if p.isClosing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("http: transparent_https listener %s: %w", ln.Addr(), err)
		}
		backoff = 0
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serveTLS(nc.(*conn))
		}()
	}
}

// register records a listener (its address joins the loop guard) and its
// server, refusing new ones once Shutdown began.
func (p *Proxy) register(ln net.Listener, srv *http.Server) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		ln.Close()
		return http.ErrServerClosed
	}
	p.addOwn(ln.Addr())
	p.listeners = append(p.listeners, ln)
	if srv != nil {
		p.servers = append(p.servers, srv)
	} else {
		p.raw = append(p.raw, ln)
	}
	return nil
}

func (p *Proxy) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends
// (10 s at most), then closes every remaining connection (tunnels included).
func (p *Proxy) Shutdown(ctx context.Context) error {
	// A download or upload in flight may last forever: bound the grace.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p.mu.Lock()
	p.closing = true
	servers, raw := p.servers, p.raw
	p.mu.Unlock()
	var errs []error
	for _, ln := range raw {
		ln.Close()
	}
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
	}
	p.mu.Lock()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("http: shutdown: %w", ctx.Err()))
	}
	p.tr.CloseIdleConnections()
	p.origins.close()
	return errors.Join(errs...)
}

// Addrs returns the addresses the proxy listens on.
func (p *Proxy) Addrs() []net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []net.Addr
	for _, ln := range p.listeners {
		out = append(out, ln.Addr())
	}
	return out
}
