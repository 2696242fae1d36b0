package httpproxy

import (
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// relay is the relay stage of a plain-HTTP request (explicit and
// transparent entries), the proxy's one request engine for them: the
// request, scrubbed, goes to the origin (a GET or HEAD without a body
// over the proxy's own kept connections, fetch; any other through the
// transport), and the answer back to the client, counted into x. A WebSocket
// upgrade becomes a splice of the two connections.
//
// It returns an error only when nothing was sent to the client (the
// origin could not be reached or did not answer): the front handler then
// answers a clean page. It costs no more than it must on every request:
// response headers are handed over, not copied value by value, and the
// origin's Content-Length is kept (a body of known length is not turned
// into a chunked one).
func (p *Proxy) relay(w http.ResponseWriter, r *http.Request, x *exchange) error {
	prepareUpstream(r, x)
	var resp *http.Response
	var err error
	if pooled(r, x) {
		resp, err = p.fetch(r, x.dest)
	} else {
		resp, err = p.tr.RoundTrip(r)
	}
	x.upstreamLatency = p.now().Sub(x.start)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	x.status = resp.StatusCode
	if resp.StatusCode == http.StatusSwitchingProtocols {
		p.relayUpgrade(w, x, resp)
		return nil
	}
	scrubResponse(resp.Header)

	h := w.Header()
	clear(h)
	for k, vs := range resp.Header {
		h[k] = vs
	}
	var announced []string
	if len(resp.Trailer) > 0 {
		// Trailers need chunked framing: announce them, drop the length.
		delete(h, "Content-Length")
		for k := range resp.Trailer {
			announced = append(announced, k)
		}
		h["Trailer"] = []string{strings.Join(announced, ", ")}
	}
	w.WriteHeader(resp.StatusCode)

	var dst io.Writer = writerOnly{w}
	if resp.ContentLength < 0 || strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		// A body of unknown length may be a stream (server-sent events,
		// long polling): each piece goes out as it comes.
		dst = flushWriter{w}
	}
	buf := copyBuffers.Get().(*[]byte)
	n, _ := io.CopyBuffer(dst, resp.Body, *buf)
	copyBuffers.Put(buf)
	x.toClient.Add(n)
	// Trailer values arrive with the end of the body; the ones the origin
	// did not announce go out under net/http's trailer prefix.
	for k, vs := range resp.Trailer {
		if !slices.Contains(announced, k) {
			k = http.TrailerPrefix + k
		}
		h[k] = vs
	}
	return nil
}

// prepareUpstream readies a request that was judged and checked for its
// origin: hop-by-hop headers and client addresses never go upstream, and
// the body's bytes are counted into x.
func prepareUpstream(r *http.Request, x *exchange) {
	ws := isWebSocket(r.Header)
	scrubRequest(r.Header)
	r.RequestURI = ""
	delete(r.Header, "Proxy-Authenticate")
	if !ws {
		// The server already turned Connection into r.Close; a WebSocket
		// handshake needs its "Connection: Upgrade".
		delete(r.Header, "Connection")
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, n: &x.toOrigin}
	}
}

// relayUpgrade answers a "101 Switching Protocols" (a WebSocket) and then
// splices the client's connection and the origin's until either side
// ends.
func (p *Proxy) relayUpgrade(w http.ResponseWriter, x *exchange, resp *http.Response) {
	up, ok := resp.Body.(io.ReadWriteCloser)
	hj, canHijack := w.(http.Hijacker)
	if !ok || !canHijack {
		x.outcome = outcomeError
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		x.outcome = outcomeError
		return
	}
	defer nc.Close()
	resp.Body = nil // only the head: the body is the spliced stream
	if err := resp.Write(brw); err != nil || brw.Flush() != nil {
		x.outcome = outcomeError
		return
	}
	// The client may have sent its first frame right behind the upgrade
	// request: the server's reader holds it.
	var fromClient io.Reader = nc
	if n := brw.Reader.Buffered(); n > 0 {
		fromClient = io.MultiReader(io.LimitReader(brw.Reader, int64(n)), nc)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, _ := io.Copy(up, fromClient)
		x.toOrigin.Add(n)
		// The client is done: end the origin's side too.
		up.Close()
	}()
	n, _ := io.Copy(nc, up)
	x.toClient.Add(n)
	nc.Close()
	up.Close()
	<-done
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

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
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
