package httpproxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every request of a keep-alive connection is judged and answered, on the
// transparent and the explicit entries: a blocked second request gets its
// 403 page on the same connection.
func TestKeepAliveEveryRequestAnswered(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	op := port(o.Listener.Addr().String())
	e.setOrig(o.Listener.Addr().String())
	for _, tc := range []struct {
		name, addr, first, second string
	}{
		{"transparent", e.thttp, "GET /ok HTTP/1.1\r\nHost: site.test\r\n\r\n", "GET / HTTP/1.1\r\nHost: pornhub.com\r\n\r\n"},
		{"explicit", e.explicit, "GET http://site.test:" + op + "/ok HTTP/1.1\r\nHost: site.test:" + op + "\r\n\r\n", "GET http://pornhub.com/ HTTP/1.1\r\nHost: pornhub.com\r\n\r\n"},
		{"transparent, blocked first", e.thttp, "GET / HTTP/1.1\r\nHost: pornhub.com\r\n\r\n", "GET / HTTP/1.1\r\nHost: bloque.test\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resps := rawHTTP(t, tc.addr, tc.first, tc.second, tc.first)
			if len(resps) != 3 {
				t.Fatalf("%d responses", len(resps))
			}
			if b := bodyOf(resps[1]); resps[1].StatusCode != 403 || !strings.Contains(b, "Accès refusé") {
				t.Fatalf("second request: %d %q", resps[1].StatusCode, b)
			}
		})
	}
}

// Pipelined: the client sends its requests without waiting for the
// answers (as some clients and tools do); each still gets its own.
func TestKeepAlivePipelined(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	e.setOrig(o.Listener.Addr().String())
	reqs := "GET /ok HTTP/1.1\r\nHost: site.test\r\n\r\n" +
		"GET / HTTP/1.1\r\nHost: pornhub.com\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: pornhub.com\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /ok HTTP/1.1\r\nHost: site.test\r\n\r\n"
	c, err := net.Dial("tcp", e.thttp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, reqs)
	br := bufio.NewReader(c)
	for i, want := range []int{200, 403, 403, 200} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("answer %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}
