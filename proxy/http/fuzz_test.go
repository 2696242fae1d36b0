package httpproxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/demo"
	"vigie/journal"
	"vigie/proxy/generation"
)

// panicWatch fails the fuzz run when net/http reports a recovered panic:
// the server would otherwise hide a crash of our handlers.
type panicWatch struct {
	slog.Handler
	mu     sync.Mutex
	panics []string
}

func (h *panicWatch) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.mu.Lock()
		h.panics = append(h.panics, r.Message)
		h.mu.Unlock()
	}
	return nil
}
func (h *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicWatch) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *panicWatch) WithGroup(string) slog.Handler            { return h }

// FuzzHTTPHead sends arbitrary bytes as a client's request head (and
// body) to the explicit or the transparent HTTP listener. The proxy must
// answer or close within a bound, never panic, and never reach the
// network (the dialer is cut off).
func FuzzHTTPHead(f *testing.F) {
	seeds := []string{
		"GET http://site.test/ok HTTP/1.1\r\nHost: site.test\r\n\r\n",
		"GET http://pornhub.com/ HTTP/1.1\r\nHost: pornhub.com\r\n\r\n",
		"CONNECT pornhub.com:443 HTTP/1.1\r\nHost: pornhub.com:443\r\n\r\n",
		"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n",
		"POST http://site.test/upload HTTP/1.1\r\nHost: site.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
		"POST http://site.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: site.test\r\nConnection: Upgrade, X-A\r\nUpgrade: websocket\r\n\r\n",
		"GET http://[::1]:80/ HTTP/1.1\r\n\r\n",
		"GET http://xn--e1afmkfd.xn--p1ai/%zz?a=%00 HTTP/1.1\r\nHost: \r\n\r\n",
	}
	for i, s := range seeds {
		f.Add(byte(i%2), []byte(s))
	}
	watch := &panicWatch{}
	var cur generation.Current
	cur.Store(&generation.Generation{Rules: testRuleset(f), Serial: 1})
	p, err := New(Config{UAI: demo.UAI, Timeouts: Timeouts{HeaderRead: time.Second, Dial: time.Second, TunnelIdle: time.Second}},
		Deps{
			Generation: &cur, Journal: &journal.Memory{}, Registry: prometheus.NewRegistry(), Log: slog.New(watch),
			Resolve: func(context.Context, netip.Addr, string) ([]netip.Addr, error) {
				return []netip.Addr{netip.MustParseAddr("203.0.113.10")}, nil
			},
			Dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("fuzz: no network")
			},
			OriginalDst: func(net.Conn) (netip.AddrPort, error) {
				return netip.MustParseAddrPort("203.0.113.10:80"), nil
			},
		})
	if err != nil {
		f.Fatal(err)
	}
	var addrs [2]string
	for i, serve := range []func(net.Listener) error{p.ServeExplicit, p.ServeTransparentHTTP} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.Fatal(err)
		}
		go serve(ln)
		addrs[i] = ln.Addr().String()
	}
	f.Cleanup(func() { p.Shutdown(context.Background()) })
	f.Fuzz(func(t *testing.T, which byte, in []byte) {
		c, err := net.Dial("tcp", addrs[which%2])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		deadline := time.Now().Add(10 * time.Second)
		c.SetDeadline(deadline)
		go func() {
			c.Write(in)
			c.(*net.TCPConn).CloseWrite()
		}()
		if _, err := io.Copy(io.Discard, c); err != nil && time.Now().After(deadline) {
			t.Fatalf("no answer and no close within 10 s: %v", err)
		}
		watch.mu.Lock()
		defer watch.mu.Unlock()
		if len(watch.panics) > 0 {
			t.Fatalf("handler panicked: %v", watch.panics)
		}
	})
}
