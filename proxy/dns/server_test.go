package dns

import (
	"github.com/prometheus/client_golang/prometheus/testutil"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"vigie/tstest"
)

func aOf(t *testing.T, m *mdns.Msg) []string {
	t.Helper()
	var out []string
	for _, rr := range m.Answer {
		switch x := rr.(type) {
		case *mdns.A:
			out = append(out, x.A.String())
		case *mdns.AAAA:
			out = append(out, x.AAAA.String())
		case *mdns.CNAME:
			out = append(out, "CNAME "+strings.TrimSuffix(x.Target, "."))
		}
	}
	return out
}

func TestForward(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name  string
		q     query
		wants string
	}{
		{"udp A", query{proto: "udp", name: nameAllowed, qtype: mdns.TypeA}, "198.51.100.7"},
		{"tcp A", query{proto: "tcp", name: nameAllowed, qtype: mdns.TypeA}, "198.51.100.7"},
		{"udp AAAA with EDNS", query{proto: "udp", name: nameAllowed, qtype: mdns.TypeAAAA, edns: 1232}, "2001:db8::7"},
		{"mixed case is echoed", query{proto: "udp", name: "WwW.ExEmple-AUTORISE.test", qtype: mdns.TypeA}, "198.51.100.7"},
		{"mixed case from cache over tcp", query{proto: "tcp", name: "WWW.exemple-autorise.TEST", qtype: mdns.TypeA, edns: 1232}, "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.ask(tc.q)
			if r.Rcode != mdns.RcodeSuccess || !r.RecursionAvailable || r.Authoritative || !r.Response {
				t.Fatalf("header: %v", r.MsgHdr)
			}
			if got := r.Question[0].Name; got != mdns.Fqdn(tc.q.name) {
				t.Errorf("question %q, want the client's %q", got, mdns.Fqdn(tc.q.name))
			}
			if got := aOf(t, r); len(got) != 1 || got[0] != tc.wants {
				t.Errorf("answer %v, want %s", got, tc.wants)
			}
			if (r.IsEdns0() != nil) != (tc.q.edns > 0) {
				t.Errorf("OPT present %v, client sent EDNS %v", r.IsEdns0() != nil, tc.q.edns > 0)
			}
			if o := r.IsEdns0(); o != nil && o.UDPSize() != ednsClamp {
				t.Errorf("advertised buffer %d, want %d", o.UDPSize(), ednsClamp)
			}
		})
	}
	if n := h.auth.count(nameAllowed, mdns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream asked %d times for %s A, want 1 (cached, case-insensitive)", n, nameAllowed)
	}
}

func TestBlockAnswers(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.BlockPageIPv6 = netip.MustParseAddr("fd00::53") })
	const adult, gambling = "pornhub.com", "0-casino.info"
	for _, tc := range []struct {
		name     string
		q        query
		rcode    int
		answer   []string
		category string
	}{
		{"pupils get the block page", query{src: srcEleves, name: adult, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}, "adult"},
		{"subdomains are blocked", query{src: srcEleves, name: "www." + adult, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}, "adult"},
		{"pupils get the IPv6 block page", query{src: srcEleves, name: adult, qtype: mdns.TypeAAAA, edns: 1232}, mdns.RcodeSuccess, []string{"fd00::53"}, "adult"},
		{"other types get an empty answer", query{src: srcEleves, name: adult, qtype: mdns.TypeHTTPS, edns: 1232}, mdns.RcodeSuccess, nil, "adult"},
		{"over tcp", query{src: srcEleves, proto: "tcp", name: gambling, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}, "gambling"},
		{"without EDNS there is no EDE", query{src: srcEleves, name: gambling, qtype: mdns.TypeA}, mdns.RcodeSuccess, []string{"127.0.0.1"}, ""},
		{"guests get NXDOMAIN", query{src: srcInvites, name: adult, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeNameError, nil, "adult"},
		{"null profile gets 0.0.0.0", query{src: srcNul, name: adult, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"0.0.0.0"}, "adult"},
		{"null profile gets ::", query{src: srcNul, name: adult, qtype: mdns.TypeAAAA, edns: 1232}, mdns.RcodeSuccess, []string{"::"}, "adult"},
		{"unknown clients get the default profile", query{src: srcUnknown, name: adult, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}, "adult"},
		{"unfiltered servers are forwarded", query{src: srcServeurs, name: adult, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"198.51.100.7"}, ""},
		{"staff do not block gambling", query{src: srcPersonnels, name: gambling, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"198.51.100.7"}, ""},
		{"académie block list", query{src: srcPersonnels, name: "bloque.demo.ac-demo.fr", qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}, "academie_bloque"},
		{"DoH resolvers are an ordinary category", query{src: srcEleves, name: "dns.google", qtype: mdns.TypeHTTPS, edns: 1232}, mdns.RcodeSuccess, nil, "doh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.ask(tc.q)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tc.rcode])
			}
			got := aOf(t, r)
			if strings.Join(got, ",") != strings.Join(tc.answer, ",") {
				t.Fatalf("answer %v, want %v", got, tc.answer)
			}
			e := ede(r)
			if tc.category == "" {
				if e != nil {
					t.Errorf("unexpected EDE %v", e)
				}
				return
			}
			for _, rr := range r.Answer {
				if rr.Header().Ttl != 30 {
					t.Errorf("block TTL %d, want 30", rr.Header().Ttl)
				}
			}
			if len(tc.answer) == 0 {
				if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA || r.Ns[0].(*mdns.SOA).Minttl != 30 || r.Ns[0].Header().Ttl != 30 {
					t.Errorf("negative block answer needs an SOA with the block TTL, got %v", r.Ns)
				}
			}
			if e == nil || e.InfoCode != mdns.ExtendedErrorCodeBlocked {
				t.Fatalf("EDE %v, want Blocked", e)
			}
			if !strings.Contains(e.ExtraText, "catégorie "+tc.category) {
				t.Errorf("EDE text %q does not name category %s", e.ExtraText, tc.category)
			}
		})
	}
	t.Run("EDE text gives the category's French name", func(t *testing.T) {
		r := h.ask(query{src: srcEleves, name: adult, qtype: mdns.TypeA, edns: 1232})
		ci, _ := testRules(t).Category("adult")
		if e := ede(r); e == nil || ci.NameFR == "" || !strings.Contains(e.ExtraText, ci.NameFR) {
			t.Errorf("EDE %v should contain %q", e, ci.NameFR)
		}
	})
	if n := h.auth.count(adult, mdns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream asked %d times for a blocked name, want 1 (only the unfiltered server)", n)
	}
	// Refusals by category, for the dashboard: 9 adult (8 in the table
	// and the EDE subtest), 2 gambling, 1 académie, 1 doh.
	for cat, want := range map[string]float64{"adult": 9, "gambling": 2, "academie_bloque": 1, "doh": 1} {
		if got := testutil.ToFloat64(h.srv.m.blocked.WithLabelValues(cat)); got != want {
			t.Errorf("vigie_dns_blocked_total{category=%q} = %v, want %v", cat, got, want)
		}
	}
}

func TestDoHCanary(t *testing.T) {
	h := newHarness(t, nil)
	for _, src := range []string{srcEleves, srcPersonnels, srcInvites, srcServeurs, srcNul, srcUnknown} {
		t.Run(src, func(t *testing.T) {
			r := h.ask(query{src: src, name: "Use-Application-DNS.net", qtype: mdns.TypeA, edns: 1232})
			if r.Rcode != mdns.RcodeNameError || len(r.Answer) != 0 {
				t.Fatalf("canary: %s %v, want NXDOMAIN", mdns.RcodeToString[r.Rcode], r.Answer)
			}
			if e := ede(r); e == nil || !strings.Contains(e.ExtraText, "DoH") {
				t.Errorf("EDE %v should explain the canary", e)
			}
		})
	}
	if h.auth.total() != 0 {
		t.Errorf("the canary reached the upstream")
	}
}

func TestSafeSearch(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		src, name, target string
	}{
		{srcEleves, "google.fr", "forcesafesearch.google.com"},
		{srcEleves, "www.google.fr", "forcesafesearch.google.com"},
		{srcEleves, "WWW.Google.COM", "forcesafesearch.google.com"},
		{srcEleves, "www.google.co.uk", "forcesafesearch.google.com"},
		{srcEleves, "google.com.br", "forcesafesearch.google.com"},
		{srcEleves, "www.bing.com", "strict.bing.com"},
		{srcEleves, "duckduckgo.com", "safe.duckduckgo.com"},
		{srcEleves, "www.qwant.com", "safeqwant.com"},
		{srcEleves, "www.youtube.com", "restrict.youtube.com"},
		{srcEleves, "m.youtube.com", "restrict.youtube.com"},
		{srcPersonnels, "www.youtube.com", "restrictmoderate.youtube.com"},
		{srcPersonnels, "www.google.fr", "forcesafesearch.google.com"},
		{srcNul, "www.google.fr", ""},
		{srcServeurs, "www.google.fr", ""},
		{srcEleves, "mail.google.com", ""},
		{srcEleves, "google.evil.example", ""},
	} {
		t.Run(tc.src+" "+tc.name, func(t *testing.T) {
			for _, proto := range []string{"udp", "tcp"} {
				r := h.ask(query{src: tc.src, proto: proto, name: tc.name, qtype: mdns.TypeA, edns: 1232})
				got := aOf(t, r)
				if tc.target == "" {
					if len(got) != 1 || got[0] != "198.51.100.7" {
						t.Fatalf("%s: answer %v, want the name itself resolved", proto, got)
					}
					continue
				}
				addr := "198.51.100.7"
				if tc.target == "forcesafesearch.google.com" {
					addr = safeSearchV4
				}
				want := []string{"CNAME " + tc.target, addr}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("%s: answer %v, want %v", proto, got, want)
				}
				if r.Answer[0].Header().Name != mdns.Fqdn(tc.name) {
					t.Errorf("CNAME owner %q, want the client's %q", r.Answer[0].Header().Name, mdns.Fqdn(tc.name))
				}
				if e := ede(r); e == nil || e.InfoCode != mdns.ExtendedErrorCodeForgedAnswer {
					t.Errorf("EDE %v, want Forged Answer", e)
				}
			}
		})
	}
	if n := h.auth.count("www.google.fr", mdns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream asked %d times for www.google.fr, want 1 (only for the profiles without SafeSearch)", n)
	}
	if n := h.auth.count("forcesafesearch.google.com", mdns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream asked %d times for the safe endpoint, want 1 (cached)", n)
	}
}

func TestCNAMECloaking(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name   string
		q      query
		rcode  int
		answer []string
	}{
		{"pupils: permitted name leading to adult is blocked", query{src: srcEleves, name: nameCloak, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}},
		{"again, from the cache", query{src: srcEleves, name: nameCloak, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}},
		{"over tcp", query{src: srcEleves, proto: "tcp", name: nameCloak, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}},
		{"a chain of CNAMEs", query{src: srcEleves, name: nameCloakDeep, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"127.0.0.1"}},
		{"guests: NXDOMAIN", query{src: srcInvites, name: nameCloak, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeNameError, nil},
		{"unfiltered servers see the chain", query{src: srcServeurs, name: nameCloak, qtype: mdns.TypeA, edns: 1232}, mdns.RcodeSuccess, []string{"CNAME " + cloakTarget, "198.51.100.7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.ask(tc.q)
			if r.Rcode != tc.rcode || strings.Join(aOf(t, r), ",") != strings.Join(tc.answer, ",") {
				t.Fatalf("got %s %v, want %s %v", mdns.RcodeToString[r.Rcode], aOf(t, r), mdns.RcodeToString[tc.rcode], tc.answer)
			}
			if tc.q.src != srcServeurs {
				if e := ede(r); e == nil || !strings.Contains(e.ExtraText, "CNAME vers "+cloakTarget) || !strings.Contains(e.ExtraText, "adult") {
					t.Errorf("EDE %v should name the CNAME target and the category", e)
				}
			}
		})
	}
	if n := h.auth.count(nameCloak, mdns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}
}

func TestECHStripped(t *testing.T) {
	h := newHarness(t, nil)
	for i := 0; i < 2; i++ { // fresh, then cached
		for _, do := range []bool{false, true} {
			r := h.ask(query{name: nameHTTPS, qtype: mdns.TypeHTTPS, edns: 1232, do: do})
			if len(r.Answer) != 1 {
				t.Fatalf("answer %v", r.Answer)
			}
			rr, ok := r.Answer[0].(*mdns.HTTPS)
			if !ok {
				t.Fatalf("answer %T, want HTTPS", r.Answer[0])
			}
			var keys []string
			for _, kv := range rr.Value {
				keys = append(keys, kv.Key().String())
			}
			if strings.Join(keys, ",") != "alpn" {
				t.Errorf("HTTPS parameters %v, want alpn only (ech removed)", keys)
			}
			if o := r.IsEdns0(); o == nil || o.Do() != do {
				t.Errorf("DO bit not echoed (want %v)", do)
			}
		}
	}
	if n := h.auth.count(nameHTTPS, mdns.TypeHTTPS, "udp"); n != 2 {
		t.Errorf("upstream asked %d times, want 2 (one per DO bit)", n)
	}
}

func TestTruncation(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name  string
		q     query
		limit int
		tc    bool
	}{
		{"udp without EDNS: 512 bytes", query{proto: "udp", name: nameBig, qtype: mdns.TypeTXT}, 512, true},
		{"udp with a 1232 buffer", query{proto: "udp", name: nameBig, qtype: mdns.TypeTXT, edns: 1232}, 1232, true},
		{"a larger buffer is clamped to 1232", query{proto: "udp", name: nameBig, qtype: mdns.TypeTXT, edns: 4096}, 1232, true},
		{"a buffer under 512 counts as 512", query{proto: "udp", name: nameBig, qtype: mdns.TypeTXT, edns: 100}, 512, true},
		{"tcp gets everything", query{proto: "tcp", name: nameBig, qtype: mdns.TypeTXT, edns: 1232}, 65535, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.ask(tc.q)
			r.Compress = true // as sent: miekg unpacks with compression off
			wire, err := r.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if r.Truncated != tc.tc {
				t.Errorf("TC %v, want %v", r.Truncated, tc.tc)
			}
			if len(wire) > tc.limit {
				t.Errorf("answer of %d bytes exceeds %d", len(wire), tc.limit)
			}
			if !tc.tc && len(r.Answer) != 40 {
				t.Errorf("%d records over TCP, want 40", len(r.Answer))
			}
			if tc.tc && len(r.Answer) == 0 && tc.limit > 512 {
				t.Errorf("a truncated answer should still carry what fits")
			}
		})
	}
	if n := h.auth.count(nameBig, mdns.TypeTXT, "tcp"); n != 1 {
		t.Errorf("upstream asked over TCP %d times, want 1 (retry after its truncated UDP answer, then cached)", n)
	}
}

func TestCacheTTL(t *testing.T) {
	t.Run("decay and expiry", func(t *testing.T) {
		h := newHarness(t, nil)
		ttl := func() uint32 {
			r := h.ask(query{name: nameShortTTL, qtype: mdns.TypeA})
			if len(r.Answer) != 1 {
				t.Fatalf("answer %v", r.Answer)
			}
			return r.Answer[0].Header().Ttl
		}
		if got := ttl(); got != 300 {
			t.Errorf("fresh TTL %d, want 300", got)
		}
		h.clock.Advance(100 * time.Second)
		if got := ttl(); got != 200 {
			t.Errorf("TTL after 100s %d, want 200", got)
		}
		if n := h.auth.count(nameShortTTL, mdns.TypeA, "udp"); n != 1 {
			t.Errorf("upstream asked %d times, want 1", n)
		}
		h.clock.Advance(201 * time.Second)
		if got := ttl(); got != 300 {
			t.Errorf("TTL after expiry %d, want a fresh 300", got)
		}
		if n := h.auth.count(nameShortTTL, mdns.TypeA, "udp"); n != 2 {
			t.Errorf("upstream asked %d times, want 2", n)
		}
	})
	t.Run("clamps", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.Cache.MaxTTL = time.Minute; c.Cache.MinTTL = 10 * time.Second })
		r := h.ask(query{name: nameAllowed, qtype: mdns.TypeA})
		if got := r.Answer[0].Header().Ttl; got != 60 {
			t.Errorf("TTL %d, want the 60s clamp", got)
		}
		h.clock.Advance(61 * time.Second)
		h.ask(query{name: nameAllowed, qtype: mdns.TypeA})
		if n := h.auth.count(nameAllowed, mdns.TypeA, "udp"); n != 2 {
			t.Errorf("upstream asked %d times, want 2 (max_ttl expired the entry)", n)
		}
	})
	t.Run("negative answers", func(t *testing.T) {
		h := newHarness(t, nil)
		for _, tc := range []struct {
			name  string
			rcode int
		}{{nameNX, mdns.RcodeNameError}, {nameNoData, mdns.RcodeSuccess}} {
			for i := 0; i < 2; i++ {
				r := h.ask(query{name: tc.name, qtype: mdns.TypeA, edns: 1232})
				if r.Rcode != tc.rcode || len(r.Answer) != 0 || len(r.Ns) != 1 {
					t.Fatalf("%s: %s %v %v", tc.name, mdns.RcodeToString[r.Rcode], r.Answer, r.Ns)
				}
				if got := r.Ns[0].Header().Ttl; got != 120 {
					t.Errorf("%s: SOA TTL %d, want min(TTL 3600, MINIMUM 120) = 120 (RFC 2308)", tc.name, got)
				}
			}
			if n := h.auth.count(tc.name, mdns.TypeA, "udp"); n != 1 {
				t.Errorf("%s: upstream asked %d times, want 1", tc.name, n)
			}
		}
		h.clock.Advance(121 * time.Second)
		h.ask(query{name: nameNX, qtype: mdns.TypeA})
		if n := h.auth.count(nameNX, mdns.TypeA, "udp"); n != 2 {
			t.Errorf("upstream asked %d times after the negative TTL, want 2", n)
		}
	})
}

func TestUpstreamFailover(t *testing.T) {
	dead := startAuth(t)
	dead.silent.Store(true)
	refused, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.LocalAddr().String()
	refused.Close() // nothing listens there: ICMP port unreachable
	live := startAuth(t)
	h := newHarness(t, func(c *Config) {
		c.Upstreams = []string{dead.addr, refusedAddr, live.addr}
		c.Timeout = 300 * time.Millisecond
	})
	for i := 0; i < 5; i++ {
		name := "panne" + itoa(i) + ".exemple-autorise.test"
		r := h.ask(query{name: name, qtype: mdns.TypeA})
		if got := aOf(t, r); len(got) != 1 || got[0] != "198.51.100.7" {
			t.Fatalf("%s: %v", name, got)
		}
	}
	if n := dead.total(); n != failThreshold {
		t.Errorf("silent upstream asked %d times, want %d (then marked down)", n, failThreshold)
	}
	if n := live.total(); n != 5 {
		t.Errorf("live upstream asked %d times, want 5", n)
	}
	// The silent upstream comes back: the prober notices and it is
	// preferred again.
	dead.silent.Store(false)
	tstest.Eventually(t, 5*time.Second, func() bool {
		r := h.ask(query{name: "retour" + itoa(int(time.Now().UnixNano()%1e6)) + ".exemple-autorise.test", qtype: mdns.TypeA})
		if len(r.Answer) != 1 {
			t.Fatalf("answer %v", r.Answer)
		}
		return dead.total() > failThreshold+1 // +1: the probe
	}, "the upstream that came back is never used again")
	t.Run("all upstreams down: SERVFAIL with EDE", func(t *testing.T) {
		dead.silent.Store(true)
		live.silent.Store(true)
		r := h.ask(query{name: "perdu.exemple-autorise.test", qtype: mdns.TypeA, edns: 1232})
		if r.Rcode != mdns.RcodeServerFailure {
			t.Fatalf("rcode %s, want SERVFAIL", mdns.RcodeToString[r.Rcode])
		}
		if e := ede(r); e == nil || e.InfoCode != mdns.ExtendedErrorCodeNoReachableAuthority {
			t.Errorf("EDE %v, want No Reachable Authority", e)
		}
		// Blocked and cached names are still answered.
		if r := h.ask(query{name: "pornhub.com", qtype: mdns.TypeA}); aOf(t, r)[0] != "127.0.0.1" {
			t.Errorf("blocked name not answered while upstreams are down")
		}
	})
	t.Run("SERVFAIL from one upstream moves on to the next", func(t *testing.T) {
		dead.silent.Store(false)
		live.silent.Store(false)
		dead.mu.Lock()
		dead.rcode = mdns.RcodeServerFailure
		dead.mu.Unlock()
		h2 := newHarness(t, func(c *Config) { c.Upstreams = []string{dead.addr, live.addr} })
		r := h2.ask(query{name: "servfail.exemple-autorise.test", qtype: mdns.TypeA})
		if got := aOf(t, r); len(got) != 1 || got[0] != "198.51.100.7" {
			t.Fatalf("answer %v %s, want the second upstream's", got, mdns.RcodeToString[r.Rcode])
		}
	})
}

func TestCoalescingAndNoHeadOfLineBlocking(t *testing.T) {
	for _, b := range []int{batchSize, 1} {
		t.Run("udp_batch="+itoa(b), func(t *testing.T) { testCoalescing(t, b) })
	}
}

func testCoalescing(t *testing.T, batch int) {
	h := newHarness(t, func(c *Config) { c.UDPBatch = batch })
	h.auth.mu.Lock()
	hold := make(chan struct{})
	h.auth.hold = hold
	h.auth.mu.Unlock()
	h.ask(query{name: nameAllowed, qtype: mdns.TypeA}) // cache it first... (not held: only nameSlow is)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.exchange(query{name: nameSlow, qtype: mdns.TypeA})
			if err == nil && (len(r.Answer) != 1 || r.Rcode != 0) {
				err = errMismatch(r)
			}
			errs <- err
		}()
	}
	tstest.Eventually(t, 10*time.Second, func() bool { return h.auth.count(nameSlow, mdns.TypeA, "udp") != 0 },
		"the slow name never reached the upstream")
	// While the upstream holds the slow name, other queries flow: cached,
	// blocked, and a new miss.
	for _, q := range []query{
		{name: nameAllowed, qtype: mdns.TypeA},
		{name: "pornhub.com", qtype: mdns.TypeA},
		{name: "autre.exemple-autorise.test", qtype: mdns.TypeA},
	} {
		if r := h.ask(q); len(r.Answer) != 1 {
			t.Errorf("%s not answered while another query waits upstream", q.name)
		}
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if c := h.auth.count(nameSlow, mdns.TypeA, "udp"); c != 1 {
		t.Errorf("upstream asked %d times for %d identical queries, want 1", c, n)
	}
}

type mismatch struct{ m *mdns.Msg }

func (e mismatch) Error() string    { return "unexpected answer: " + e.m.String() }
func errMismatch(m *mdns.Msg) error { return mismatch{m} }

func TestServeStale(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stale time.Duration
		want  int
	}{{"default: served stale", 0, mdns.RcodeSuccess}, {"disabled", -1, mdns.RcodeServerFailure}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Cache.ServeStale = tc.stale; c.Timeout = 200 * time.Millisecond })
			for _, proto := range []string{"udp", "tcp"} {
				h.ask(query{proto: proto, name: nameShortTTL, qtype: mdns.TypeA, edns: 1232})
			}
			h.clock.Advance(time.Hour)
			h.auth.silent.Store(true)
			for _, proto := range []string{"udp", "tcp"} {
				r := h.ask(query{proto: proto, name: nameShortTTL, qtype: mdns.TypeA, edns: 1232})
				if r.Rcode != tc.want {
					t.Fatalf("%s: rcode %s, want %s", proto, mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tc.want])
				}
				if tc.want != mdns.RcodeSuccess {
					continue
				}
				if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != staleTTL {
					t.Errorf("%s: stale answer %v, want TTL %d", proto, r.Answer, staleTTL)
				}
				if e := ede(r); e == nil || e.InfoCode != mdns.ExtendedErrorCodeStaleAnswer {
					t.Errorf("%s: EDE %v, want Stale Answer", proto, e)
				}
			}
		})
	}
}

// TestEDNSForwarding checks what reaches the upstream: the buffer clamped
// to 1232, the client's DO bit, and never its Client Subnet.
func TestEDNSForwarding(t *testing.T) {
	h := newHarness(t, nil)
	for _, do := range []bool{false, true} {
		m := new(mdns.Msg)
		m.SetQuestion("ecs-"+strconv.FormatBool(do)+".exemple-autorise.test.", mdns.TypeA)
		o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
		o.SetUDPSize(4096)
		o.SetDo(do)
		o.Option = append(o.Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0).To4()})
		m.Extra = append(m.Extra, o)
		r, err := h.send(query{}, m)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 {
			t.Fatalf("answer %v", r.Answer)
		}
		h.auth.mu.Lock()
		got := h.auth.lastOPT
		h.auth.mu.Unlock()
		if got == nil {
			t.Fatal("upstream query without EDNS")
		}
		if got.UDPSize() != ednsClamp || got.Do() != do || len(got.Option) != 0 {
			t.Errorf("upstream OPT: size %d, DO %v, options %v; want %d, %v, none", got.UDPSize(), got.Do(), got.Option, ednsClamp, do)
		}
		if ro := r.IsEdns0(); ro == nil || ro.UDPSize() != ednsClamp || ro.Do() != do || len(ro.Option) != 0 {
			t.Errorf("answer OPT %v", ro)
		}
	}
}
