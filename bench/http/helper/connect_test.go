package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// connectProxy is a minimal CONNECT proxy: it answers 403 when refuse
// says so for the host asked, otherwise splices to where dialTo says.
func connectProxy(t *testing.T, dialTo string, refuse bool) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || refuse {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", dialTo)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(up, c); up.Close() }()
		io.Copy(c, up)
		c.Close()
	}))
}

// TestRunConnect drives a real TLS origin through a real CONNECT proxy:
// every tunnel and every keep-alive GET in it is counted once, with its
// bytes; refused tunnels are errors and no request; the count bounds the
// run before the time does.
func TestRunConnect(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/1k" {
			http.NotFound(w, r)
			return
		}
		w.Write(make([]byte, 1024))
	}))
	defer origin.Close()

	tests := []struct {
		name                       string
		refuse                     bool
		tunnels, perTunnel, conns  int
		wantOK, wantReqs, wantErrs int64
		path                       string
	}{
		{name: "one GET per tunnel", tunnels: 12, perTunnel: 1, conns: 4, wantOK: 12, wantReqs: 12},
		{name: "keep-alive", tunnels: 7, perTunnel: 5, conns: 3, wantOK: 7, wantReqs: 35},
		{name: "refused", refuse: true, tunnels: 5, perTunnel: 2, conns: 2, wantErrs: 5},
		{name: "not found inside", path: "/nope", tunnels: 3, perTunnel: 2, conns: 1, wantErrs: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxy := connectProxy(t, origin.Listener.Addr().String(), tc.refuse)
			defer proxy.Close()
			path := tc.path
			if path == "" {
				path = "/1k"
			}
			start := time.Now()
			res, err := runConnect(connectOptions{proxy: proxy.Listener.Addr().String(), host: "localhost:443",
				path: path, conns: tc.conns, tunnels: tc.tunnels, perTunnel: tc.perTunnel, dur: time.Minute, timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > 50*time.Second {
				t.Fatalf("the tunnel count did not end the run")
			}
			if res.Tunnels != int64(tc.tunnels) || res.TunnelsOK != tc.wantOK || res.Requests != tc.wantReqs || res.Errors != tc.wantErrs {
				t.Fatalf("tunnels %d ok %d requests %d errors %d (first %q), want %d %d %d %d",
					res.Tunnels, res.TunnelsOK, res.Requests, res.Errors, res.FirstError, tc.tunnels, tc.wantOK, tc.wantReqs, tc.wantErrs)
			}
			if res.Bytes != 1024*tc.wantReqs {
				t.Fatalf("bytes %d, want %d", res.Bytes, 1024*tc.wantReqs)
			}
			if tc.wantErrs > 0 && res.FirstError == "" {
				t.Fatal("errors without the first one said")
			}
			if tc.refuse && !strings.Contains(res.FirstError, "403") {
				t.Fatalf("first error %q does not name the refusal", res.FirstError)
			}
			if tc.wantReqs > 0 {
				if res.RequestsPerSec <= 0 || res.TunnelsPerSec <= 0 || res.ReqP50 <= 0 || res.ReqP99 < res.ReqP50 || res.SetupP99 < res.SetupP50 {
					t.Fatalf("rates or percentiles wrong: %+v", res)
				}
				if got := res.RequestsPerSec / res.TunnelsPerSec; got < float64(tc.perTunnel)-0.01 || got > float64(tc.perTunnel)+0.01 {
					t.Fatalf("requests/tunnels = %.2f, want %d", got, tc.perTunnel)
				}
			}
		})
	}
}

// TestRunConnectTime: the duration ends a run whose count would not.
func TestRunConnectTime(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 1024)) }))
	defer origin.Close()
	proxy := connectProxy(t, origin.Listener.Addr().String(), false)
	defer proxy.Close()
	start := time.Now()
	res, err := runConnect(connectOptions{proxy: proxy.Listener.Addr().String(), host: "localhost:443",
		path: "/1k", conns: 2, tunnels: 1 << 30, perTunnel: 2, dur: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 20*time.Second || res.Tunnels == 0 || res.Errors != 0 {
		t.Fatalf("after %v: %+v", time.Since(start), res)
	}
}

func TestPct(t *testing.T) {
	var v []time.Duration
	for i := 100; i >= 1; i-- {
		v = append(v, time.Duration(i))
	}
	if p50, p99 := pct(v, 0.5), pct(v, 0.99); p50 != 50 || p99 != 99 {
		t.Fatalf("p50 %d p99 %d", p50, p99)
	}
	if pct(nil, 0.99) != 0 {
		t.Fatal("empty")
	}
}
