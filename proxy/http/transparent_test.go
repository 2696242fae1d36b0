package httpproxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"vigie/journal"
)

// rawHTTP sends reqs on one connection to addr and returns the responses.
func rawHTTP(t *testing.T, addr string, reqs ...string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var out []*http.Response
	for _, r := range reqs {
		io.WriteString(c, r)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %q: %v", r, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
	}
	return out
}

func bodyOf(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestTransparentHTTP(t *testing.T) {
	e := newEnv(t)
	o := newOrigin(t)
	e.setOrig(o.Listener.Addr().String())
	tests := []struct {
		name     string
		req      string
		status   int
		body     string
		category string
	}{
		{"allowed", "GET /ok HTTP/1.1\r\nHost: site.test\r\n\r\n", 200, "bonjour site.test", ""},
		{"url prefix", "GET /interdit?a=b HTTP/1.1\r\nHost: site.test\r\n\r\n", 403, "Accès refusé", "academie_bloque"},
		{"url prefix is on path boundaries", "GET /interditx HTTP/1.1\r\nHost: site.test\r\n\r\n", 404, "", ""},
		{"blocked host", "GET / HTTP/1.1\r\nHost: pornhub.com\r\n\r\n", 403, "Adulte", "adult"},
		{"host resolving elsewhere", "GET /ok HTTP/1.1\r\nHost: forge.test\r\n\r\n", 403, "Destination incohérente", catDestination},
		{"host that does not resolve", "GET /ok HTTP/1.1\r\nHost: inconnu.test\r\n\r\n", 403, "Destination incohérente", catDestination},
		{"host is the original address", "GET /ok HTTP/1.1\r\nHost: " + o.Listener.Addr().String() + "\r\n\r\n", 200, "bonjour", ""},
		{"host is another address", "GET /ok HTTP/1.1\r\nHost: 127.0.0.7\r\n\r\n", 403, "Destination incohérente", catDestination},
		{"absolute form", "GET http://site.test/ok HTTP/1.1\r\nHost: site.test\r\n\r\n", 200, "bonjour site.test", ""},
		{"HTTP/1.0 without Host", "GET /ok HTTP/1.0\r\n\r\n", 200, "bonjour 127.0.0.1", ""},
		{"CONNECT on the HTTP port", "CONNECT site.test:443 HTTP/1.1\r\nHost: site.test\r\n\r\n", 400, "Requête invalide", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n0 := len(e.records(journal.Navigation, 0))
			resp := rawHTTP(t, e.thttp, tc.req)[0]
			body := bodyOf(resp)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("status %d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.body, body)
			}
			recs := e.records(journal.Navigation, n0+1)
			if len(recs) <= n0 {
				t.Fatal("no navigation record for the request")
			}
			r := recs[n0]
			if r.Category != tc.category && !(tc.category == "" && r.Verdict == "allow") {
				t.Errorf("record category %q, want %q: %+v", r.Category, tc.category, r)
			}
			if tc.status != 400 && r.Dest.String() != o.Listener.Addr().String() {
				t.Errorf("record dest %v", r.Dest)
			}
		})
	}
	t.Run("keep-alive: each request is judged", func(t *testing.T) {
		rs := rawHTTP(t, e.thttp,
			"GET /ok HTTP/1.1\r\nHost: site.test\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: pornhub.com\r\n\r\n",
			"GET /ok HTTP/1.1\r\nHost: site.test\r\n\r\n")
		if rs[0].StatusCode != 200 || rs[1].StatusCode != 403 || rs[2].StatusCode != 200 {
			t.Fatalf("statuses %d %d %d", rs[0].StatusCode, rs[1].StatusCode, rs[2].StatusCode)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		c, _ := net.Dial("tcp", e.thttp)
		defer c.Close()
		br := bufio.NewReader(c)
		wsHandshake(t, c, br, "/ws", "site.test")
		wsEcho(t, c, br, "salut")
	})
	t.Run("not redirected", func(t *testing.T) {
		e.setOrig("")
		defer e.setOrig(o.Listener.Addr().String())
		if resp := rawHTTP(t, e.thttp, "GET /ok HTTP/1.1\r\nHost: site.test\r\n\r\n")[0]; resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("original destination is the proxy", func(t *testing.T) {
		e.setOrig(e.thttp)
		defer e.setOrig(o.Listener.Addr().String())
		resp := rawHTTP(t, e.thttp, "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")[0]
		if resp.StatusCode != 508 {
			t.Fatalf("status %d: %s", resp.StatusCode, bodyOf(resp))
		}
	})
}

// tlsTo opens a TLS client connection to the transparent HTTPS port.
func tlsTo(t *testing.T, e *env, from string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", e.thttps)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// getOver sends one GET on an established TLS connection.
func getOver(t *testing.T, c net.Conn, host, path string) *http.Response {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func originRoots(s interface{ Client() *http.Client }) *x509.CertPool {
	return s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

func TestTransparentHTTPS(t *testing.T) {
	e := newEnv(t)
	o := newTLSOrigin(t)
	e.setOrig(o.Listener.Addr().String())
	roots := originRoots(o)

	t.Run("allowed server name is spliced", func(t *testing.T) {
		c, err := tlsTo(t, e, "", &tls.Config{ServerName: "example.com", RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		resp := getOver(t, c, "example.com", "/ok")
		c.Close()
		if resp.StatusCode != 200 || bodyOf(resp) != "bonjour example.com" {
			t.Fatalf("%d %q", resp.StatusCode, bodyOf(resp))
		}
		r := e.lastNav("example.com")
		if r.Proto != "https" || r.Verdict != "allow" || r.Dest.String() != o.Listener.Addr().String() || r.BytesIn == 0 || r.BytesOut == 0 || r.URL != "" {
			t.Errorf("record %+v", r)
		}
	})
	refused := []struct {
		name, from, sni, category string
	}{
		{"blocked server name", "", "pornhub.com", "adult"},
		{"blocked subdomain", "", "fr.pornhub.com", "adult"},
		{"server name resolving elsewhere", "", "forge.test", catDestination},
		{"server name that does not resolve", "", "inconnu.test", catDestination},
		{"no server name", "", "", catNoSNI},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tlsTo(t, e, tc.from, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: tc.sni == ""})
			if err == nil {
				c.Close()
				t.Fatal("handshake succeeded")
			}
			if !strings.Contains(err.Error(), "access denied") {
				t.Errorf("client saw %v, want a TLS access denied alert", err)
			}
			r := e.lastNav(tc.sni)
			if r.Verdict != "block" || r.Category != tc.category || r.Reference == "" {
				t.Errorf("record %+v", r)
			}
		})
	}
	t.Run("no server name allowed by the profile", func(t *testing.T) {
		c, err := tlsTo(t, e, "127.0.0.3", &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("plain text on the TLS port", func(t *testing.T) {
		c, _ := net.Dial("tcp", e.thttps)
		me := c.LocalAddr().String()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 10)); err == nil {
			t.Errorf("got %d bytes back", n)
		}
		c.Close()
		var conn bool
		for i := 0; i < 300 && !conn; i++ {
			for _, r := range e.journal.Records() {
				if r.Client.String() != me {
					continue
				}
				if r.Stream == journal.Navigation {
					t.Fatalf("garbage left a navigation record: %+v", r)
				}
				conn = true
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !conn {
			t.Error("no connection record for the garbage connection")
		}
	})
	t.Run("silent client is cut", func(t *testing.T) {
		c, _ := net.Dial("tcp", e.thttps)
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %v, want EOF after the hello timeout", err)
		}
	})
	t.Run("original destination is the proxy", func(t *testing.T) {
		e.setOrig(e.thttps)
		defer e.setOrig(o.Listener.Addr().String())
		if c, err := tlsTo(t, e, "", &tls.Config{ServerName: "example.com", RootCAs: roots}); err == nil {
			c.Close()
			t.Fatal("handshake succeeded through a loop")
		}
	})
}

func TestInterception(t *testing.T) {
	ca, caPool := testCA(t)
	o := newTLSOrigin(t)
	e := newEnv(t, withCA(ca, originRoots(o)))
	e.setOrig(o.Listener.Addr().String())
	op := port(o.Listener.Addr().String())

	t.Run("explicit: managed device gets the académie leaf", func(t *testing.T) {
		c := e.client("127.0.0.2", caPool)
		resp, err := c.Get("https://example.com:" + op + "/ok")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "bonjour example.com:"+op {
			t.Fatalf("body %q", body)
		}
		if iss := resp.TLS.PeerCertificates[0].Issuer.CommonName; !strings.Contains(iss, "Académie de test") {
			t.Errorf("leaf issued by %q", iss)
		}
		r := e.lastNav("example.com:" + op)
		if r.URL != "https://example.com:"+op+"/ok" || r.Proto != "https" || r.Status != 200 || r.Verdict != "allow" {
			t.Errorf("record %+v", r)
		}
	})
	t.Run("explicit: blocked host inside an intercepted tunnel", func(t *testing.T) {
		c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, net.TCPAddrFromAddrPort(mustAddrPort(e.explicit)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "CONNECT example.com:%s HTTP/1.1\r\nHost: example.com\r\n\r\n", op)
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"}); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		tc := tls.Client(c, &tls.Config{ServerName: "example.com", RootCAs: caPool})
		resp := getOver(t, tc, "bloque.test", "/")
		if resp.StatusCode != 403 || !strings.Contains(bodyOf(resp), "Accès refusé") {
			t.Fatalf("%d\n%s", resp.StatusCode, bodyOf(resp))
		}
	})
	t.Run("explicit: banking and health are never intercepted", func(t *testing.T) {
		for _, host := range []string{"1822direkt.com", "www.ameli.fr"} {
			e.mu.Lock()
			e.names[host] = e.names["example.com"]
			e.mu.Unlock()
			c := e.client("127.0.0.2", nil)
			c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
			resp, err := c.Get("https://" + host + ":" + op + "/ok")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if iss := resp.TLS.PeerCertificates[0].Issuer.CommonName; strings.Contains(iss, "Académie") {
				t.Errorf("%s was intercepted (leaf issued by %q)", host, iss)
			}
		}
	})
	t.Run("explicit: unmanaged zone is spliced", func(t *testing.T) {
		resp, err := e.client("", originRoots(o)).Get("https://example.com:" + op + "/ok")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
	t.Run("transparent: URL filtering over HTTPS", func(t *testing.T) {
		c, err := tlsTo(t, e, "127.0.0.2", &tls.Config{ServerName: "example.com", RootCAs: caPool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var seen int
		for _, step := range []struct {
			path   string
			status int
		}{{"/ok", 200}, {"/interdit/page", 403}, {"/ok", 200}} {
			// A request's record is written once its response is sent:
			// the last one is looked for among those that come after the
			// refusal's (written before its page).
			seen = len(e.journal.Records())
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: example.com\r\n\r\n", step.path)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != step.status {
				t.Fatalf("%s: %d\n%s", step.path, resp.StatusCode, body)
			}
		}
		r := e.navAfter(seen, "example.com")
		if r.URL != "https://example.com/ok" || r.Proto != "https" {
			t.Errorf("record %+v", r)
		}
	})
	t.Run("device without the CA fails cleanly", func(t *testing.T) {
		if c, err := tlsTo(t, e, "127.0.0.2", &tls.Config{ServerName: "example.com"}); err == nil {
			c.Close()
			t.Fatal("untrusted leaf accepted")
		}
		// And the proxy still intercepts the next one.
		c, err := tlsTo(t, e, "127.0.0.2", &tls.Config{ServerName: "example.com", RootCAs: caPool})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	if n := e.p.certs.len(); n < 1 || n > 3 {
		t.Errorf("%d certificates cached", n)
	}
}

func TestInterceptionNeedsACA(t *testing.T) {
	o := newTLSOrigin(t)
	e := newEnv(t) // no CA: a profile asking for interception is spliced
	e.setOrig(o.Listener.Addr().String())
	c, err := tlsTo(t, e, "127.0.0.2", &tls.Config{ServerName: "example.com", RootCAs: originRoots(o)})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestInterceptedTunnelIdle(t *testing.T) {
	ca, caPool := testCA(t)
	o := newTLSOrigin(t)
	e := newEnv(t, withCA(ca, originRoots(o)))
	e.setOrig(o.Listener.Addr().String())
	c, err := tlsTo(t, e, "127.0.0.2", &tls.Config{ServerName: "example.com", RootCAs: caPool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// TunnelIdle is 2 s: the proxy hangs up well before 15 s.
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle intercepted tunnel: read %v, want EOF", err)
	}
}
