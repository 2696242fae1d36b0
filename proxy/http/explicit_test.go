package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/journal"
)

func TestExplicitHTTP(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	op := port(o.Listener.Addr().String())
	tests := []struct {
		name       string
		url        string
		status     int
		bodyHas    []string
		verdict    string
		category   string
		wantRef    bool
		recordHost string
	}{
		{name: "allowed", url: "http://site.test:" + op + "/ok", status: 200, bodyHas: []string{"bonjour site.test"}, verdict: "allow", recordHost: "site.test:" + op},
		{name: "allowed by IP", url: "http://127.0.0.1:" + op + "/ok", status: 200, verdict: "allow", recordHost: "127.0.0.1:" + op},
		{name: "adult domain", url: "http://pornhub.com/", status: 403, verdict: "block", category: "adult", wantRef: true, recordHost: "pornhub.com",
			bodyHas: []string{"Accès refusé", "pornhub.com", "Collège Jean Monnet", "Secrétariat du collège", "Adulte"}},
		{name: "subdomain of a blocked domain", url: "http://www.pornhub.com/x", status: 403, verdict: "block", category: "adult", wantRef: true, recordHost: "www.pornhub.com"},
		{name: "académie list", url: "http://bloque.test:" + op + "/ok", status: 403, verdict: "block", category: "academie_bloque", wantRef: true, recordHost: "bloque.test:" + op,
			bodyHas: []string{"Bloqué par l&#39;académie"}},
		// URL prefixes are tested through the transparent listener, where
		// the Host has no port (rules keep a non-default port in URLs).
		{name: "whitelisted exception", url: "http://eduscol.education.fr/", status: 502, verdict: "allow", category: "academie_autorise", recordHost: "eduscol.education.fr"},
	}
	c := e.client("", nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			for _, s := range tc.bodyHas {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			if tc.status == 403 || tc.status == 502 {
				if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("content type %q", ct)
				}
			}
			r := e.lastNav(tc.recordHost)
			if r.Verdict != tc.verdict || r.Category != tc.category || r.Status != tc.status || r.Method != "GET" || r.Proto != "http" {
				t.Errorf("record %+v", r)
			}
			if !strings.HasPrefix(r.URL, "http://"+tc.recordHost) {
				t.Errorf("record URL %q", r.URL)
			}
			if r.Client.Addr().String() != "127.0.0.1" || r.UAI != "0671234X" {
				t.Errorf("record client %v uai %q", r.Client, r.UAI)
			}
			if tc.wantRef != (r.Reference != "") {
				t.Errorf("reference %q", r.Reference)
			}
			if tc.wantRef && !strings.Contains(string(body), r.Reference) {
				t.Errorf("page does not show the journal's reference %s", r.Reference)
			}
			if tc.status == 200 && r.BytesIn != int64(len(body)) {
				t.Errorf("record bytes in %d, body %d", r.BytesIn, len(body))
			}
		})
	}
	if n := testutil.ToFloat64(e.p.m.requests[entryExplicit][outcomeBlock]); n != 3 {
		t.Errorf("vigie_http_requests_total{explicit,block} = %v, want 3", n)
	}
	// The same refusals, by category (the dashboard's "blocked by
	// category" panel reads this).
	if n := sumCounterVec(e.p.m.blocked); n != 3 {
		t.Errorf("sum of vigie_http_blocked_total = %v, want 3", n)
	}
	if n := testutil.ToFloat64(e.p.m.requests[entryExplicit][outcomeError]); n != 1 {
		t.Errorf("vigie_http_requests_total{explicit,error} = %v, want 1", n)
	}
	// Every connection closed leaves a Connexions record.
	if recs := e.records(journal.Connexions, len(tests)); len(recs) < len(tests) {
		t.Errorf("%d connection records for %d connections", len(recs), len(tests))
	}
}

func TestExplicitStreamsLargeBodies(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	base := "http://site.test:" + port(o.Listener.Addr().String())
	c := e.client("", nil)

	t.Run("download 64 MiB chunked", func(t *testing.T) {
		const n = 64 << 20
		resp, err := c.Get(base + fmt.Sprintf("/big?n=%d", n))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ContentLength != -1 {
			t.Errorf("content length %d: the body was not streamed", resp.ContentLength)
		}
		got, err := io.Copy(io.Discard, resp.Body)
		if err != nil || got != n {
			t.Fatalf("read %d bytes, err %v", got, err)
		}
	})
	t.Run("upload 32 MiB with 100-continue", func(t *testing.T) {
		const n = 32 << 20
		data := bytes.Repeat([]byte("vigie"), n/5)
		req, _ := http.NewRequest("POST", base+"/upload", bytes.NewReader(data))
		req.Header.Set("Expect", "100-continue")
		tr := c.Transport.(*http.Transport).Clone()
		tr.ExpectContinueTimeout = 5 * time.Second
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(data)
		if want := fmt.Sprintf("%d %s", len(data), hex.EncodeToString(sum[:])); string(body) != want {
			t.Fatalf("origin saw %q, want %q", body, want)
		}
		if r := e.lastNav("site.test:" + port(o.Listener.Addr().String())); r.Method != "POST" || r.BytesOut != int64(len(data)) {
			t.Errorf("record method %s bytes out %d", r.Method, r.BytesOut)
		}
	})
}

func TestExplicitHeaders(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	req, _ := http.NewRequest("GET", "http://site.test:"+port(o.Listener.Addr().String())+"/headers", nil)
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "1")
	req.Header.Set("Keep-Alive", "300")
	req.Header.Set("X-Forwarded-For", "10.10.0.5")
	req.Header.Set("Forwarded", "for=10.10.0.5")
	req.Header.Set("X-Real-Ip", "10.10.0.5")
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("X-Kept", "yes")
	resp, err := e.client("", nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	seen := string(body)
	for _, gone := range []string{"X-Secret", "Keep-Alive", "X-Forwarded-For", "Forwarded", "X-Real-Ip", "10.10.0.5", "Proxy-Connection"} {
		if strings.Contains(seen, gone) {
			t.Errorf("origin received %q:\n%s", gone, seen)
		}
	}
	for _, kept := range []string{"X-Kept: yes", "Accept-Encoding: gzip"} {
		if !strings.Contains(seen, kept) {
			t.Errorf("origin did not receive %q:\n%s", kept, seen)
		}
	}
	if resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers reached the client: %v", resp.Header)
	}
	if resp.Header.Get("X-End") != "kept" {
		t.Errorf("end-to-end response header lost: %v", resp.Header)
	}
}

func TestExplicitErrorsAreCleanPages(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := port(dead.Addr().String())
	dead.Close()
	tests := []struct {
		name   string
		url    string
		status int
		title  string
	}{
		{"origin down", "http://127.0.0.1:" + deadPort + "/", 502, "Site injoignable"},
		{"unknown name", "http://inconnu.test/", 502, "Site injoignable"},
		{"slow origin", "http://site.test:" + port(o.Listener.Addr().String()) + "/slow", 504, "Le site ne répond pas"},
		{"the proxy itself", "http://" + e.explicit + "/", 508, "Boucle détectée"},
		{"another listener of the proxy", "http://" + e.thttps + "/", 508, "Boucle détectée"},
	}
	c := e.client("", nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.title) {
				t.Fatalf("status %d, body:\n%s", resp.StatusCode, body)
			}
			for _, raw := range []string{"dial tcp", "error read response", "http: ", "lookup", "no such host"} {
				if strings.Contains(string(body), raw) {
					t.Errorf("page leaks raw error text %q", raw)
				}
			}
		})
	}
}

func TestExplicitConnect(t *testing.T) {
	e := newEnv(t)
	o := newTLSOrigin(t)
	roots := o.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	op := port(o.Listener.Addr().String())

	t.Run("allowed tunnel", func(t *testing.T) {
		resp, err := e.client("", roots).Get("https://example.com:" + op + "/ok")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "bonjour example.com:"+op {
			t.Fatalf("body %q", body)
		}
		r := e.lastNav("example.com")
		if r.Proto != "connect" || r.Method != "CONNECT" || r.Verdict != "allow" || r.Status != 200 || r.BytesIn == 0 || r.BytesOut == 0 || r.Dest.Port() == 0 {
			t.Errorf("record %+v", r)
		}
	})
	t.Run("blocked tunnel gets 403 with the page", func(t *testing.T) {
		c, err := net.Dial("tcp", e.explicit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "CONNECT pornhub.com:443 HTTP/1.1\r\nHost: pornhub.com:443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "CONNECT"})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 403 || !strings.Contains(string(body), "Accès refusé") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s %v\n%s", resp.Status, resp.Header, body)
		}
		if r := e.lastNav("pornhub.com"); r.Verdict != "block" || r.Category != "adult" || !strings.Contains(string(body), r.Reference) {
			t.Errorf("record %+v", r)
		}
	})
	// The client in zone sans_sni (127.0.0.3) may open tunnels to IP
	// addresses and carry other protocols than TLS in them.
	t.Run("connect to the proxy itself", func(t *testing.T) {
		c := dialFrom(t, e.explicit, "127.0.0.3")
		defer c.Close()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", e.explicit, e.explicit)
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "CONNECT"})
		if err != nil || resp.StatusCode != 508 {
			t.Fatalf("resp %v err %v", resp, err)
		}
	})
	t.Run("bytes sent with the CONNECT are not lost", func(t *testing.T) {
		echo := echoServer(t)
		c := dialFrom(t, e.explicit, "127.0.0.3")
		defer c.Close()
		// One write: the CONNECT and the first tunnel bytes together.
		fmt.Fprintf(c, "CONNECT site.test:%s HTTP/1.1\r\nHost: site.test\r\n\r\nPING\n", port(echo))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("resp %v err %v", resp, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if line != "PING\n" {
			t.Fatalf("echo %q err %v", line, err)
		}
	})
	t.Run("idle tunnel is closed", func(t *testing.T) {
		echo := echoServer(t)
		c := dialFrom(t, e.explicit, "127.0.0.3")
		defer c.Close()
		fmt.Fprintf(c, "CONNECT site.test:%s HTTP/1.1\r\nHost: site.test\r\n\r\n", port(echo))
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"}); err != nil || resp.StatusCode != 200 {
			t.Fatalf("resp %v err %v", resp, err)
		}
		// TunnelIdle is 2 s here: well before 15 s the proxy ends it.
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("idle tunnel still open: %v", err)
		}
	})
}

// dialFrom connects to addr from a loopback source address.
func dialFrom(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoServer echoes lines on loopback until the test ends.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestExplicitWebSocket(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	host := "site.test:" + port(o.Listener.Addr().String())
	c, err := net.Dial("tcp", e.explicit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	wsHandshake(t, c, br, "http://"+host+"/ws", host)
	wsEcho(t, c, br, "bonjour")
	wsEcho(t, c, br, strings.Repeat("é", 50))
	c.Close()
	if r := e.lastNav(host); r.Status != 101 || r.Verdict != "allow" {
		t.Errorf("record %+v", r)
	}
}

func TestExplicitBadInput(t *testing.T) {
	e := newEnv(t, func(c *Config, d *Deps) { c.Timeouts.HeaderRead = 500 * time.Millisecond })
	o := newOrigin(t)
	okURL := "http://site.test:" + port(o.Listener.Addr().String()) + "/ok"

	raw := func(t *testing.T, req string) (*http.Response, string) {
		t.Helper()
		c, err := net.Dial("tcp", e.explicit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	t.Run("malformed request line", func(t *testing.T) {
		if resp, _ := raw(t, "GARBAGE\r\n\r\n"); resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("bad header", func(t *testing.T) {
		if resp, _ := raw(t, "GET "+okURL+" HTTP/1.1\r\nHost x\r\n\r\n"); resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("relative request to the proxy", func(t *testing.T) {
		resp, body := raw(t, "GET / HTTP/1.1\r\nHost: "+e.explicit+"\r\n\r\n")
		if resp.StatusCode != 400 || !strings.Contains(body, "Filtrage Vigie") {
			t.Fatalf("status %d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("HTTP/1.0 client", func(t *testing.T) {
		resp, body := raw(t, "GET "+okURL+" HTTP/1.0\r\n\r\n")
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "bonjour") {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	})
	t.Run("header of 60 KiB passes", func(t *testing.T) {
		resp, _ := raw(t, "GET "+okURL+" HTTP/1.1\r\nHost: site.test\r\nX-Big: "+strings.Repeat("a", 60<<10)+"\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("header over 64 KiB refused", func(t *testing.T) {
		resp, _ := raw(t, "GET "+okURL+" HTTP/1.1\r\nHost: site.test\r\nX-Big: "+strings.Repeat("a", 70<<10)+"\r\n\r\n")
		if resp.StatusCode != 431 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("slowloris is cut", func(t *testing.T) {
		c, err := net.Dial("tcp", e.explicit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET "+okURL+" HTTP/1.1\r\nHost: site.test\r\n")
		start := time.Now()
		var werr error
		for i := 0; i < 100 && werr == nil; i++ {
			_, werr = io.WriteString(c, "X-A: b\r\n")
			time.Sleep(100 * time.Millisecond)
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				werr = err
			}
		}
		if werr == nil {
			t.Fatal("a client dribbling its head for 10 s was never cut")
		}
		t.Logf("cut after %v: %v", time.Since(start).Round(100*time.Millisecond), werr)
	})
	// The proxy still serves after all that.
	resp, err := e.client("", nil).Get(okURL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("proxy broken after bad input: %v %v", resp, err)
	}
	resp.Body.Close()
}

func sumCounterVec(v *prometheus.CounterVec) float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { v.Collect(ch); close(ch) }()
	total := 0.0
	for m := range ch {
		var pb dto.Metric
		m.Write(&pb)
		total += pb.GetCounter().GetValue()
	}
	return total
}

// TestBlockedCategoriesStartAtZero: after the first request of a policy
// generation, every category of the policy and every refusal reason of the
// proxy has a blocked-request series, at zero until something is refused.
func TestBlockedCategoriesStartAtZero(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	resp, err := e.client("", nil).Get("http://site.test:" + port(o.Listener.Addr().String()) + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	want := []string{"none"}
	for c := range pseudoCategories {
		want = append(want, c)
	}
	for _, c := range e.p.gen.Load().Rules.Categories() {
		want = append(want, c.ID)
	}
	if len(want) < 5 {
		t.Fatalf("only %d categories to check: %v", len(want), want)
	}
	if n := testutil.CollectAndCount(e.p.m.blocked); n != len(want) {
		t.Errorf("vigie_http_blocked_total has %d series, want %d", n, len(want))
	}
	for _, c := range want {
		if v := testutil.ToFloat64(e.p.m.blocked.WithLabelValues(c)); v != 0 {
			t.Errorf("vigie_http_blocked_total{category=%q} = %v, want 0", c, v)
		}
	}
}
