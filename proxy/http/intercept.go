package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/elazarl/goproxy"

	"vigie/proxy/http/blockpage"
	"vigie/rules"
	"vigie/rules/policy"
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

// blockPageTLS says whether a refused TLS connection is intercepted to
// show the block page: the profile asks for it (https_block_page, or its
// devices are managed: https: intercept), the
// académie CA is there, the connection names a site, and that site may be
// intercepted at all (never banking or health).
func (p *Proxy) blockPageTLS(settings *policy.Profile, x *exchange) bool {
	return (settings.HTTPSBlockPage || settings.HTTPS == "intercept") && x.host != "" && x.gen != nil && p.canIntercept(x.gen.Rules, x.host)
}

// canIntercept says whether TLS to host may be intercepted for a profile
// set to intercept: never without a CA, never for the no-intercept
// domains, never for banking or health categories.
func (p *Proxy) canIntercept(rs *rules.Ruleset, host string) bool {
	if p.cfg.CA == nil {
		return false
	}
	h := strings.ToLower(strings.TrimSuffix(rules.StripPort(host), "."))
	for _, d := range p.cfg.NoIntercept {
		if h == d || strings.HasSuffix(h, "."+d) {
			return false
		}
	}
	return !rs.ListedIn(h, p.cfg.NoInterceptCategories...)
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

func (w *hijackWriter) WriteHeader(int) {}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.c, bufio.NewReadWriter(bufio.NewReader(bytes.NewReader(nil)), bufio.NewWriter(w.c)), nil
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
