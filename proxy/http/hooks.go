package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/elazarl/goproxy"

	"vigie/rules"
)

// mitmSession is what an intercepted tunnel's requests inherit, through
// goproxy's ctx.UserData, from the CONNECT (real or replayed) that opened it.
type mitmSession struct {
	c     *conn
	entry entry
	host  string
	// refusal, when set, is the category the tunnel was refused for: it
	// was intercepted only to answer every request in it with the block
	// page (profiles with https_block_page). The tunnel's own record
	// holds the refusal; the pages inside leave none.
	refusal, ref string
}

type sessionKey struct{}

// onRequest is goproxy's request hook, the chain every proxied HTTP request
// goes through (explicit, transparent, and inside intercepted tunnels).
// Its stages, in order:
//  1. the exchange: who asks (client connection, entry point) and what
//     (method, Host, full URL as the client sent it);
//  2. the policy (judge): a block answers the block page here, before any
//     byte leaves for the origin;
//  3. the destination check, transparent HTTP only: the Host must resolve
//     to where the client was really going, so a forged Host cannot carry
//     a blocked address past the policy;
//  4. scrubbing: hop-by-hop headers and client addresses never go upstream;
//  5. body counting, for the journal.
//
// Upstream errors are turned into clean pages by roundTrip, and every
// response, page or origin, then passes onResponse.
func (p *Proxy) onRequest(req *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	ctx.RoundTripper = p.rt
	x, s := p.exchangeFor(req, ctx)
	ctx.UserData = x
	scheme := req.URL.Scheme
	if scheme == "" {
		scheme = "http"
	}
	x.method, x.host = req.Method, req.Host
	x.url = scheme + "://" + req.Host + req.URL.RequestURI()

	if s != nil && s.refusal != "" {
		x.gen, x.silent = p.gen.Load(), true
		p.refuse(x, s.refusal)
		x.ref = s.ref // the tunnel's, or none when it could not be made durable
		return req, pageResponse(req, p.page(x, http.StatusForbidden))
	}
	p.judge(x)
	if x.blocked {
		return req, pageResponse(req, p.page(x, http.StatusForbidden))
	}
	switch {
	case x.intercepted():
		// Upstream dials and lookups of the tunnel's requests are made
		// for the device: its profile, its flows.
		if x.c != nil {
			req = req.WithContext(context.WithValue(req.Context(), clientKey{}, x.c.client.Addr()))
		}
	case x.entry == entryTransparentHTTP:
		if !p.destinationOK(req.Context(), x.c, x.host) {
			p.refuse(x, catDestination)
			return req, pageResponse(req, p.page(x, http.StatusForbidden))
		}
	case x.entry == entryExplicit && req.URL.Scheme == "http":
		if resp := p.pinExplicit(req, x); resp != nil {
			return req, resp
		}
	}
	if x.entry == entryTransparentHTTPS && x.c != nil && x.c.orig.IsValid() {
		// Intercepted transparent TLS: the client was going to the
		// original destination's port. The name, checked to resolve to
		// that destination, is kept for upstream TLS verification.
		req.URL.Host = net.JoinHostPort(rules.StripPort(req.URL.Host), strconv.Itoa(int(x.c.orig.Port())))
	}
	scrubRequest(req.Header)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &countingBody{ReadCloser: req.Body, n: &x.toOrigin}
	}
	return req, nil
}

// pinExplicit is the destination stage of a plain-HTTP request through the
// explicit proxy: the URL's host is resolved for the device (its profile:
// SafeSearch, blocks behind a CNAME), the addresses checked by
// destAllowed, and the request pinned to the first one allowed, so that
// what is dialed is what was checked (and the upstream pool, keyed by
// address, is never shared across profiles through a name). It returns
// the page to answer when the request goes no further.
func (p *Proxy) pinExplicit(req *http.Request, x *exchange) *http.Response {
	host, port, err := splitTarget(req.URL.Host, 80)
	if err != nil {
		x.outcome = outcomeError
		return pageResponse(req, p.page(x, http.StatusBadRequest))
	}
	ap, err := p.pickDest(req.Context(), x, host, port)
	switch {
	case err == nil:
		req.URL.Host = ap.String()
		return nil
	case x.blocked:
		return pageResponse(req, p.page(x, http.StatusForbidden))
	}
	reason, status := classify(err)
	p.m.upstreamErrors[reason].Inc()
	x.outcome = outcomeError
	return pageResponse(req, p.page(x, status))
}

// blockedName is the resolver's refusal of a name for the device's
// profile (dns.BlockedError): a CNAME leading to a blocked name.
type blockedName interface {
	error
	BlockedCategory() string
}

// pickDest resolves host for x's device and returns the first address the
// proxy may connect to on port. A name the DNS filter blocks for the
// device (a CNAME to a blocked name) and a destination destAllowed
// refuses mark x refused. Within one client connection the last answer
// is reused for a short while: keep-alive requests to one site cost one
// lookup.
func (p *Proxy) pickDest(ctx context.Context, x *exchange, host string, port uint16) (netip.AddrPort, error) {
	var client netip.Addr
	if x.c != nil {
		client = x.c.client.Addr()
	}
	var rs *rules.Ruleset
	if x.gen != nil {
		rs = x.gen.Rules
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else if ips = x.c.lookedUp(host, p.now()); ips == nil {
		ips, err = p.resolve(ctx, client, host)
		var be blockedName
		if errors.As(err, &be) {
			p.refuse(x, be.BlockedCategory())
			return netip.AddrPort{}, err
		}
		if err != nil {
			return netip.AddrPort{}, err
		}
		x.c.remember(host, ips, p.now())
	}
	refusal := catForbidden
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), port)
		if p.isOwn(ap) {
			return netip.AddrPort{}, fmt.Errorf("http: %s: %w", ap, errLoop)
		}
		if !p.destAllowed(rs, client, ap) {
			continue
		}
		if x.entry == entryExplicit && !p.egressAllowed(rs, client, ap) {
			refusal = catNoEgress
			continue
		}
		x.dest = ap
		return ap, nil
	}
	p.refuse(x, refusal)
	return netip.AddrPort{}, fmt.Errorf("http: %s: %w", host, errForbiddenDest)
}

func (x *exchange) intercepted() bool { return x.proto == "https" }

// exchangeFor finds the request's exchange: the one the front handler
// opened for this connection, or a new one inside an intercepted tunnel
// (then also returning the tunnel's session).
func (p *Proxy) exchangeFor(req *http.Request, ctx *goproxy.ProxyCtx) (*exchange, *mitmSession) {
	if c := connFrom(req.Context()); c != nil && c.cur != nil {
		return c.cur, nil
	}
	if s, ok := ctx.UserData.(*mitmSession); ok {
		x := p.newExchange(s.c, s.entry, "https")
		if s.c != nil {
			x.dest = s.c.orig
		}
		return x, s
	}
	// A request goproxy reached by another path: judge it with the
	// strictest profile (no client address).
	return p.newExchange(nil, entryExplicit, "http"), nil
}

// roundTrip is the upstream stage. It never returns an error: a failure
// becomes a clean page (502, 504, 508) so goproxy never shows raw error
// text, and it is counted by reason.
func (p *Proxy) roundTrip(req *http.Request, ctx *goproxy.ProxyCtx) (*http.Response, error) {
	x, _ := ctx.UserData.(*exchange)
	resp, err := p.tr.RoundTrip(req)
	if x != nil {
		x.upstreamLatency = p.now().Sub(x.start)
	}
	if err == nil {
		return resp, nil
	}
	reason, status := classify(err)
	p.m.upstreamErrors[reason].Inc()
	p.log.Debug("upstream error", "host", req.URL.Host, "reason", reasonNames[reason], "err", err)
	if x == nil {
		x = p.newExchange(nil, entryExplicit, "http")
	}
	if reason == reasonForbidden {
		p.refuse(x, catForbidden)
	} else {
		x.outcome = outcomeError
	}
	return pageResponse(req, p.page(x, status)), nil
}

// onResponse is goproxy's response hook: it records the status, strips
// hop-by-hop headers and counts the body, whose Close ends the exchange.
func (p *Proxy) onResponse(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	x, _ := ctx.UserData.(*exchange)
	if x == nil {
		x = p.newExchange(nil, entryExplicit, "http")
	}
	if resp == nil {
		x.outcome = outcomeError
		resp = pageResponse(ctx.Req, p.page(x, http.StatusBadGateway))
	}
	x.status = resp.StatusCode
	if resp.StatusCode != http.StatusSwitchingProtocols {
		scrubResponse(resp.Header)
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		// WebSocket: goproxy relays through the body as a ReadWriter.
		resp.Body = &recordingRWBody{recordingBody{ReadCloser: rw, x: x, p: p}, rw}
	} else {
		resp.Body = &recordingBody{ReadCloser: resp.Body, x: x, p: p}
	}
	return resp
}

// onConnect is goproxy's CONNECT hook. Only the front handlers pass a
// CONNECT to goproxy, and only to intercept it: anything else is refused.
func (p *Proxy) onConnect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	s, _ := ctx.Req.Context().Value(sessionKey{}).(*mitmSession)
	if s == nil || p.mitmTLS == nil {
		return goproxy.RejectConnect, host
	}
	ctx.UserData = s
	p.m.intercepted.Inc()
	return &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: p.mitmTLS}, host
}

// recordingBody counts the response bytes relayed to the client and ends
// the exchange when goproxy closes it.
type recordingBody struct {
	io.ReadCloser
	x *exchange
	p *Proxy
}

func (b *recordingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.x.toClient.Add(int64(n))
	return n, err
}

func (b *recordingBody) Close() error {
	err := b.ReadCloser.Close()
	b.p.finish(b.x)
	return err
}

type recordingRWBody struct {
	recordingBody
	w io.Writer
}

func (b *recordingRWBody) Write(buf []byte) (int, error) {
	n, err := b.w.Write(buf)
	b.x.toOrigin.Add(int64(n))
	return n, err
}

type countingBody struct {
	io.ReadCloser
	n interface{ Add(int64) int64 }
}

func (b *countingBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.n.Add(int64(n))
	return n, err
}

// destinationOK checks that host resolves, through the edge's resolver, to
// the original destination of transparent connection c.
func (p *Proxy) destinationOK(ctx context.Context, c *conn, host string) bool {
	if p.cfg.NoDestinationCheck || c == nil {
		return true
	}
	h := rules.StripPort(host)
	if ip, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return ip.Unmap() == c.orig.Addr()
	}
	if c.checked != "" && c.checked == h {
		return true
	}
	ips, err := p.resolve(ctx, c.client.Addr(), h)
	if err != nil {
		p.log.Debug("destination check: cannot resolve", "host", h, "err", err)
		return false
	}
	for _, ip := range ips {
		if ip.Unmap() == c.orig.Addr() {
			c.checked = h
			return true
		}
	}
	return false
}

// Hop-by-hop headers (RFC 9110 7.6.1) and headers that would carry a
// client's internal address to the origin.
var (
	hopRequest  = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Client-Ip"}
	hopResponse = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Connection", "Upgrade"}
)

func scrubRequest(h http.Header) {
	ws := isWebSocket(h)
	dropConnectionTokens(h, ws)
	for _, k := range hopRequest {
		delete(h, k)
	}
	if !ws {
		delete(h, "Upgrade")
		// goproxy keeps Connection only for WebSocket handshakes.
	}
}

func scrubResponse(h http.Header) {
	dropConnectionTokens(h, false)
	for _, k := range hopResponse {
		delete(h, k)
	}
}

// dropConnectionTokens removes the headers a Connection header names.
func dropConnectionTokens(h http.Header, keepUpgrade bool) {
	for _, v := range h["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			k := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(tok))
			switch k {
			case "", "Close", "Keep-Alive":
				if k == "Keep-Alive" {
					delete(h, k)
				}
				continue
			case "Upgrade":
				if keepUpgrade {
					continue
				}
			}
			delete(h, k)
		}
	}
}

func isWebSocket(h http.Header) bool {
	return headerHas(h, "Connection", "upgrade") && headerHas(h, "Upgrade", "websocket")
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
