package httpproxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vigie/journal"
	"vigie/rules"
	"vigie/rules/policy"
)

const destPolicy = `version: 1
profiles: [{id: eleves}, {id: personnels}]
schools:
  - uai: 0671234X
    name: Collège
    zones:
      - {name: pedagogique, cidrs: [10.10.0.0/24, "fd00:10::/64"], profile: eleves}
      - {name: administratif, cidrs: [10.20.0.0/24], profile: personnels}
      - {name: labo, cidrs: [10.30.0.0/24], profile: eleves}
firewall:
  internet:
    - {from: pedagogique, services: [web, dns, ntp]}
    - {from: administratif, proto: tcp, ports: ["22", "8000-8100"]}
  flows:
    - {from: administratif, to: pedagogique, proto: tcp, ports: ["8000"]}
  management:
    - {from: administratif, proto: tcp, ports: ["22"]}
`

// The destination check, address by address: the internet is allowed;
// the gateway, its loopback services, link-local and multicast never are
// (unless configured); the school's networks and the gateway's own
// addresses only through a flow of the policy.
func TestDestAllowed(t *testing.T) {
	pol, err := policy.Parse([]byte(destPolicy), "dest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := rules.Compile(pol)
	if err != nil {
		t.Fatal(err)
	}
	gateway := []net.Addr{
		&net.IPNet{IP: net.ParseIP("203.0.113.2"), Mask: net.CIDRMask(24, 32)},
		&net.IPNet{IP: net.ParseIP("10.10.0.1"), Mask: net.CIDRMask(24, 32)},
		&net.IPNet{IP: net.ParseIP("2001:db8:ff::2"), Mask: net.CIDRMask(64, 128)},
	}
	newProxy := func(cfg Config) *Proxy {
		p := &Proxy{cfg: cfg}
		p.local.list = func() ([]net.Addr, error) { return gateway, nil }
		return p
	}
	// The zero value checks: a secure default.
	strict := newProxy(Config{UAI: "0671234X"})
	open := newProxy(Config{UAI: "0671234X", AllowDestinations: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.20.0.9/32")}})
	off := newProxy(Config{UAI: "0671234X", NoDestinationCheck: true})
	const pupil, staff, pupil6 = "10.10.0.10", "10.20.0.10", "fd00:10::10"
	tests := []struct {
		name   string
		p      *Proxy
		client string
		dest   string
		want   bool
	}{
		{"internet", strict, pupil, "198.51.100.7:443", true},
		{"internet over IPv6", strict, pupil6, "[2001:db8::7]:443", true},
		{"control plane on loopback", strict, pupil, "127.0.0.1:8080", false},
		{"loopback metrics", strict, staff, "127.0.0.1:9101", false},
		{"IPv6 loopback", strict, pupil6, "[::1]:443", false},
		{"mapped loopback", strict, pupil, "[::ffff:127.0.0.1]:8080", false},
		{"unspecified", strict, pupil, "0.0.0.0:80", false},
		{"cloud metadata (link-local)", strict, pupil, "169.254.169.254:80", false},
		{"IPv6 link-local", strict, pupil6, "[fe80::1]:443", false},
		{"multicast", strict, pupil, "239.1.1.1:443", false},
		{"IPv6 multicast", strict, pupil6, "[ff02::1]:443", false},
		{"another zone", strict, pupil, "10.20.0.5:80", false},
		{"own zone", strict, pupil, "10.10.0.20:443", false},
		{"school IPv6 prefix", strict, pupil, "[fd00:10::99]:443", false},
		{"zone-to-zone flow", strict, staff, "10.10.0.20:8000", true},
		{"flow on another port", strict, staff, "10.10.0.20:8001", false},
		{"flow in the other direction", strict, pupil, "10.20.0.5:8000", false},
		{"client in no zone", strict, "192.0.2.1", "10.10.0.20:8000", false},
		{"gateway WAN address", strict, pupil, "203.0.113.2:443", false},
		{"gateway LAN address", strict, pupil, "10.10.0.1:22", false},
		{"gateway IPv6 address", strict, pupil6, "[2001:db8:ff::2]:22", false},
		{"management flow", strict, staff, "10.10.0.1:22", true},
		{"management flow, other port", strict, staff, "10.10.0.1:443", false},
		{"configured loopback", open, pupil, "127.0.0.1:8080", true},
		{"configured server", open, pupil, "10.20.0.9:80", true},
		{"check off", off, pupil, "127.0.0.1:8080", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.destAllowed(rs, netip.MustParseAddr(tc.client), netip.MustParseAddrPort(tc.dest))
			if got != tc.want {
				t.Errorf("destAllowed(%s → %s) = %v, want %v", tc.client, tc.dest, got, tc.want)
			}
		})
	}
}

// The explicit proxy applies the zone's internet lines, which the
// firewall cannot see on connections leaving from the gateway.
func TestEgressAllowed(t *testing.T) {
	pol, err := policy.Parse([]byte(destPolicy), "dest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := rules.Compile(pol)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{cfg: Config{UAI: "0671234X"}}
	p.local.list = func() ([]net.Addr, error) { return nil, nil }
	for _, tc := range []struct {
		client, dest string
		want         bool
	}{
		{"10.10.0.10", "198.51.100.7:443", true},  // web
		{"10.10.0.10", "198.51.100.7:8443", true}, // web: the profile's CONNECT ports decide
		{"fd00:10::10", "[2001:db8::7]:443", true},
		{"10.20.0.10", "198.51.100.7:443", false}, // no web line
		{"10.20.0.10", "198.51.100.7:22", true},
		{"10.20.0.10", "198.51.100.7:8050", true},
		{"10.20.0.10", "198.51.100.7:8101", false},
		{"10.30.0.10", "198.51.100.7:443", false}, // a zone with no internet line
		{"10.30.0.10", "10.10.0.20:443", true},    // the school's networks: destAllowed's business
		{"192.0.2.1", "198.51.100.7:443", true},   // no zone: the strictest profile rules it
	} {
		if got := p.egressAllowed(rs, netip.MustParseAddr(tc.client), netip.MustParseAddrPort(tc.dest)); got != tc.want {
			t.Errorf("egressAllowed(%s → %s) = %v, want %v", tc.client, tc.dest, got, tc.want)
		}
	}
}

// connectRaw sends a CONNECT from a loopback source and returns the
// response and the connection's reader.
func connectRaw(t *testing.T, e *env, from, target string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c := dialFrom(t, e.explicit, from)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
	}
	return c, br, resp
}

// Through a CONNECT, the server name is judged: it must be the CONNECT's
// host, its own verdict applies, and the journal records it.
func TestConnectJudgesSNI(t *testing.T) {
	e := newEnv(t)
	o := newTLSOrigin(t)
	op := port(o.Listener.Addr().String())
	roots := o.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tests := []struct {
		name, from, target, sni string
		// connect is the CONNECT's status; ok whether the TLS session completes.
		connect  int
		ok       bool
		host     string // journalled
		category string
	}{
		{"matching name", "127.0.0.1", "example.com:" + op, "example.com", 200, true, "example.com", ""},
		{"letter case and final dot", "127.0.0.1", "Example.COM.:" + op, "example.com", 200, true, "example.com", ""},
		{"allowed host, other allowed name", "127.0.0.1", "example.com:" + op, "autre.test", 200, false, "autre.test", catDestination},
		{"allowed host, blocked name", "127.0.0.1", "example.com:" + op, "pornhub.com", 200, false, "pornhub.com", catDestination},
		{"no server name", "127.0.0.1", "example.com:" + op, "", 200, false, "example.com", catNoSNI},
		{"IP literal, no_sni refuse", "127.0.0.1", "127.0.0.1:" + op, "site.test", 403, false, "127.0.0.1", catIPLiteral},
		{"IP literal, no_sni allow, name leads there", "127.0.0.3", "127.0.0.1:" + op, "site.test", 200, true, "site.test", ""},
		{"IP literal, no_sni allow, name leads elsewhere", "127.0.0.3", "127.0.0.1:" + op, "forge.test", 200, false, "forge.test", catDestination},
		{"IP literal, no_sni allow, blocked name", "127.0.0.3", "127.0.0.1:" + op, "bloque.test", 200, false, "bloque.test", "academie_bloque"},
		{"no server name, no_sni allow", "127.0.0.3", "example.com:" + op, "", 200, true, "example.com", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := len(e.journal.Records())
			c, br, resp := connectRaw(t, e, tc.from, tc.target)
			if resp.StatusCode != tc.connect {
				t.Fatalf("CONNECT answered %s, want %d", resp.Status, tc.connect)
			}
			if tc.connect == 200 {
				cfg := &tls.Config{ServerName: tc.sni, RootCAs: roots}
				if tc.sni == "" || tc.ok && tc.sni != "example.com" {
					// The test origin's certificate names example.com.
					cfg.InsecureSkipVerify = true
				}
				tc2 := tls.Client(&bufConn{Conn: c, r: br}, cfg)
				err := tc2.Handshake()
				if (err == nil) != tc.ok {
					t.Fatalf("handshake error %v, want success %v", err, tc.ok)
				}
				c.Close()
			}
			r := e.navAfter(seen, tc.host)
			wantVerdict := "allow"
			if tc.category != "" {
				wantVerdict = "block"
			}
			if r.Verdict != wantVerdict || r.Category != tc.category && tc.category != "" || r.Proto != "connect" {
				t.Errorf("record %+v", r)
			}
		})
	}
}

// bufConn reads through the reader that read the CONNECT's response.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// The explicit proxy reaches neither the gateway's own services nor any
// port but the profile's, for CONNECT and plain HTTP alike.
func TestExplicitRefusesForbiddenDestinations(t *testing.T) {
	// The real check: no loopback allowance here.
	e := newEnv(t, func(c *Config, _ *Deps) { c.AllowDestinations = nil })
	metrics, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer metrics.Close()
	var reached atomic.Int64
	go func() {
		for {
			c, err := metrics.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	e.mu.Lock()
	e.names["metadata.test"] = []netip.Addr{netip.MustParseAddr("169.254.169.254")}
	e.mu.Unlock()
	for _, tc := range []struct {
		name, from, target string
		category           string
	}{
		{"control plane", "127.0.0.3", "127.0.0.1:8080", catPort},
		{"control plane, port allowed", "127.0.0.3", "127.0.0.1:10080", catForbidden},
		{"metrics port", "127.0.0.3", metrics.Addr().String(), catForbidden},
		{"metrics port by name", "127.0.0.1", "site.test:" + port(metrics.Addr().String()), catForbidden},
		{"SSH port on the internet", "127.0.0.1", "example.com:2222", catPort},
		{"link-local by name", "127.0.0.1", "metadata.test:443", catForbidden},
		{"IPv6 loopback", "127.0.0.3", "[::1]:443", catForbidden},
	} {
		t.Run("CONNECT "+tc.name, func(t *testing.T) {
			seen := len(e.journal.Records())
			_, _, resp := connectRaw(t, e, tc.from, tc.target)
			if resp.StatusCode != 403 {
				t.Fatalf("CONNECT %s answered %s", tc.target, resp.Status)
			}
			host, _, _ := splitTarget(tc.target, 443)
			if r := e.navAfter(seen, host); r.Verdict != "block" || r.Category != tc.category {
				t.Errorf("record %+v, want category %s", r, tc.category)
			}
		})
	}
	c := e.client("", nil)
	for _, u := range []string{
		"http://127.0.0.1:8080/api/v1/health",
		"http://" + metrics.Addr().String() + "/metrics",
		"http://site.test:" + port(metrics.Addr().String()) + "/debug/pprof/",
		"http://metadata.test/latest/meta-data/",
		"http://[::1]:8080/",
	} {
		t.Run("GET "+u, func(t *testing.T) {
			resp, err := c.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 || !strings.Contains(string(body), "Destination interdite") {
				t.Fatalf("%s\n%s", resp.Status, body)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the loopback service was reached %d times", n)
	}
}

// navAfter waits for the first navigation record for host among those
// after the first seen ones.
func (e *env) navAfter(seen int, host string) journal.Record {
	e.t.Helper()
	for i := 0; i < 300; i++ {
		recs := e.journal.Records()
		for j := seen; j < len(recs); j++ {
			if recs[j].Stream == journal.Navigation && recs[j].Host == host {
				return recs[j]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no new navigation record for %q", host)
	return journal.Record{}
}
