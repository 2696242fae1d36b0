package edge

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/demo"
	"vigie/journal"
	"vigie/proxy/generation"
)

// TestStartHTTP starts the HTTP component the way the demo does (explicit
// proxy only) and checks that an adult site gets the French block page.
func TestStartHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	mem := &journal.Memory{}
	// The proxy resolves through the edge's DNS filter; nothing upstream
	// answers, which a blocked name never needs.
	dnsCfg := DNSConfig{Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:9"}}
	e, err := New(Config{UAI: demo.UAI, StateDir: t.TempDir(), HTTP: HTTPConfig{Explicit: addr}, DNS: dnsCfg},
		Deps{PublicKey: pub, Journal: mem, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := StrictRuleset(demo.UAI)
	if err != nil {
		t.Fatal(err)
	}
	e.gen.Store(&generation.Generation{Rules: rs, Applied: time.Now(), Fallback: true})
	if err := e.startDNS(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.startHTTP(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr})}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://pornhub.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "Accès refusé") {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	if recs := mem.Records(); len(recs) == 0 || recs[0].Host != "pornhub.com" || recs[0].Verdict != "block" {
		t.Errorf("journal %+v", recs)
	}
	// A second start on the same address fails and names the field.
	e2, _ := New(Config{UAI: demo.UAI, StateDir: t.TempDir(), HTTP: HTTPConfig{Explicit: addr}}, Deps{PublicKey: pub})
	e2.gen.Store(e.gen.Load())
	e2.dns = e.dns
	if err := e2.startHTTP(context.Background()); err == nil || !strings.Contains(err.Error(), "explicit") {
		t.Errorf("second listener on %s: %v", addr, err)
	}
}

func TestHTTPConfigStrict(t *testing.T) {
	dir := t.TempDir()
	good := `uai: 0671234X
state_dir: /tmp/x
public_key: /tmp/k.pub
http:
  explicit: 127.0.0.1:3128
  transparent_http: 0.0.0.0:8080
  transparent_https: 0.0.0.0:8443
  no_intercept: [impots.gouv.fr]
  check_destination: false
  allow_destinations: [192.168.5.10, "fd00:99::/64"]
  timeouts:
    dial: 5s
    tunnel_idle: 15m
`
	path := filepath.Join(dir, "edge.yaml")
	os.WriteFile(path, []byte(good), 0o644)
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Timeouts.TunnelIdle != 15*time.Minute || c.HTTP.CheckDestination == nil || *c.HTTP.CheckDestination {
		t.Errorf("decoded %+v", c.HTTP)
	}
	pc, err := c.HTTP.proxyConfig(c.UAI)
	if err != nil || !pc.NoDestinationCheck || pc.Timeouts.Dial != 5*time.Second || len(pc.AllowDestinations) != 2 || pc.AllowDestinations[0] != netip.MustParsePrefix("192.168.5.10/32") ||
		pc.AllowDestinations[1] != netip.MustParsePrefix("fd00:99::/64") || pc.NoIntercept[0] != "impots.gouv.fr" {
		t.Errorf("proxy config %+v, %v", pc, err)
	}
	os.WriteFile(path, []byte(strings.Replace(good, "dial: 5s", "dail: 5s", 1)), 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "dail") {
		t.Errorf("unknown field accepted: %v", err)
	}
	os.WriteFile(path, []byte(strings.Replace(good, "192.168.5.10", "192.168.5.300", 1)), 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "line 10") {
		t.Errorf("bad prefix: %v", err)
	}
	if _, err := (HTTPConfig{CACert: "/x.pem"}).proxyConfig("0671234X"); err == nil {
		t.Error("a CA certificate without its key was accepted")
	}
}
