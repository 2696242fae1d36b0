package httpproxy

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"vigie/journal"
)

// conn is one client TCP connection, whichever listener accepted it. It
// counts bytes both ways and writes the connection's Connexions record
// when it closes, so every entry point journals connections the same way.
type conn struct {
	net.Conn
	p      *Proxy
	entry  entry
	client netip.AddrPort
	// orig is the original destination of a redirected connection.
	orig netip.AddrPort
	// local is the proxy's end of the connection.
	local netip.AddrPort
	start time.Time

	// fromClient and toClient count bytes read from and written to the
	// client (journal BytesOut and BytesIn).
	fromClient, toClient atomic.Int64
	// dest is where the connection's traffic went, when it is one place
	// (a tunnel, a transparent connection); set before the tunnel starts.
	dest  atomic.Pointer[netip.AddrPort]
	proto atomic.Pointer[string]

	// checked is the last host whose resolution matched orig, so a
	// keep-alive connection resolves its Host once.
	checked string
	// looked and lookedIPs are the explicit proxy's last lookup on this
	// connection, until lookedUntil (see pickDest).
	looked      string
	lookedIPs   []netip.Addr
	lookedUntil time.Time
	// tunnelGauge, when set, is decremented when the connection closes
	// (intercepted tunnels, which goproxy closes).
	tunnelGauge interface{ Dec() }
	// idle, when set, closes an intercepted tunnel that goproxy reads
	// without deadlines once nothing came from the client for that long.
	idle    atomic.Int64 // time.Duration
	idleSet time.Time

	closeOnce sync.Once
	closeErr  error
}

type connKey struct{}

// lookupReuse is how long a keep-alive connection reuses its last lookup.
const lookupReuse = 10 * time.Second

// lookedUp returns the addresses of host if this connection looked it up
// moments ago (nil otherwise, or on a nil connection).
func (c *conn) lookedUp(host string, now time.Time) []netip.Addr {
	if c == nil || c.looked != host || now.After(c.lookedUntil) {
		return nil
	}
	return c.lookedIPs
}

func (c *conn) remember(host string, ips []netip.Addr, now time.Time) {
	if c == nil {
		return
	}
	c.looked, c.lookedIPs, c.lookedUntil = host, ips, now.Add(lookupReuse)
}

// connFrom returns the connection a request arrived on (nil for the
// requests goproxy reads itself inside an intercepted tunnel).
func connFrom(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

func (p *Proxy) newConn(nc net.Conn, e entry) *conn {
	c := &conn{Conn: nc, p: p, entry: e, start: p.now()}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.client = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if ap, err := netip.ParseAddrPort(nc.LocalAddr().String()); err == nil {
		c.local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	p.m.connections[e].Inc()
	p.track(c, true)
	return c
}

func (c *conn) Read(b []byte) (int, error) {
	if idle := time.Duration(c.idle.Load()); idle > 0 {
		if now := time.Now(); now.Sub(c.idleSet) > idle/4 {
			c.Conn.SetReadDeadline(now.Add(idle))
			c.idleSet = now
		}
	}
	n, err := c.Conn.Read(b)
	c.fromClient.Add(int64(n))
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.toClient.Add(int64(n))
	return n, err
}

// CloseWrite half-closes towards the client, for tunnels.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// looped reports a transparent connection whose original destination is
// the proxy itself: it was sent straight to the proxy's port, not
// redirected, and forwarding it would loop.
func (c *conn) looped() bool {
	return c.orig == c.local || c.p.isOwn(c.orig)
}

func (c *conn) setDest(d netip.AddrPort, proto string) {
	c.dest.Store(&d)
	c.proto.Store(&proto)
}

// Close closes once and journals the connection.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.p.track(c, false)
		if c.tunnelGauge != nil {
			c.tunnelGauge.Dec()
		}
		r := c.p.getRecord()
		r.Stream = journal.Connexions
		r.Time = c.start
		r.UAI = c.p.cfg.UAI
		r.Client = c.client
		r.Proto = c.entry.defaultProto()
		if pr := c.proto.Load(); pr != nil {
			r.Proto = *pr
		}
		if d := c.dest.Load(); d != nil {
			r.Dest = *d
		} else if c.orig.IsValid() {
			r.Dest = c.orig
		}
		r.Duration = c.p.now().Sub(c.start)
		r.BytesIn = c.toClient.Load()
		r.BytesOut = c.fromClient.Load()
		c.p.putRecord(r)
	})
	return c.closeErr
}

func (e entry) defaultProto() string {
	switch e {
	case entryTransparentHTTPS:
		return "https"
	}
	return "http"
}

// listener wraps accepted connections as *conn.
type listener struct {
	net.Listener
	p     *Proxy
	entry entry
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := l.p.newConn(nc, l.entry)
	if l.entry != entryExplicit {
		c.orig, err = l.p.origDst(nc)
		if err != nil {
			// Keep accepting: the handler refuses this one connection.
			l.p.log.Debug("no original destination", "client", c.client, "err", err)
		}
	}
	return c, nil
}
