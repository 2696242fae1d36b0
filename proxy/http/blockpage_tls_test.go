package httpproxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"vigie/journal"
)

// With https_block_page and the académie CA, a refused HTTPS connection is
// intercepted, and only it, so that the device trusting the CA sees the
// French page; allowed connections and never-intercepted sites keep the
// origin's certificate or the refusal.
func TestHTTPSBlockPage(t *testing.T) {
	ca, caPool := testCA(t)
	o := newTLSOrigin(t)
	e := newEnv(t, withCA(ca, originRoots(o)), func(c *Config, _ *Deps) {
		// A blocked site that must never be intercepted (as health sites).
		c.NoIntercept = []string{"bloque.test"}
	})
	e.setOrig(o.Listener.Addr().String())
	op := port(o.Listener.Addr().String())
	const from = "127.0.0.4" // profile eleves_page
	frenchPage := func(t *testing.T, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != 403 || !strings.Contains(body, "Accès refusé") || !strings.Contains(body, `lang="fr"`) {
			t.Fatalf("%s\n%.400s", resp.Status, body)
		}
		if iss := resp.TLS.PeerCertificates[0].Issuer.CommonName; !strings.Contains(iss, "Académie de test") {
			t.Errorf("page served under a leaf issued by %q", iss)
		}
	}

	t.Run("explicit: blocked host", func(t *testing.T) {
		seen := len(e.journal.Records())
		resp, err := e.client(from, caPool).Get("https://pornhub.com/video")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		frenchPage(t, resp, string(body))
		r := e.navAfter(seen, "pornhub.com")
		if r.Verdict != "block" || r.Category != "adult" || r.Proto != "connect" || !strings.Contains(string(body), r.Reference) {
			t.Errorf("record %+v", r)
		}
	})
	t.Run("explicit: server name differing from the CONNECT host", func(t *testing.T) {
		c, br, resp := connectRaw(t, e, from, "example.com:"+op)
		if resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
		tc := tls.Client(&bufConn{Conn: c, r: br}, &tls.Config{ServerName: "autre.test", RootCAs: caPool})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		resp = getOver(t, tc, "autre.test", "/")
		resp.TLS = &tls.ConnectionState{PeerCertificates: tc.ConnectionState().PeerCertificates}
		frenchPage(t, resp, bodyOf(resp))
	})
	t.Run("explicit: allowed host is not intercepted", func(t *testing.T) {
		resp, err := e.client(from, originRoots(o)).Get("https://example.com:" + op + "/ok")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if iss := resp.TLS.PeerCertificates[0].Issuer.CommonName; strings.Contains(iss, "Académie") {
			t.Fatalf("an allowed site was intercepted (leaf issued by %q)", iss)
		}
	})
	t.Run("explicit: never-intercepted site keeps the refusal", func(t *testing.T) {
		_, _, resp := connectRaw(t, e, from, "bloque.test:443")
		if resp.StatusCode != 403 {
			t.Fatalf("CONNECT answered %s", resp.Status)
		}
	})
	t.Run("transparent: blocked server name", func(t *testing.T) {
		tc, err := tlsTo(t, e, from, &tls.Config{ServerName: "pornhub.com", RootCAs: caPool})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		resp := getOver(t, tc, "pornhub.com", "/")
		resp.TLS = &tls.ConnectionState{PeerCertificates: tc.ConnectionState().PeerCertificates}
		frenchPage(t, resp, bodyOf(resp))
	})
	t.Run("transparent: allowed server name is spliced", func(t *testing.T) {
		tc, err := tlsTo(t, e, from, &tls.Config{ServerName: "example.com", RootCAs: originRoots(o)})
		if err != nil {
			t.Fatal(err)
		}
		tc.Close()
	})
	t.Run("transparent: never-intercepted site gets the alert", func(t *testing.T) {
		if _, err := tlsTo(t, e, from, &tls.Config{ServerName: "bloque.test", RootCAs: caPool}); err == nil {
			t.Fatal("handshake completed")
		}
	})
	// The pages inside leave no record of their own: one refusal, one record.
	n := 0
	for _, r := range e.journal.Records() {
		if r.Stream == journal.Navigation && r.Host == "pornhub.com" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d navigation records for pornhub.com, want 2 (explicit and transparent)", n)
	}
}
