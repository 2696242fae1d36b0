package httpproxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"

	"vigie/proxy/http/blockpage"
)

// serveExplicit is the explicit proxy's front handler. CONNECT is decided
// here; every other proxy request opens its exchange and goes through
// goproxy (onRequest, roundTrip, onResponse).
func (p *Proxy) serveExplicit(w http.ResponseWriter, r *http.Request) {
	c := connFrom(r.Context())
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r, c)
		return
	}
	if !r.URL.IsAbs() {
		p.serveNotProxy(w, r)
		return
	}
	x := p.newExchange(c, entryExplicit, "http")
	c.cur = x
	p.relayHTTP(w, r)
	c.cur = nil
	p.finish(x)
}

// serveNotProxy answers a request for the proxy itself (a browser pointed
// at the proxy's address): a page, never a relay.
func (p *Proxy) serveNotProxy(w http.ResponseWriter, r *http.Request) {
	x := p.newExchange(connFrom(r.Context()), entryExplicit, "http")
	x.url = r.URL.String()
	p.answerError(w, r, x, http.StatusBadRequest, func(pg *blockpage.Page) {
		pg.Title = "Filtrage Vigie"
		pg.Message = "Cette adresse est celle du filtrage de l'établissement : elle sert de proxy et n'affiche pas de site."
	})
}

// answerError ends a request that goes no further with a clean page,
// optionally reworded, and its journal record.
func (p *Proxy) answerError(w http.ResponseWriter, r *http.Request, x *exchange, status int, reword ...func(*blockpage.Page)) {
	x.method, x.host = r.Method, r.Host
	x.gen = p.gen.Load()
	x.outcome, x.status = outcomeError, status
	pg := p.page(x, status)
	for _, f := range reword {
		f(&pg)
	}
	writePage(w, pg)
	p.finish(x)
}

// serveConnect decides a CONNECT on its host, then refuses it with the
// block page, hands it to goproxy for interception, or splices it.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, c *conn) {
	x := p.newExchange(c, entryExplicit, "connect")
	x.method = http.MethodConnect
	target := r.URL.Host
	if target == "" {
		target = r.Host
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		target = net.JoinHostPort(stripPort(target), "443")
	}
	x.host = stripPort(target)
	defer p.finish(x)

	settings := p.judge(x)
	if x.blocked {
		x.status = http.StatusForbidden
		w.Header().Set("Connection", "close")
		writePage(w, p.page(x, http.StatusForbidden))
		return
	}
	if settings.HTTPS == "intercept" && p.canIntercept(x.gen.Rules, x.host) {
		// The CONNECT itself is journalled as an intercepted tunnel; each
		// request inside it gets its own record from onRequest.
		x.proto, x.status = "https", http.StatusOK
		s := &mitmSession{c: c, entry: entryExplicit, host: x.host}
		c.tunnelGauge = p.m.tunnels[entryExplicit]
		c.idle.Store(int64(p.cfg.TunnelIdleTimeout))
		p.m.tunnels[entryExplicit].Inc()
		p.gp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
		return
	}

	origin, err := p.dialUpstream(r.Context(), "tcp", target)
	if err != nil {
		reason, status := classify(err)
		p.m.upstreamErrors[reason].Inc()
		p.log.Debug("connect: upstream error", "target", target, "reason", reasonNames[reason], "err", err)
		x.outcome, x.status = outcomeError, status
		w.Header().Set("Connection", "close")
		writePage(w, p.page(x, status))
		return
	}
	if ap, err := netip.ParseAddrPort(origin.RemoteAddr().String()); err == nil {
		x.dest = ap
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		origin.Close()
		x.outcome, x.status = outcomeError, http.StatusInternalServerError
		writePage(w, blockpage.Error(http.StatusInternalServerError, blockpage.Page{Time: x.start}))
		return
	}
	nc, rw, err := hj.Hijack()
	if err != nil {
		origin.Close()
		x.outcome = outcomeError
		return
	}
	defer nc.Close()
	proto := "HTTP/1.1"
	if !r.ProtoAtLeast(1, 1) {
		proto = "HTTP/1.0"
	}
	if _, err := io.WriteString(nc, proto+" 200 Connection established\r\n\r\n"); err != nil {
		origin.Close()
		x.outcome = outcomeError
		return
	}
	x.status = http.StatusOK
	c.setDest(x.dest, "connect")
	// Bytes the client sent right behind its CONNECT (an eager
	// ClientHello) are in the server's buffer: replay them first.
	var fromClient io.Reader = nc
	if n := rw.Reader.Buffered(); n > 0 {
		early, _ := rw.Reader.Peek(n)
		fromClient = io.MultiReader(bytes.NewReader(bytes.Clone(early)), nc)
	}
	p.tunnel(x, nc, fromClient, origin)
}
