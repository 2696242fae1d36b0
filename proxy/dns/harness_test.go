package dns

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"vigie/demo"
	"vigie/journal"
	"vigie/proxy/generation"
	"vigie/rules"
	"vigie/rules/policy"
)

var verbose = flag.Bool("vigie.log", false, "show the server's logs")

// listsDir holds the real UT1 and adult-top1m lists. Tests fail, never
// skip, when they are missing.
const listsDir = "../../testdata/blocklists"

// Test clients, each in its own zone of the test school (see testPolicy).
const (
	srcEleves     = "127.0.0.1" // pedagogique → eleves: block page, SafeSearch, YouTube strict
	srcPersonnels = "127.0.0.2" // administratif → personnels: block page, YouTube moderate
	srcInvites    = "127.0.0.3" // wifi → invites: NXDOMAIN
	srcServeurs   = "127.0.0.4" // serveurs → unfiltered
	srcNul        = "127.0.0.5" // labo → nul: null addresses, no SafeSearch
	srcUnknown    = "127.0.0.9" // no zone → default profile (eleves)
)

// testPolicy is the demo policy on the real lists, with the school's zones
// moved onto loopback addresses so that one test machine can be a client
// of every zone, and a profile answering null addresses.
func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	if _, err := os.Stat(filepath.Join(listsDir, "ut1", "gambling", "domains")); err != nil {
		t.Fatalf("the real blocklists are missing (%v): they are part of the repository", err)
	}
	abs, err := filepath.Abs(listsDir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := demo.Policy(abs)
	if err != nil {
		t.Fatal(err)
	}
	var nul policy.Profile
	for _, pr := range p.Profiles {
		if pr.ID == "invites" {
			nul = pr
		}
	}
	nul.ID, nul.Name, nul.BlockAnswer, nul.SafeSearch = "nul", "Adresse nulle", "null", false
	p.Profiles = append(p.Profiles, nul)
	s := &p.Schools[0]
	cidrs := map[string][]string{
		"pedagogique":   {srcEleves + "/32", "::1/128"},
		"administratif": {srcPersonnels + "/32"},
		"wifi":          {srcInvites + "/32"},
		"serveurs":      {srcServeurs + "/32"},
	}
	for i := range s.Zones {
		s.Zones[i].CIDRs = cidrs[s.Zones[i].Name]
	}
	s.Zones = append(s.Zones, policy.Zone{Name: "labo", CIDRs: []string{srcNul + "/32"}, Profile: "nul"})
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	rulesOnce sync.Once
	realRules *rules.Ruleset
	rulesErr  error
)

// testRules compiles testPolicy once per test binary (about a second).
func testRules(t testing.TB) *rules.Ruleset {
	t.Helper()
	p := testPolicy(t)
	rulesOnce.Do(func() { realRules, _, rulesErr = rules.Compile(p) })
	if rulesErr != nil {
		t.Fatal(rulesErr)
	}
	return realRules
}

// fakeClock is the injected clock: tests move time by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 9, 14, 8, 0, 0, 0, time.UTC).UnixNano()) // a Monday, 10:00 in Paris: no lunch window open
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type harness struct {
	t     testing.TB
	auth  *authServer
	srv   *Server
	gen   *generation.Current
	jr    *journal.Memory
	reg   *prometheus.Registry
	clock *fakeClock
}

// newHarness starts a real upstream and a server on loopback, with the
// real-list policy in force and an injected clock.
func newHarness(t testing.TB, mutate func(*Config)) *harness {
	t.Helper()
	return newHarnessDial(t, nil, mutate)
}

// newHarnessDial is newHarness with the server's upstream dialer.
func newHarnessDial(t testing.TB, dial Dialer, mutate func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, auth: startAuth(t), gen: &generation.Current{}, jr: &journal.Memory{}, reg: prometheus.NewRegistry(), clock: newFakeClock()}
	h.gen.Store(&generation.Generation{Rules: testRules(t), Serial: 7})
	cfg := Config{
		UAI:        demo.UAI,
		Listen:     "127.0.0.1:0",
		Upstreams:  []string{h.auth.addr},
		Timeout:    time.Second,
		UDPSockets: 2,
		RateLimit:  RateLimitConfig{QPS: -1},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg, Deps{Gen: h.gen, Journal: h.jr, Registry: h.reg, Log: testLog(), Now: h.clock.Now, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

func testLog() *slog.Logger {
	if *verbose {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// query is a test query.
type query struct {
	src   string // client address
	proto string // udp or tcp
	name  string
	qtype uint16
	edns  int // EDNS buffer size; 0: no EDNS
	do    bool
}

func (h *harness) exchange(q query) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(q.name), q.qtype)
	if q.edns > 0 {
		m.SetEdns0(uint16(q.edns), q.do)
	}
	return h.send(q, m)
}

func (h *harness) send(q query, m *mdns.Msg) (*mdns.Msg, error) {
	if q.src == "" {
		q.src = srcEleves
	}
	if q.proto == "" {
		q.proto = "udp"
	}
	d := &net.Dialer{}
	if q.proto == "udp" {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(q.src)}
	} else {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(q.src)}
	}
	c := &mdns.Client{Net: q.proto, Timeout: 3 * time.Second, Dialer: d, UDPSize: 65535}
	r, _, err := c.Exchange(m, h.srv.Addr())
	return r, err
}

func (h *harness) ask(q query) *mdns.Msg {
	h.t.Helper()
	r, err := h.exchange(q)
	if err != nil {
		h.t.Fatalf("%s %s from %s over %s: %v", q.name, mdns.TypeToString[q.qtype], q.src, q.proto, err)
	}
	return r
}

// ede returns the Extended DNS Error of m, if any.
func ede(m *mdns.Msg) *mdns.EDNS0_EDE {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*mdns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}
