// Package httpproxy is Vigie's HTTP/HTTPS filtering proxy at the school
// edge. It has three entry points, each its own listener:
//
//   - the explicit forward proxy (HTTP and CONNECT) for configured devices:
//     CONNECT only to the profile's ports, the ClientHello inside the
//     tunnel read and its server name judged (it must be the CONNECT
//     host), and no connection to the gateway, loopback, link-local,
//     multicast or the school's networks unless a flow allows it
//     (destination.go);
//   - transparent HTTP: port 80 redirected by nftables; the request's Host
//     is decided on and cross-checked with the original destination
//     (SO_ORIGINAL_DST), where the request is then forwarded;
//   - transparent HTTPS: port 443 redirected; the TLS ClientHello is read
//     without terminating TLS, the server name decided on and checked
//     against the original destination, then the bytes are spliced to that
//     destination or refused with a TLS alert.
//
// Every request goes through one decision function (judge) backed by the
// rules matcher for the client's zone profile, gets a French block page
// when refused (over HTTPS too, by intercepting the refused connection,
// where the profile asks for it and the académie CA is deployed), and
// leaves one journal record. Names are resolved through the edge's DNS
// filter for the device (Deps.Resolve), so that SafeSearch's answers and
// the proxy's destination checks agree. Plain HTTP and WebSocket are
// relayed by the proxy's own engine (relay) on net/http; TLS interception
// (managed devices, académie CA) runs on goproxy; the paths that need no
// HTTP machinery (CONNECT tunnels, spliced TLS) are plain splices with
// idle timeouts.
//
// # One request, from accept to journal record
//
// Each front handler is one pass over the stages of its request:
//
//	x := p.newExchange(c, entry, proto)
//	defer p.finish(x)                  // record
//	describe(x, r); p.judge(x)         // decide (a refusal: page)
//	p.pinExplicit / p.destinationOK    // check the destination
//	p.relay(w, r, x) / p.tunnel(...)   // relay
//
// The files are the stages of a request, in the order it meets them; a
// file calls only into the files after it (config.go, metrics.go, ca.go
// and origdst_*.go are leaves every stage may read):
//
//  1. proxy.go, conn.go (accept): a listener accepts the client's TCP
//     connection and wraps it as a *conn (counting bytes, and the
//     original destination of a redirected one); net/http reads each
//     request of an HTTP connection; the TLS port's accept loop hands each
//     connection to serveTLS.
//  2. explicit.go, transparent.go, intercept.go (the front handlers): one
//     function per kind of request owns its exchange from start to
//     finish, in the one pass above: serveExplicit (plain HTTP through
//     the explicit proxy), serveConnect (CONNECT: ports, destination, the ClientHello read in
//     the tunnel and its server name judged, splice), serveTransparentHTTP
//     (port 80), serveTLS (port 443: ClientHello, judge, check, splice).
//     A refused HTTPS connection that is to show its block page, and a
//     managed device's tunnel, are handed to goproxy (intercept), which
//     terminates the TLS and reads the requests; each of them gets the
//     same pass in serveIntercepted, goproxy's one request hook, whose
//     exchange ends when goproxy closes the response body it sent
//     (finishing): goproxy writes that body after the hook returns.
//  3. decide.go: judge, the one decision function (the client's zone
//     profile decides on the host and full URL); refuse gives a refusal
//     its reference; upstreamFailed says what a failed origin means.
//  4. page.go: the French pages (block, error) and the refusal
//     pseudo-categories; a block page's record is made durable before the
//     page leaves (journalRefusal), so its reference always exists.
//  5. relay.go: the one engine for plain HTTP and WebSocket: scrubbing,
//     the round trip (originpool.go or the transport), the answer copied back
//     and counted; an upgrade becomes a splice.
//  6. originpool.go: the relay's own kept connections to plain-HTTP
//     origins, for a GET or HEAD without a body (fetch): written and
//     read on the handler's goroutine, keyed by the pinned address and
//     port, the destination checked for the device before a kept
//     connection is used; everything else goes through the transport.
//  7. upstream.go: the transport and its dials; every dial is checked
//     again (dialAddr, checkDest), so what is dialed is what was checked.
//  8. destination.go: where a request may go: names resolved through the
//     edge's DNS filter for the device (pickDest, destinationOK), the
//     proxy itself, loopback, link-local, multicast, the gateway's and the
//     school's addresses refused unless a flow allows them (destAllowed,
//     egressAllowed).
//  9. tunnel.go: the splice of CONNECT tunnels and spliced TLS, with an
//     idle timeout.
//  10. record.go: the exchange, and finish, which counts it and writes its
//     navigation record once; a connection's own record (recordConn) is
//     written when it closes.
package httpproxy
