package edge

import (
	"crypto/ed25519"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
	"vigie/proxy/generation"
)

// configLoader returns a loader of edge.yaml bodies: each is written after
// the fields every edge needs (its state directory a temporary one) and
// read back with LoadConfig.
func configLoader(t *testing.T) func(body string) (Config, error) {
	dir := t.TempDir()
	return func(body string) (Config, error) {
		p := filepath.Join(dir, "edge.yaml")
		if err := os.WriteFile(p, []byte("uai: 0671234X\nstate_dir: "+dir+"\npublic_key: k.pub\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		return LoadConfig(p)
	}
}

// configError is a body LoadConfig must refuse with an error naming err.
type configError struct{ body, err string }

func wantConfigErrors(t *testing.T, load func(string) (Config, error), cases []configError) {
	t.Helper()
	for _, tc := range cases {
		if _, err := load(tc.body); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one naming %q", tc.body, err, tc.err)
		}
	}
}

// dnsEdge is an edge built from cfg (its UAI, state directory and DNS
// upstream filled in when empty: an upstream that never answers) on the
// built-in strict policy, with reg and jr, its DNS filter set to listen on
// a known loopback port (the edge does not expose the server's), which it
// returns. The caller starts the components it tests.
func dnsEdge(t *testing.T, cfg Config, reg *prometheus.Registry, jr journal.Sink) (*Edge, string) {
	t.Helper()
	if len(cfg.DNS.Upstreams) == 0 {
		up, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { up.Close() })
		cfg.DNS.Upstreams = []string{up.LocalAddr().String()}
	}
	if cfg.UAI == "" {
		cfg.UAI = "0671234X"
	}
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	e, err := New(cfg, Deps{PublicKey: pub, Registry: reg, Journal: jr})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := StrictRuleset(cfg.UAI)
	if err != nil {
		t.Fatal(err)
	}
	e.gen.Store(&generation.Generation{Rules: rs, Fallback: true})
	port := freeDNSPort(t)
	e.cfg.DNS.Listen = "127.0.0.1:" + port
	return e, port
}

// queryCanary asks the DNS filter on port for the Firefox DoH canary,
// from the loopback address from ("" for any), and returns the answer.
func queryCanary(t *testing.T, port, from string) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion("use-application-dns.net.", mdns.TypeA)
	c := &mdns.Client{Timeout: 2 * time.Second}
	if from != "" {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}
	}
	r, _, err := c.Exchange(m, "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func freeDNSPort(t *testing.T) string {
	for i := 0; i < 20; i++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return ""
}
