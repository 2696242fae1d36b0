package httpproxy

import (
	"context"
	"net/http"
	"time"

	"vigie/proxy/http/sni"
)

// serveTransparentHTTP is the front handler of redirected port-80
// traffic, one request in one pass (its exchange ends when it returns).
// The request goes to the connection's original destination, never to
// where its Host points:
//  1. a connection that was not redirected (or loops back to the proxy)
//     is answered with an error page;
//  2. the policy (judge) on the Host and full URL;
//  3. the destination check: the Host must resolve, for the device, to
//     the original destination, so that a forged Host cannot carry a
//     blocked address past the policy;
//  4. the relay to the original destination and back.
func (p *Proxy) serveTransparentHTTP(w http.ResponseWriter, r *http.Request, c *conn) {
	x := p.newExchange(c, entryTransparentHTTP, "http")
	defer p.finish(x)
	x.dest = c.orig
	if !c.orig.IsValid() || r.Method == http.MethodConnect {
		// Not a redirected connection (no original destination), or a
		// CONNECT on a port meant for plain HTTP.
		p.answerError(w, r, x, http.StatusBadRequest)
		return
	}
	if c.looped() {
		// Sent straight to the proxy's port: nothing to forward to.
		p.m.upstreamErrors[reasonLoop].Inc()
		p.answerError(w, r, x, http.StatusLoopDetected)
		return
	}
	if r.Host == "" {
		// HTTP/1.0 without Host: the address is all there is.
		r.Host = c.orig.Addr().String()
	}
	r.URL.Scheme = "http"
	r.URL.Host = c.orig.String()
	describe(x, r)
	p.judge(x)
	if !x.blocked && !p.destinationOK(r.Context(), c, x.host) {
		p.refuse(x, catDestination)
	}
	if x.blocked {
		p.answer(w, x, p.page(x, http.StatusForbidden))
		return
	}
	if err := p.relay(w, r, x); err != nil {
		p.answer(w, x, p.page(x, p.upstreamFailed(x, err)))
	}
}

// serveTLS handles one redirected port-443 connection. Its stages:
//  1. read the ClientHello (bounded in size and time), keeping its bytes;
//  2. refuse a connection that was not redirected (loop);
//  3. the policy (judge) on the server name, or the profile's no-SNI rule;
//  4. the destination check: the name must resolve to the original
//     destination, so a forged SNI cannot reach a blocked address;
//  5. interception when the profile asks for it and the site allows it;
//  6. otherwise dial the original destination, replay the hello, splice.
//
// Refusals are a TLS access_denied alert: no page can be shown without
// the académie CA.
func (p *Proxy) serveTLS(c *conn) {
	handedOff := false
	defer func() {
		if !handedOff {
			c.Close()
		}
	}()
	x := p.newExchange(c, entryTransparentHTTPS, "https")
	x.dest = c.orig
	defer p.finish(x)

	c.SetReadDeadline(p.now().Add(p.cfg.Timeouts.HeaderRead))
	raw, hello, err := sni.Read(c, sni.MaxHello)
	if err != nil {
		p.log.Debug("transparent https: no client hello", "client", c.client, "err", err)
		x.outcome, x.noJournal = outcomeError, true
		return
	}
	c.SetReadDeadline(time.Time{})
	x.host = hello.ServerName

	if !c.orig.IsValid() || c.looped() {
		p.m.upstreamErrors[reasonLoop].Inc()
		x.outcome = outcomeError
		c.Write(sni.Alert)
		return
	}
	settings := p.judge(x)
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeouts.Dial)
	defer cancel()
	if !x.blocked && x.host != "" && !p.destinationOK(ctx, c, x.host) {
		p.refuse(x, catDestination)
	}
	if x.blocked {
		if p.blockPageTLS(settings, x) {
			handedOff = true
			p.intercept(c, raw, x.host, entryTransparentHTTPS, x)
			return
		}
		c.Write(sni.Alert)
		return
	}
	if x.host != "" && settings.HTTPS == "intercept" && p.canIntercept(x.gen.Rules, x.host) {
		handedOff = true
		x.noJournal = true // each request inside gets its record
		p.intercept(c, raw, x.host, entryTransparentHTTPS, nil)
		return
	}
	origin, err := p.dialAddr(ctx, c.client.Addr(), c.orig)
	if err != nil {
		reason, _ := classify(err)
		p.m.upstreamErrors[reason].Inc()
		x.outcome = outcomeError
		return
	}
	n, err := origin.Write(raw)
	x.toOrigin.Add(int64(n))
	if err != nil {
		origin.Close()
		x.outcome = outcomeError
		return
	}
	c.setDest(c.orig, "https")
	p.tunnel(x, c, c, origin)
}
