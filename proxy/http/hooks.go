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

	"vigie/proxy/http/blockpage"
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

// serveIntercepted is the front handler of one request inside an
// intercepted tunnel, goproxy's only request hook: goproxy terminates the
// TLS and reads the requests, this function takes each through its
// stages in one pass, and goproxy writes back what it returns.
//  1. the exchange, for the device and entry of the tunnel (its session,
//     which goproxy hands every request of the tunnel in ctx.UserData);
//  2. the policy (judge) on the host and full URL; a tunnel intercepted
//     only to show a block page answers it to every request;
//  3. the relay to the origin (dials and lookups for the device);
//  4. the record: goproxy sends the body after this function returns,
//     so the exchange ends when goproxy closes it (finishing).
func (p *Proxy) serveIntercepted(req *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	s, _ := ctx.UserData.(*mitmSession)
	if s == nil {
		// Only onConnect opens tunnels, always with a session.
		return req, pageResponse(req, blockpage.Error(http.StatusBadGateway, blockpage.Page{Time: p.now()}))
	}
	x := p.newExchange(s.c, s.entry, "https")
	x.dest = s.c.orig
	describe(x, req)
	if s.refusal != "" {
		x.gen, x.silent = p.gen.Load(), true
		p.refuse(x, s.refusal)
		x.ref = s.ref // the tunnel's, or none when it could not be made durable
		return req, p.finishing(x, pageResponse(req, p.page(x, http.StatusForbidden)))
	}
	p.judge(x)
	if x.blocked {
		return req, p.finishing(x, pageResponse(req, p.page(x, http.StatusForbidden)))
	}
	// Upstream dials and lookups are made for the device: its profile,
	// its flows.
	req = req.WithContext(context.WithValue(req.Context(), clientKey{}, s.c.client.Addr()))
	if x.entry == entryTransparentHTTPS && s.c.orig.IsValid() {
		// Intercepted transparent TLS: the client was going to the
		// original destination's port. The name, checked to resolve to
		// that destination, is kept for upstream TLS verification.
		req.URL.Host = net.JoinHostPort(rules.StripPort(req.URL.Host), strconv.Itoa(int(s.c.orig.Port())))
	}
	prepareUpstream(req, x)
	resp, err := p.tr.RoundTrip(req)
	x.upstreamLatency = p.now().Sub(x.start)
	if err != nil {
		return req, p.finishing(x, pageResponse(req, p.page(x, p.upstreamFailed(x, err))))
	}
	x.status = resp.StatusCode
	if resp.StatusCode != http.StatusSwitchingProtocols {
		scrubResponse(resp.Header)
	}
	return req, p.finishing(x, resp)
}

// finishing hands resp to goproxy with a body that counts the bytes sent
// to the client and ends x when goproxy closes it, once the response is
// written.
func (p *Proxy) finishing(x *exchange, resp *http.Response) *http.Response {
	x.status = resp.StatusCode
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

// blockedName is the resolver's refusal of a name for the device's
// profile (dns.BlockedError): a CNAME leading to a blocked name.
type blockedName interface {
	error
	BlockedCategory() string
}

// pickDest resolves host for x's device and returns the first address the
// proxy may connect to on port, or the category of its refusal: a name
// the DNS filter blocks for the device (a CNAME to a blocked name), or
// no address destAllowed and egressAllowed accept. Within one client
// connection the last answer is reused for a short while: keep-alive
// requests to one site cost one lookup.
func (p *Proxy) pickDest(ctx context.Context, x *exchange, host string, port uint16) (netip.AddrPort, string, error) {
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
			return netip.AddrPort{}, be.BlockedCategory(), err
		}
		if err != nil {
			return netip.AddrPort{}, "", err
		}
		x.c.remember(host, ips, p.now())
	}
	refusal := catForbidden
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), port)
		if p.isOwn(ap) {
			return netip.AddrPort{}, "", fmt.Errorf("http: %s: %w", ap, errLoop)
		}
		if !p.destAllowed(rs, client, ap) {
			continue
		}
		if x.entry == entryExplicit && !p.egressAllowed(rs, client, ap) {
			refusal = catNoEgress
			continue
		}
		return ap, "", nil
	}
	return netip.AddrPort{}, refusal, fmt.Errorf("http: %s: %w", host, errForbiddenDest)
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
