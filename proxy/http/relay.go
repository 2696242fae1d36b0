package httpproxy

import (
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/elazarl/goproxy"
)

// relayHTTP carries one plain-HTTP request of the explicit and transparent
// entry points through the same stages as goproxy's handler (onRequest,
// roundTrip, onResponse), which stay the one request chain; it differs
// from goproxy's handleHttp in what costs CPU on every request: no log
// arguments formatted for a disabled logger (two URL.String per request),
// response headers handed over instead of copied value by value, and the
// origin's Content-Length kept (goproxy drops it whenever a hook wraps the
// body, which turns every response over 2 KiB into a chunked one).
//
// WebSocket handshakes go through goproxy, which relays the upgraded
// connection; so do intercepted tunnels (goproxy reads their requests).
func (p *Proxy) relayHTTP(w http.ResponseWriter, r *http.Request) {
	if isWebSocket(r.Header) {
		p.gp.ServeHTTP(w, r)
		return
	}
	ctx := &goproxy.ProxyCtx{Req: r, Proxy: p.gp}
	req, resp := p.onRequest(r, ctx)
	if resp == nil {
		// onRequest scrubbed the hop-by-hop headers; what goproxy's
		// RemoveProxyHeaders does besides (Connection, which the server
		// already turned into req.Close).
		req.RequestURI = ""
		delete(req.Header, "Proxy-Authenticate")
		delete(req.Header, "Connection")
		resp, _ = p.roundTrip(req, ctx) // never an error: pages instead
	}
	resp = p.onResponse(resp, ctx)
	defer resp.Body.Close()

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

	var dst io.Writer = w
	if resp.ContentLength < 0 || strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		// A body of unknown length may be a stream (server-sent events,
		// long polling): each piece goes out as it comes.
		dst = flushWriter{w}
	}
	io.Copy(dst, resp.Body)
	// Trailer values arrive with the end of the body; the ones the origin
	// did not announce go out under net/http's trailer prefix.
	for k, vs := range resp.Trailer {
		if !slices.Contains(announced, k) {
			k = http.TrailerPrefix + k
		}
		h[k] = vs
	}
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
