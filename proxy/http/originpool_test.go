package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawOrigin is an origin written byte by byte, to see what the pool does
// with each connection: answer is called for every request read, with the
// connection's number and the request's on that connection (both from
// 1), and writes the raw answer; it returns
// false to close the connection after it.
type rawOrigin struct {
	addr  string
	conns atomic.Int32
	reqs  atomic.Int32
	mu    sync.Mutex
	heads []string // raw request heads, in order
}

func newRawOrigin(t *testing.T, answer func(conn, req int, r *http.Request, c net.Conn) bool) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(o.conns.Add(1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				// The test's end closes what is left.
				stop := context.AfterFunc(t.Context(), func() { c.Close() })
				defer stop()
				for req := 1; ; req++ {
					// The proxy sends a request only once the previous
					// answer is in: a reader per request loses nothing.
					var head strings.Builder
					r, err := http.ReadRequest(bufio.NewReader(io.TeeReader(c, &head)))
					if err != nil {
						return
					}
					o.reqs.Add(1)
					o.mu.Lock()
					o.heads = append(o.heads, head.String())
					o.mu.Unlock()
					if !answer(n, req, r, c) {
						return
					}
				}
			}()
		}
	}()
	return o
}

func (o *rawOrigin) url(path string) string {
	return "http://site.test:" + port(o.addr) + path
}

// get sends one absolute-form request through the explicit proxy on a
// connection of its own and returns the answer, its body read.
func (e *env) get(method, url string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	host := strings.TrimPrefix(url, "http://")
	host = host[:strings.IndexByte(host, '/')]
	req := method + " " + url + " HTTP/1.1\r\nHost: " + host + "\r\n" + strings.Join(hdr, "") + "\r\n"
	resps := rawHTTP(e.t, e.explicit, req)
	return resps[0], bodyOf(resps[0])
}

// TestOriginPool is the proxy's own keep-alive to plain-HTTP origins: when
// a connection is used again, when it is not, what a retry may do, and
// that answers come through whole.
func TestOriginPool(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	keep := func(answer string) func(int, int, *http.Request, net.Conn) bool {
		return func(_, _ int, _ *http.Request, c net.Conn) bool { io.WriteString(c, answer); return true }
	}
	tests := []struct {
		name   string
		answer func(conn, req int, r *http.Request, c net.Conn) bool
		// reqs are sent in turn, each on a client connection of its own
		// (the pool belongs to the proxy, not to a client connection).
		reqs                    []string
		method                  string
		wantStatus              []int
		wantBody                []string
		wantConns, wantOriginRq int32
	}{
		{name: "kept and used again", answer: keep(ok),
			wantStatus: []int{200, 200, 200}, wantBody: []string{"ok", "ok", "ok"}, wantConns: 1, wantOriginRq: 3},
		{name: "chunked body, then used again",
			answer:     keep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbon\r\n4\r\njour\r\n0\r\n\r\n"),
			wantStatus: []int{200, 200}, wantBody: []string{"bonjour", "bonjour"}, wantConns: 1, wantOriginRq: 2},
		{name: "body of unknown length: not used again",
			answer: func(_, _ int, _ *http.Request, c net.Conn) bool {
				io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\njusqu'à la fin")
				return false
			},
			wantStatus: []int{200, 200}, wantBody: []string{"jusqu'à la fin", "jusqu'à la fin"}, wantConns: 2, wantOriginRq: 2},
		{name: "Connection: close answer: not used again, even left open",
			answer:     keep("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
			wantStatus: []int{200, 200}, wantBody: []string{"ok", "ok"}, wantConns: 2, wantOriginRq: 2},
		{name: "informational answers skipped",
			answer:     keep("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n" + ok),
			wantStatus: []int{200, 200}, wantBody: []string{"ok", "ok"}, wantConns: 1, wantOriginRq: 2},
		{name: "too many informational answers",
			answer:     keep(strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 6) + ok),
			wantStatus: []int{502}, wantConns: 1, wantOriginRq: 1},
		{name: "origin closed a kept connection: retried once on a new one",
			answer: func(_, _ int, _ *http.Request, c net.Conn) bool {
				io.WriteString(c, ok) // and closes, without saying so
				return false
			},
			wantStatus: []int{200, 200, 200}, wantBody: []string{"ok", "ok", "ok"}, wantConns: 3, wantOriginRq: 3},
		{name: "answer cut after its first bytes: not retried",
			answer: func(_, req int, _ *http.Request, c net.Conn) bool {
				if req == 1 {
					io.WriteString(c, ok)
					return true
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-")
				return false
			},
			wantStatus: []int{200, 502}, wantBody: []string{"ok"}, wantConns: 1, wantOriginRq: 2},
		{name: "new connection closed unanswered: not retried",
			answer:     func(int, int, *http.Request, net.Conn) bool { return false },
			wantStatus: []int{502}, wantConns: 1, wantOriginRq: 1},
		{name: "response head over 256 KiB",
			answer:     keep("HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 300<<10) + "\r\nContent-Length: 2\r\n\r\nok"),
			wantStatus: []int{502}, wantConns: 1, wantOriginRq: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			o := newRawOrigin(t, tc.answer)
			for i, want := range tc.wantStatus {
				resp, body := e.get("GET", o.url("/page"))
				if resp.StatusCode != want {
					t.Fatalf("request %d: status %d, want %d (%q)", i+1, resp.StatusCode, want, body)
				}
				if i < len(tc.wantBody) && body != tc.wantBody[i] {
					t.Fatalf("request %d: body %q, want %q", i+1, body, tc.wantBody[i])
				}
				// Let the origin's close reach the proxy's socket, as an
				// idle connection's would.
				time.Sleep(20 * time.Millisecond)
			}
			if n := o.conns.Load(); n != tc.wantConns {
				t.Errorf("origin saw %d connections, want %d", n, tc.wantConns)
			}
			if n := o.reqs.Load(); n != tc.wantOriginRq {
				t.Errorf("origin saw %d requests, want %d", n, tc.wantOriginRq)
			}
		})
	}
}

// HEAD keeps the origin's Content-Length and expects no body: the
// connection then serves the next request, whose answer is read from the
// right place.
func TestOriginPoolHead(t *testing.T) {
	e := newEnv(t)
	o := newRawOrigin(t, func(_, _ int, r *http.Request, c net.Conn) bool {
		if r.Method == http.MethodHead {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/html\r\n\r\n")
		} else {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsuite")
		}
		return true
	})
	c, err := net.Dial("tcp", e.explicit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	host := "site.test:" + port(o.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "HEAD "+o.url("/page")+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	head, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
	if err != nil {
		t.Fatal(err)
	}
	if head.StatusCode != 200 || head.ContentLength != 1234 {
		t.Fatalf("HEAD: status %d, length %d; want 200 and the origin's 1234", head.StatusCode, head.ContentLength)
	}
	resp, body := e.get("GET", o.url("/suite"))
	if resp.StatusCode != 200 || body != "suite" {
		t.Fatalf("GET after HEAD: %d %q", resp.StatusCode, body)
	}
	if n := o.conns.Load(); n != 1 {
		t.Errorf("origin saw %d connections, want 1: the HEAD's was not used again", n)
	}
}

// Hop-by-hop headers go neither way through the pool, and a Connection
// header that names only such headers does not stop the connection
// from being used again.
func TestOriginPoolHopByHop(t *testing.T) {
	e := newEnv(t)
	o := newRawOrigin(t, func(_, _ int, _ *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-End: kept\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	for range 2 {
		resp, body := e.get("GET", o.url("/page"),
			"Connection: X-Secret, keep-alive\r\n", "X-Secret: 1\r\n", "Proxy-Connection: keep-alive\r\n",
			"Keep-Alive: 300\r\n", "Te: trailers\r\n", "X-Forwarded-For: 10.10.0.5\r\n", "Accept: */*\r\n")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		for _, k := range []string{"X-Hop", "Keep-Alive", "Connection"} {
			if v := resp.Header.Get(k); v != "" && !(k == "Connection" && v == "keep-alive") {
				t.Errorf("answer header %s: %q reached the client", k, v)
			}
		}
		if resp.Header.Get("X-End") != "kept" {
			t.Errorf("X-End dropped: %v", resp.Header)
		}
	}
	o.mu.Lock()
	heads := strings.Join(o.heads, "")
	o.mu.Unlock()
	for _, gone := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Te:", "X-Forwarded-For", "Connection:", "10.10.0.5"} {
		if strings.Contains(heads, gone) {
			t.Errorf("%q reached the origin:\n%s", gone, heads)
		}
	}
	if !strings.Contains(heads, "Accept: */*") {
		t.Errorf("Accept lost:\n%s", heads)
	}
	if n := o.conns.Load(); n != 1 {
		t.Errorf("origin saw %d connections, want 1", n)
	}
}

// A slow origin gets the response-header timeout (504, no retry), and
// its connection is not used again.
func TestOriginPoolHeaderTimeout(t *testing.T) {
	e := newEnv(t) // ResponseHeader: 2s
	o := newRawOrigin(t, func(conn, _ int, _ *http.Request, c net.Conn) bool {
		if conn == 1 {
			<-t.Context().Done() // never answers
			return false
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	start := time.Now()
	resp, _ := e.get("GET", o.url("/lent"))
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d < 1900*time.Millisecond || d > 5*time.Second {
		t.Errorf("answered after %v, want the 2s header timeout", d)
	}
	resp, body := e.get("GET", o.url("/suite"))
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("next request: %d %q", resp.StatusCode, body)
	}
	if n, r := o.conns.Load(), o.reqs.Load(); n != 2 || r != 2 {
		t.Errorf("origin saw %d connections and %d requests, want 2 and 2", n, r)
	}
}

// A client that goes away before its answer is whole: the origin's
// connection, whose body was not read to its end, is closed, not kept.
func TestOriginPoolBodyNotReadToEnd(t *testing.T) {
	e := newEnv(t)
	closed := make(chan struct{})
	o := newRawOrigin(t, func(conn, _ int, _ *http.Request, c net.Conn) bool {
		if conn == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 50))
			// Hold the rest: the proxy must give up when its client does.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("origin: the proxy did not close the connection: %v", err)
			}
			close(closed)
			return false
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	c, err := net.Dial("tcp", e.explicit)
	if err != nil {
		t.Fatal(err)
	}
	host := "site.test:" + port(o.addr)
	io.WriteString(c, "GET "+o.url("/long")+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	c.Close()
	select {
	case <-closed:
	case <-time.After(6 * time.Second):
		t.Fatal("the origin's connection stayed open")
	}
	resp, body := e.get("GET", o.url("/suite"))
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("next request: %d %q", resp.StatusCode, body)
	}
	if n := o.conns.Load(); n != 2 {
		t.Errorf("origin saw %d connections, want 2", n)
	}
}

// Two origins on one address, different ports: each request reaches its
// own, and each origin keeps its one connection.
func TestOriginPoolNeverMixesOrigins(t *testing.T) {
	e := newEnv(t)
	named := func(name string) func(int, int, *http.Request, net.Conn) bool {
		return func(_, _ int, _ *http.Request, c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"+name)
			return true
		}
	}
	a, b := newRawOrigin(t, named("a")), newRawOrigin(t, named("b"))
	for i := range 6 {
		o, want := a, "a"
		if i%2 == 1 {
			o, want = b, "b"
		}
		if _, body := e.get("GET", o.url("/")); body != want {
			t.Fatalf("request %d for %s answered by %q", i, want, body)
		}
	}
	for _, o := range []*rawOrigin{a, b} {
		if n, r := o.conns.Load(), o.reqs.Load(); n != 1 || r != 3 {
			t.Errorf("origin %s: %d connections, %d requests; want 1 and 3", o.addr, n, r)
		}
	}
}

// The destination is checked for the device before a kept connection is
// used: a connection the pool holds to an address the policy forbids to
// this device is never written to.
func TestOriginPoolChecksBeforeReuse(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.AllowDestinations = nil })
	o := newRawOrigin(t, func(_, _ int, _ *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	ap := netip.MustParseAddrPort(o.addr)
	// A connection kept for some device allowed there (a flow, say).
	oc, err := e.p.dialOrigin(context.Background(), ap)
	if err != nil {
		t.Fatal(err)
	}
	e.p.origins.put(oc, e.p.now())

	for _, tc := range []struct{ name, addr, target string }{
		{"explicit", e.explicit, "GET " + o.url("/") + " HTTP/1.1\r\nHost: site.test\r\n\r\n"},
		{"transparent", e.thttp, "GET / HTTP/1.1\r\nHost: site.test\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.setOrig(o.addr)
			resp := rawHTTP(t, tc.addr, tc.target)[0]
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	// And fetch itself, past the front handlers' own checks.
	req, _ := http.NewRequest(http.MethodGet, "http://"+o.addr+"/", nil)
	if _, err := e.p.fetch(req, ap); !errors.Is(err, errForbiddenDest) {
		t.Errorf("fetch to a forbidden destination: %v, want errForbiddenDest", err)
	}
	if r := o.reqs.Load(); r != 0 {
		t.Errorf("the origin received %d requests", r)
	}
	if got := e.p.origins.get(ap, e.p.now()); got != oc {
		t.Error("the kept connection was taken")
	}
	oc.close()
}

// The pool's own bookkeeping: the most recent connection first, at most
// perOrigin per origin and max in all (the least recently kept goes),
// idle ones closed after the timeout, none kept once closed.
func TestOriginPoolBookkeeping(t *testing.T) {
	a, b, c := mustAddrPort("192.0.2.1:80"), mustAddrPort("192.0.2.1:8080"), mustAddrPort("198.51.100.7:80")
	type pipe struct {
		oc   *originConn
		peer net.Conn
	}
	conn := func(ap netip.AddrPort) pipe {
		x, y := net.Pipe()
		return pipe{&originConn{nc: x, dest: ap}, y}
	}
	isClosed := func(p pipe) bool {
		p.peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := p.peer.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	now := time.Now()
	clock := func() time.Time { return now }

	t.Run("most recent first, per origin and port", func(t *testing.T) {
		op := newOriginPool(2, 10, time.Minute, clock)
		defer op.close()
		a1, a2, a3, b1 := conn(a), conn(a), conn(a), conn(b)
		op.put(a1.oc, now)
		op.put(a2.oc, now)
		op.put(a3.oc, now) // over perOrigin: closed
		op.put(b1.oc, now)
		if !isClosed(a3) {
			t.Error("a third connection to one origin was kept")
		}
		if got := op.get(a, now); got != a2.oc {
			t.Error("not the most recent")
		}
		if got := op.get(c, now); got != nil {
			t.Error("a connection for an origin never seen")
		}
		if got := op.get(b, now); got != b1.oc {
			t.Error("the other port's connection")
		}
		if got := op.get(b, now); got != nil {
			t.Error("a second connection for b")
		}
	})
	t.Run("least recently kept evicted at max", func(t *testing.T) {
		op := newOriginPool(5, 2, time.Minute, clock)
		defer op.close()
		x, y, z := conn(a), conn(b), conn(c)
		op.put(x.oc, now)
		op.put(y.oc, now)
		op.put(z.oc, now)
		if !isClosed(x) {
			t.Error("the oldest was not closed")
		}
		if op.get(a, now) != nil || op.get(b, now) != y.oc || op.get(c, now) != z.oc {
			t.Error("wrong connections kept")
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		op := newOriginPool(5, 10, 100*time.Millisecond, time.Now)
		defer op.close()
		x := conn(a)
		op.put(x.oc, time.Now())
		if got := op.get(a, time.Now().Add(time.Second)); got != nil {
			t.Error("an expired connection was handed out")
		}
		y := conn(b)
		op.put(y.oc, time.Now())
		time.Sleep(300 * time.Millisecond)
		if !isClosed(y) {
			t.Error("the sweep did not close an idle connection")
		}
		op.mu.Lock()
		n := op.n
		op.mu.Unlock()
		if n != 0 {
			t.Errorf("%d idle connections counted after the sweep", n)
		}
	})
	t.Run("closed pool keeps nothing", func(t *testing.T) {
		op := newOriginPool(5, 10, time.Minute, clock)
		x, y := conn(a), conn(a)
		op.put(x.oc, now)
		op.close()
		op.put(y.oc, now)
		if !isClosed(x) || !isClosed(y) {
			t.Error("a connection survived the pool's close")
		}
	})
}

// A client's "Connection: close" goes upstream as the Transport sent it,
// and the origin's connection then is not kept.
func TestOriginPoolClientClose(t *testing.T) {
	e := newEnv(t)
	o := newRawOrigin(t, func(_, _ int, r *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	for i := range 2 {
		resp, body := e.get("GET", o.url("/page"), "Connection: close\r\n")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, body)
		}
	}
	o.mu.Lock()
	heads := strings.Join(o.heads, "")
	o.mu.Unlock()
	if strings.Count(heads, "Connection: close\r\n") != 2 {
		t.Errorf("the origin was not told to close:\n%s", heads)
	}
	if n := o.conns.Load(); n != 2 {
		t.Errorf("origin saw %d connections, want 2", n)
	}
}
