package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/demo"
	"vigie/journal"
	"vigie/proxy/generation"
)

// BenchmarkExplicitKeepAlive is the explicit proxy's plain-HTTP path as
// bench/http drives it: absolute-form GETs of a 1 KiB body on one
// keep-alive client connection, the full test policy, journal records
// built (and discarded). ns/op counts the client and the origin too (one
// process): compare allocs/op, and ns/op only between runs of one machine.
func BenchmarkExplicitKeepAlive(b *testing.B) {
	body := bytes.Repeat([]byte("v"), 1<<10)
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer o.Close()
	var cur generation.Current
	cur.Store(&generation.Generation{Rules: testRuleset(b), Serial: 1, Applied: time.Now()})
	p, err := New(Config{UAI: demo.UAI, AllowDestinations: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, Deps{Generation: &cur, Journal: journal.Discard{}, Registry: prometheus.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go p.ServeExplicit(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	host := o.Listener.Addr().String()
	req := []byte("GET http://" + host + "/1k HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(c)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != int64(len(body)) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}
