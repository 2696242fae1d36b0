package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"vigie/proxy/http/sni"
	"vigie/rules/policy"
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
func (p *Proxy) serveTransparentHTTP(w http.ResponseWriter, r *http.Request) {
	c := connFrom(r.Context())
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

// blockPageTLS says whether a refused TLS connection is intercepted to
// show the block page: the profile asks for it (https_block_page, or its
// devices are managed: https: intercept), the
// académie CA is there, the connection names a site, and that site may be
// intercepted at all (never banking or health).
func (p *Proxy) blockPageTLS(settings *policy.Profile, x *exchange) bool {
	return (settings.HTTPSBlockPage || settings.HTTPS == "intercept") && x.host != "" && x.gen != nil && p.canIntercept(x.gen.Rules, x.host)
}

// intercept hands a TLS connection whose ClientHello was read to goproxy's
// interception as if the client had sent CONNECT host:443, replaying the
// hello. For a refused exchange, every request inside gets its block page.
func (p *Proxy) intercept(c *conn, hello []byte, host string, e entry, refused *exchange) {
	target := net.JoinHostPort(host, "443")
	s := &mitmSession{c: c, entry: e, host: host}
	if refused != nil {
		// The pages inside show the tunnel's reference: its record is
		// made durable first, as for any page (journalRefusal).
		s.refusal, s.ref = refused.category, refused.ref
		if !p.journalRefusal(refused, http.StatusForbidden) {
			s.ref = ""
		}
	}
	c.tunnelGauge = p.m.tunnels[e]
	c.idle.Store(int64(p.cfg.Timeouts.TunnelIdle))
	p.m.tunnels[e].Inc()
	req := (&http.Request{
		Method: http.MethodConnect, URL: &url.URL{Host: target}, Host: target,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, RemoteAddr: c.RemoteAddr().String(),
	}).WithContext(context.WithValue(context.Background(), sessionKey{}, s))
	rc := &replayConn{conn: c, pending: hello, swallow: true}
	p.gp.ServeHTTP(&hijackWriter{c: rc}, req)
}

// replayConn gives goproxy a client connection whose first reads return
// the ClientHello already read, and whose first write (goproxy's "200" to
// a CONNECT that never was) is dropped.
type replayConn struct {
	*conn
	pending []byte
	swallow bool
}

func (r *replayConn) Read(b []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(b, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	return r.conn.Read(b)
}

func (r *replayConn) Write(b []byte) (int, error) {
	if r.swallow {
		r.swallow = false
		if bytes.HasPrefix(b, []byte("HTTP/1.")) && strings.Contains(string(b), " 200 ") {
			return len(b), nil
		}
	}
	return r.conn.Write(b)
}

// hijackWriter is the ResponseWriter of the replayed CONNECT: goproxy only
// hijacks it.
type hijackWriter struct {
	c *replayConn
	h http.Header
}

func (w *hijackWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *hijackWriter) Write(b []byte) (int, error) { return w.c.Write(b) }
func (w *hijackWriter) WriteHeader(int)             {}
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.c, bufio.NewReadWriter(bufio.NewReader(bytes.NewReader(nil)), bufio.NewWriter(w.c)), nil
}
