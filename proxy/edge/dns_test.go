package edge

import (
	"context"
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

func TestDNSConfigDecoding(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "edge.yaml")
		os.WriteFile(p, []byte("uai: 0671234X\nstate_dir: "+dir+"\npublic_key: k.pub\n"+body), 0o644)
		return p
	}
	c, err := LoadConfig(write(`dns:
  listen: "10.10.0.1:53"
  upstreams: ["198.51.100.53", "198.51.100.54:5353"]
  timeout: 1500ms
  cache: {entries: 50000, min_ttl: 5s, max_ttl: 6h, negative_max_ttl: 30m}
  rate_limit: {qps: 200, burst: 400}
  block_ttl: 10s
  blockpage_ipv4: 10.10.0.1
  blockpage_ipv6: "fd00::1"
  safesearch_targets: {qwant: safe.qwant.example}
`))
	if err != nil {
		t.Fatal(err)
	}
	sc := c.DNS
	if sc.Timeout != 1500*time.Millisecond || sc.Cache.Entries != 50000 || sc.Cache.MaxTTL != 6*time.Hour || sc.RateLimit.QPS != 200 ||
		sc.BlockTTL != 10*time.Second || sc.BlockPageIPv4.String() != "10.10.0.1" || sc.BlockPageIPv6.String() != "fd00::1" ||
		len(sc.Upstreams) != 2 || sc.SafeSearchTargets["qwant"] != "safe.qwant.example" {
		t.Errorf("decoded %+v", sc)
	}
	for _, tc := range []struct{ body, err string }{
		{"dns:\n  listne: \":53\"\n", "listne"},
		{"dns:\n  cache: {size: 3}\n", "size"},
		{"dns:\n  timeout: soon\n", "line 5"},
		{"dns:\n  blockpage_ipv4: bloque\n", `"bloque"`},
	} {
		if _, err := LoadConfig(write(tc.body)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one naming %q", tc.body, err, tc.err)
		}
	}
}

// TestStartDNS runs the DNS component as the edge wires it: on the edge's
// generation, registry and journal, stopped by Shutdown.
func TestStartDNS(t *testing.T) {
	up, err := net.ListenPacket("udp", "127.0.0.1:0") // an upstream that never answers
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	pub, _, _ := ed25519.GenerateKey(nil)
	reg := prometheus.NewRegistry()
	jr := &journal.Memory{}
	e, err := New(Config{
		UAI: "0671234X", StateDir: t.TempDir(),
		DNS: DNSConfig{Listen: "127.0.0.1:0", Upstreams: []string{up.LocalAddr().String()}},
	}, Deps{PublicKey: pub, Registry: reg, Journal: jr})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := StrictRuleset("0671234X")
	if err != nil {
		t.Fatal(err)
	}
	e.gen.Store(&generation.Generation{Rules: rs, Fallback: true})
	// Listen on a known port: the edge does not expose the server.
	port := freeDNSPort(t)
	e.cfg.DNS.Listen = "127.0.0.1:" + port
	if err := e.startDNS(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	m := new(mdns.Msg)
	m.SetQuestion("use-application-dns.net.", mdns.TypeA)
	r, _, err := (&mdns.Client{Timeout: 2 * time.Second}).Exchange(m, "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != mdns.RcodeNameError {
		t.Errorf("canary: %s", mdns.RcodeToString[r.Rcode])
	}
	if len(jr.Records()) != 1 {
		t.Errorf("journal records: %d", len(jr.Records()))
	}
	fams, _ := reg.Gather()
	found := false
	for _, f := range fams {
		found = found || f.GetName() == "vigie_dns_queries_total"
	}
	if !found {
		t.Error("DNS metrics not on the edge's registry")
	}
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
