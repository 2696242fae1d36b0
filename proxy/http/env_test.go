package httpproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/demo"
	"vigie/journal"
	"vigie/proxy/generation"
	"vigie/rules"
	"vigie/rules/policy"
)

// listsDir holds the real UT1 and adult-top1m lists. Tests fail, never
// skip, when they are missing.
const listsDir = "../../testdata/blocklists"

var (
	rulesOnce sync.Once
	rulesSet  *rules.Ruleset
	rulesErr  error
)

// testRuleset is the demo policy on the real lists, plus what the tests
// need: a URL-prefix list, and loopback clients in more zones
// (127.0.0.2 intercepts, 127.0.0.3 allows TLS without SNI, 127.0.0.4
// shows the block page over HTTPS).
func testRuleset(t testing.TB) *rules.Ruleset {
	t.Helper()
	rulesOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(listsDir, "ut1")); err != nil {
			rulesErr = err
			return
		}
		var p *policy.Policy
		if p, rulesErr = demo.Policy(listsDir); rulesErr != nil {
			return
		}
		p.Lists = append(p.Lists, policy.List{
			ID: "test-bloque", Category: "academie_bloque",
			Domains: []string{"bloque.test"},
			URLs:    []string{"site.test/interdit", "example.com/interdit"},
		})
		var eleves policy.Profile
		for i, pr := range p.Profiles {
			if pr.ID == "eleves" {
				// The test origins listen on ephemeral ports.
				p.Profiles[i].ConnectPorts = []string{"443", "10000-65535"}
				eleves = p.Profiles[i]
			}
		}
		geres := eleves
		geres.ID, geres.Name, geres.HTTPS = "eleves_geres", "Élèves (postes gérés)", "intercept"
		geres.Windows = nil
		nosni := eleves
		nosni.ID, nosni.NoSNI = "eleves_sans_sni", "allow"
		nosni.Windows = nil
		page := eleves
		page.ID, page.HTTPSBlockPage = "eleves_page", true
		page.Windows = nil
		p.Profiles = append(p.Profiles, geres, nosni, page)
		s := &p.Schools[0]
		s.Zones = append(s.Zones,
			policy.Zone{Name: "geres", CIDRs: []string{"127.0.0.2/32"}, Profile: "eleves_geres"},
			policy.Zone{Name: "sans_sni", CIDRs: []string{"127.0.0.3/32"}, Profile: "eleves_sans_sni"},
			policy.Zone{Name: "page", CIDRs: []string{"127.0.0.4/32"}, Profile: "eleves_page"},
		)
		rulesSet, _, rulesErr = rules.Compile(p)
	})
	if rulesErr != nil {
		t.Fatalf("test policy on the real lists in %s: %v", listsDir, rulesErr)
	}
	return rulesSet
}

// env is one proxy on loopback with its three listeners.
type env struct {
	t        *testing.T
	p        *Proxy
	journal  *journal.Memory
	reg      *prometheus.Registry
	explicit string // host:port
	thttp    string
	thttps   string
	// orig is what the injected OriginalDst answers.
	mu   sync.Mutex
	orig netip.AddrPort
	// names is the resolver's table.
	names map[string][]netip.Addr
}

type envOpt func(*Config, *Deps)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := newEnvNoListen(t, opts...)
	p := e.p
	listen := func(serve func(net.Listener) error) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go serve(ln)
		return ln.Addr().String()
	}
	e.explicit = listen(p.ServeExplicit)
	e.thttp = listen(p.ServeTransparentHTTP)
	e.thttps = listen(p.ServeTransparentHTTPS)
	// Listeners register asynchronously: wait until all three are known.
	for i := 0; len(p.Addrs()) < 3; i++ {
		if i > 500 {
			t.Fatal("listeners never registered")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return e
}

// newEnvNoListen builds the proxy without listeners.
func newEnvNoListen(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, journal: &journal.Memory{}, reg: prometheus.NewRegistry(), names: map[string][]netip.Addr{}}
	lo := netip.MustParseAddr("127.0.0.1")
	for _, n := range []string{"site.test", "bloque.test", "example.com", "autre.test", "1822direkt.com", "ameli.fr"} {
		e.names[n] = []netip.Addr{lo}
	}
	e.names["forge.test"] = []netip.Addr{netip.MustParseAddr("127.0.0.9")}
	var cur generation.Current
	cur.Store(&generation.Generation{Rules: testRuleset(t), Serial: 1, Applied: time.Now()})
	cfg := Config{
		UAI: demo.UAI,
		// The test origins are on loopback, which the destination check
		// refuses otherwise (see destination_test.go for that check).
		AllowDestinations: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		Timeouts:          Timeouts{HeaderRead: 2 * time.Second, ResponseHeader: 2 * time.Second, TunnelIdle: 2 * time.Second, Dial: 2 * time.Second},
	}
	deps := Deps{
		Generation: &cur, Journal: e.journal, Registry: e.reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Resolve: func(ctx context.Context, _ netip.Addr, host string) ([]netip.Addr, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if a, ok := e.names[strings.ToLower(host)]; ok {
				return a, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		},
		OriginalDst: func(net.Conn) (netip.AddrPort, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if !e.orig.IsValid() {
				return e.orig, errors.New("not redirected")
			}
			return e.orig, nil
		},
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

func (e *env) setOrig(a string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a == "" {
		e.orig = netip.AddrPort{}
		return
	}
	e.orig = netip.MustParseAddrPort(a)
}

// client is a net/http client through the explicit proxy, optionally from
// another loopback source address and trusting extra roots.
func (e *env) client(from string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	tr := &http.Transport{
		Proxy:             http.ProxyURL(&url.URL{Scheme: "http", Host: e.explicit}),
		DialContext:       d.DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// records returns the journal's records of one stream, waiting briefly
// for those written when connections close.
func (e *env) records(s journal.Stream, want int) []journal.Record {
	e.t.Helper()
	var out []journal.Record
	for i := 0; i < 300; i++ {
		out = out[:0]
		for _, r := range e.journal.Records() {
			if r.Stream == s {
				out = append(out, r)
			}
		}
		if len(out) >= want {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
	return out
}

// lastNav returns the last navigation record for host.
func (e *env) lastNav(host string) journal.Record {
	e.t.Helper()
	for i := 0; i < 300; i++ {
		recs := e.journal.Records()
		for j := len(recs) - 1; j >= 0; j-- {
			if recs[j].Stream == journal.Navigation && recs[j].Host == host {
				return recs[j]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no navigation record for %q in %+v", host, e.journal.Records())
	return journal.Record{}
}

// testCA is an ECDSA CA like the académie's, for interception.
func testCA(t testing.TB) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Académie de test, AC d'interception"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func withCA(ca *tls.Certificate, roots *x509.CertPool) envOpt {
	return func(c *Config, d *Deps) { c.CA, d.RootCAs = ca, roots }
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
