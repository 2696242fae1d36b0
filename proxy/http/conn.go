package httpproxy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
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

// connKey carries a request's *conn from the server's ConnContext to the
// front handler (serveHTTP), and to the upstream dials (clientOf).
type connKey struct{}

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

// track keeps the set of open client connections, so that Shutdown can end
// the tunnels net/http no longer knows about once hijacked.
func (p *Proxy) track(c *conn, open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if open {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
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

// Close closes once and journals the connection (recordConn).
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.p.track(c, false)
		if c.tunnelGauge != nil {
			c.tunnelGauge.Dec()
		}
		c.p.recordConn(c)
	})
	return c.closeErr
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
