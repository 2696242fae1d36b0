package edge

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"vigie/controlplane/cptest"
	"vigie/demo"
)

// syncUpstream is a real DNS server on loopback answering every A query
// with 203.0.113.10: an allowed name resolves to it, a blocked one never.
func syncUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Qtype == mdns.TypeA {
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
				A: net.ParseIP("203.0.113.10")})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// syncFreePort returns a loopback address free for UDP and TCP.
func syncFreePort(t *testing.T) string {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if pc, err := net.ListenPacket("udp", addr); err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// syncResolves reports whether the edge's DNS answers name with the
// upstream's address (allowed) rather than a block answer.
func syncResolves(t *testing.T, dnsAddr, name string) bool {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	m.SetEdns0(1232, false)
	c := &mdns.Client{Timeout: 2 * time.Second}
	var r *mdns.Msg
	var err error
	for i := 0; i < 3; i++ {
		if r, _, err = c.Exchange(m, dnsAddr); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*mdns.A); ok && a.A.String() == "203.0.113.10" {
			return true
		}
	}
	return false
}

func syncEdge(t *testing.T, cp *cptest.CP, state, dnsAddr, upstream string) *Edge {
	t.Helper()
	cfg := Config{
		UAI: demo.UAI, StateDir: state, PublicKey: cp.PublicKeyFile,
		ControlPlane: ControlPlaneConfig{URL: cp.URL, Token: cp.EdgeToken, PollTimeout: 5 * time.Second,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond},
		DNS: DNSConfig{Listen: dnsAddr, Upstreams: []string{upstream}},
	}
	e, err := New(cfg, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestSyncScenarios runs the control plane issue's scenarios on real parts:
// an edge with nothing starts strict and syncs; a publication is applied
// and filters DNS; with the control plane killed the edge keeps filtering;
// a restarted edge comes up from its last-known-good bundle; an edge with
// neither control plane nor bundle runs the built-in strict policy.
func TestSyncScenarios(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	upstream := syncUpstream(t)
	state := t.TempDir()
	dnsAddr := syncFreePort(t)
	e := syncEdge(t, cp, state, dnsAddr, upstream)

	cptest.Eventually(t, 15*time.Second, "serial 1 applied from the control plane", func() bool { return e.Generation().Serial() == 1 })
	if !syncResolves(t, dnsAddr, "nouveau-bloque.example") {
		t.Fatal("not blocked yet, but the edge does not resolve it")
	}

	// Publish: the edge applies, DNS blocks, the control plane knows.
	serial := cp.Block("nouveau-bloque.example")
	cptest.Eventually(t, 10*time.Second, "the publication applied", func() bool { return e.Generation().Serial() == serial })
	if syncResolves(t, dnsAddr, "www.nouveau-bloque.example") {
		t.Fatal("the published block does not filter DNS")
	}
	cptest.Eventually(t, 5*time.Second, "the edge's report", func() bool {
		st := cp.EdgeStatus("monnet-1")
		return st["applied_serial"].(float64) == float64(serial) && st["up_to_date"] == true
	})

	// Kill the control plane: filtering goes on.
	cp.Stop()
	time.Sleep(200 * time.Millisecond)
	if syncResolves(t, dnsAddr, "nouveau-bloque.example") || !syncResolves(t, dnsAddr, "education.gouv.fr") {
		t.Fatal("filtering changed when the control plane went away")
	}

	// Restart the edge while the control plane is still down: it comes up
	// from last-known-good, not from the strict fallback.
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	e2 := syncEdge(t, cp, state, dnsAddr, upstream)
	defer e2.Shutdown(context.Background())
	g := e2.Generation().Load()
	if g.Fallback || g.Serial != serial {
		t.Fatalf("restarted edge runs serial %d (fallback %v), want last-known-good %d", g.Serial, g.Fallback, serial)
	}
	if syncResolves(t, dnsAddr, "nouveau-bloque.example") {
		t.Fatal("the restarted edge does not filter from last-known-good")
	}

	// An edge with neither control plane nor bundle refuses to run open.
	bare := t.TempDir()
	bareDNS := syncFreePort(t)
	e3 := syncEdge(t, cp, bare, bareDNS, upstream)
	defer e3.Shutdown(context.Background())
	if g := e3.Generation().Load(); !g.Fallback || g.Serial != 0 {
		t.Fatalf("edge with nothing runs serial %d fallback %v", g.Serial, g.Fallback)
	}
	if syncResolves(t, bareDNS, "pornhub.com") || syncResolves(t, bareDNS, "000-online-casino.com") {
		t.Fatal("the built-in strict policy lets adult or gambling sites through")
	}

	// The control plane comes back: both edges converge on what it publishes.
	cp.Restart()
	next := cp.Block("apres-retour.example")
	cptest.Eventually(t, 15*time.Second, "both edges on the new version", func() bool {
		return e2.Generation().Serial() == next && e3.Generation().Serial() == next
	})
	if _, err := os.Stat(filepath.Join(bare, "policy.bundle")); err != nil {
		t.Fatalf("no last-known-good written: %v", err)
	}
}

func TestControlPlaneConfigChecks(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("vge_secret\n"), 0o600)
	tests := []struct {
		name string
		c    ControlPlaneConfig
		ok   bool
	}{
		{"https", ControlPlaneConfig{URL: "https://cp.ac-test.fr"}, true},
		{"loopback http", ControlPlaneConfig{URL: "http://127.0.0.1:8080"}, true},
		{"remote http", ControlPlaneConfig{URL: "http://cp.ac-test.fr"}, false},
		{"no scheme", ControlPlaneConfig{URL: "cp.ac-test.fr"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.checkURL(); (err == nil) != tt.ok {
				t.Fatalf("checkURL: %v", err)
			}
		})
	}
	got, err := ControlPlaneConfig{TokenFile: tok}.syncToken()
	if err != nil || got != "vge_secret" {
		t.Fatalf("token file: %q %v", got, err)
	}
	if _, err := (ControlPlaneConfig{TokenFile: tok + ".absent"}).syncToken(); err == nil {
		t.Fatal("missing token file accepted")
	}
}
