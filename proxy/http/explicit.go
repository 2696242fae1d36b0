package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"vigie/proxy/http/blockpage"
	"vigie/proxy/http/sni"
	"vigie/rules/policy"
)

// serveExplicit is the explicit proxy's front handler. CONNECT is
// serveConnect's; a plain-HTTP request goes through its stages here, in
// one pass, and its exchange ends (finish: metrics and journal record)
// when the handler returns:
//  1. the policy (judge) on the host and full URL; a block is answered
//     with the block page, before any byte leaves for the origin;
//  2. the destination (pinExplicit): the host resolved for the device,
//     each address checked, the request pinned to one allowed;
//  3. the relay to the origin and back; an origin that cannot be reached
//     gets a clean page.
func (p *Proxy) serveExplicit(w http.ResponseWriter, r *http.Request, c *conn) {
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r, c)
		return
	}
	if !r.URL.IsAbs() {
		p.serveNotProxy(w, r, c)
		return
	}
	x := p.newExchange(c, entryExplicit, "http")
	defer p.finish(x)
	describe(x, r)
	p.judge(x)
	if x.blocked {
		p.answer(w, x, p.page(x, http.StatusForbidden))
		return
	}
	if r.URL.Scheme == "http" {
		if status := p.pinExplicit(r, x); status != 0 {
			p.answer(w, x, p.page(x, status))
			return
		}
	}
	if err := p.relay(w, r, x); err != nil {
		p.answer(w, x, p.page(x, p.upstreamFailed(x, err)))
	}
}

// pinExplicit is the destination stage of a plain-HTTP request through the
// explicit proxy: the URL's host is resolved for the device (its profile:
// SafeSearch, blocks behind a CNAME), the addresses checked by
// destAllowed, and the request pinned to the first one allowed, so that
// what is dialed is what was checked (and the upstream pool, keyed by
// address, is never shared across profiles through a name). It returns
// the status of the page to answer when the request goes no further (x
// then says why), 0 otherwise.
func (p *Proxy) pinExplicit(r *http.Request, x *exchange) int {
	host, port, err := splitTarget(r.URL.Host, 80)
	if err != nil {
		x.outcome = outcomeError
		return http.StatusBadRequest
	}
	ap, refusal, err := p.pickDest(r.Context(), x, host, port)
	switch {
	case refusal != "":
		p.refuse(x, refusal)
		return http.StatusForbidden
	case err != nil:
		return p.upstreamFailed(x, err)
	}
	x.dest = ap
	r.URL.Host = ap.String()
	return 0
}

// serveNotProxy answers a request for the proxy itself (a browser pointed
// at the proxy's address): a page, never a relay.
func (p *Proxy) serveNotProxy(w http.ResponseWriter, r *http.Request, c *conn) {
	x := p.newExchange(c, entryExplicit, "http")
	defer p.finish(x)
	x.url = r.URL.String()
	p.answerError(w, r, x, http.StatusBadRequest, func(pg *blockpage.Page) {
		pg.Title = "Filtrage Vigie"
		pg.Message = "Cette adresse est celle du filtrage de l'établissement : elle sert de proxy et n'affiche pas de site."
	})
}

// serveConnect handles a CONNECT. Its stages:
//  1. the policy (judge) on the CONNECT host, the profile's allowed ports
//     (connect_ports, 443 by default), and IP-literal targets, which
//     follow no_sni as they name no site;
//  2. the destination: the host resolved for the device through the
//     edge's DNS filter, each address checked by destAllowed;
//  3. dial, "200 Connection established";
//  4. the ClientHello the client then sends is read (peekTunnel): its
//     server name must be the CONNECT host and gets its own verdict; no
//     server name follows no_sni;
//  5. splice, replaying the hello.
//
// A refusal before the 200 is the block page with a 403 (which browsers
// do not show); with https_block_page and the académie CA, a refused
// HTTPS tunnel is intercepted instead so that the page is seen. The
// journal records the host judged last: the server name when there is one.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, c *conn) {
	x := p.newExchange(c, entryExplicit, "connect")
	x.method = http.MethodConnect
	target := r.URL.Host
	if target == "" {
		target = r.Host
	}
	host, port, err := splitTarget(target, 443)
	host = canonicalHost(host)
	x.host = host
	defer p.finish(x)
	if err != nil || host == "" {
		x.outcome, x.status = outcomeError, http.StatusBadRequest
		w.Header().Set("Connection", "close")
		writePage(w, p.page(x, http.StatusBadRequest))
		return
	}

	settings := p.judge(x)
	_, ipErr := netip.ParseAddr(host)
	isIP := ipErr == nil
	if !x.blocked && !settings.Unfiltered {
		switch {
		case !policy.PortAllowed(settings.ConnectPorts, port, 443):
			p.refuse(x, catPort)
		case isIP && settings.NoSNI != "allow":
			p.refuse(x, catIPLiteral)
		}
	}
	if x.blocked {
		if port == 443 && !isIP && p.blockPageTLS(settings, x) {
			if nc, early, ok := p.establish(w, r, x); ok {
				x.status = http.StatusForbidden
				p.intercept(nc, early, host, entryExplicit, x)
			}
			return
		}
		x.status = http.StatusForbidden
		w.Header().Set("Connection", "close")
		writePage(w, p.page(x, http.StatusForbidden))
		return
	}
	if settings.HTTPS == "intercept" && p.canIntercept(x.gen.Rules, x.host) {
		// The CONNECT itself is journalled as an intercepted tunnel; each
		// request inside it gets its own record from serveIntercepted.
		x.proto, x.status = "https", http.StatusOK
		s := &mitmSession{c: c, entry: entryExplicit, host: x.host}
		c.tunnelGauge = p.m.tunnels[entryExplicit]
		c.idle.Store(int64(p.cfg.Timeouts.TunnelIdle))
		p.m.tunnels[entryExplicit].Inc()
		p.gp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
		return
	}

	ap, refusal, err := p.pickDest(r.Context(), x, host, port)
	var origin net.Conn
	if refusal == "" && err == nil {
		origin, err = p.dialAddr(r.Context(), c.client.Addr(), ap)
	}
	if refusal != "" || err != nil {
		status := http.StatusForbidden
		if refusal != "" {
			p.refuse(x, refusal)
		} else {
			status = p.upstreamFailed(x, err)
		}
		x.status = status
		w.Header().Set("Connection", "close")
		writePage(w, p.page(x, status))
		return
	}
	x.dest = ap
	nc, early, ok := p.establish(w, r, x)
	if !ok {
		origin.Close()
		return
	}
	x.status = http.StatusOK
	replay := early
	if !settings.Unfiltered {
		var refused bool
		if replay, refused = p.judgeTunnel(x, settings, nc, early, host, isIP); refused {
			origin.Close()
			x.status = http.StatusForbidden
			if x.host != "" && !isIPText(x.host) && p.blockPageTLS(settings, x) {
				p.intercept(nc, replay, x.host, entryExplicit, x)
				return
			}
			nc.Close()
			return
		}
	}
	defer nc.Close()
	if len(replay) > 0 {
		n, err := origin.Write(replay)
		x.toOrigin.Add(int64(n))
		if err != nil {
			origin.Close()
			x.outcome = outcomeError
			return
		}
	}
	c.setDest(x.dest, "connect")
	p.tunnel(x, nc, nc, origin)
}

// establish hijacks the client connection of an accepted CONNECT, answers
// "200 Connection established" and returns the connection with the bytes
// the client sent right behind its CONNECT (an eager ClientHello).
func (p *Proxy) establish(w http.ResponseWriter, r *http.Request, x *exchange) (*conn, []byte, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		x.outcome, x.status = outcomeError, http.StatusInternalServerError
		writePage(w, blockpage.Error(http.StatusInternalServerError, blockpage.Page{Time: x.start}))
		return nil, nil, false
	}
	nc, rw, err := hj.Hijack()
	if err != nil {
		x.outcome = outcomeError
		return nil, nil, false
	}
	c, ok := nc.(*conn)
	if !ok {
		nc.Close()
		x.outcome = outcomeError
		return nil, nil, false
	}
	proto := "HTTP/1.1"
	if !r.ProtoAtLeast(1, 1) {
		proto = "HTTP/1.0"
	}
	if _, err := io.WriteString(c, proto+" 200 Connection established\r\n\r\n"); err != nil {
		c.Close()
		x.outcome = outcomeError
		return nil, nil, false
	}
	var early []byte
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		early = bytes.Clone(b)
	}
	return c, early, true
}

// judgeTunnel is stage 4 of serveConnect: it reads the client's first
// bytes in the tunnel (after early, already read) and judges the server
// name. It returns every byte read, to replay to the origin or to the
// interception, and whether the tunnel is refused (x then says why; a TLS
// alert has been sent where the client spoke TLS and no page follows).
func (p *Proxy) judgeTunnel(x *exchange, settings *policy.Profile, nc *conn, early []byte, host string, isIP bool) ([]byte, bool) {
	nc.SetReadDeadline(p.now().Add(p.cfg.Timeouts.HeaderRead))
	raw, name, err := peekTunnel(io.MultiReader(bytes.NewReader(early), nc))
	nc.SetReadDeadline(time.Time{})
	noSNI := settings.NoSNI == "allow"
	switch {
	case err != nil && len(raw) == 0 && isTimeout(err) && noSNI:
		// A protocol where the server speaks first: nothing to judge.
		return raw, false
	case errors.Is(err, sni.ErrNotTLS) || err == nil && name == "":
		if !noSNI {
			p.refuse(x, catNoSNI)
			if err == nil {
				nc.Write(sni.Alert)
			}
			return raw, true
		}
		return raw, false
	case err != nil:
		p.log.Debug("connect: no client hello", "client", x.c.client, "err", err)
		x.outcome = outcomeError
		return raw, true
	}
	if !sniMatches(host, name) {
		if !isIP || !p.resolvesTo(x, name, host) {
			x.host = name
			p.refuse(x, catDestination)
			return raw, p.alert(x, nc, settings)
		}
	}
	if x.host != name {
		// An IP-literal CONNECT (no_sni: allow) whose server name leads
		// there, or a name differing in letter case: the name is judged.
		x.host = name
		p.judge(x)
		if x.blocked {
			return raw, p.alert(x, nc, settings)
		}
	}
	return raw, false
}

// alert refuses a tunnel whose hello was read: a TLS alert, unless the
// block page is to be shown by interception. It always reports true.
func (p *Proxy) alert(x *exchange, nc *conn, settings *policy.Profile) bool {
	if !p.blockPageTLS(settings, x) {
		nc.Write(sni.Alert)
	}
	return true
}

// peekTunnel reads a TLS ClientHello from the start of a CONNECT tunnel
// and returns every byte it read (to replay), the server name in
// canonical form (lower case, no trailing dot; empty when the hello has
// none), and sni.ErrNotTLS when the client does not speak TLS.
func peekTunnel(r io.Reader) (raw []byte, name string, err error) {
	raw, h, err := sni.Read(r, sni.MaxHello)
	if err != nil {
		return raw, "", err
	}
	return raw, canonicalHost(h.ServerName), nil
}

// sniMatches reports whether the server name of a tunnel's hello is the
// host its CONNECT named.
func sniMatches(connectHost, name string) bool {
	return name != "" && canonicalHost(connectHost) == name
}

func canonicalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func isIPText(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
