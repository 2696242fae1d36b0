package edge

import (
	"context"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
)

func TestDNSConfigDecoding(t *testing.T) {
	load := configLoader(t)
	c, err := load(`dns:
  listen: "10.10.0.1:53"
  upstreams: ["198.51.100.53", "198.51.100.54:5353"]
  timeout: 1500ms
  cache: {entries: 50000, min_ttl: 5s, max_ttl: 6h, negative_max_ttl: 30m}
  rate_limit: {qps: 200, burst: 400}
  block_ttl: 10s
  blockpage_ipv4: 10.10.0.1
  blockpage_ipv6: "fd00::1"
  safesearch_targets: {qwant: safe.qwant.example}
`)
	if err != nil {
		t.Fatal(err)
	}
	sc := c.DNS
	if sc.Timeout != 1500*time.Millisecond || sc.Cache.Entries != 50000 || sc.Cache.MaxTTL != 6*time.Hour || sc.RateLimit.QPS != 200 ||
		sc.BlockTTL != 10*time.Second || sc.BlockPageIPv4.String() != "10.10.0.1" || sc.BlockPageIPv6.String() != "fd00::1" ||
		len(sc.Upstreams) != 2 || sc.SafeSearchTargets["qwant"] != "safe.qwant.example" {
		t.Errorf("decoded %+v", sc)
	}
	wantConfigErrors(t, load, []configError{
		{"dns:\n  listne: \":53\"\n", "listne"},
		{"dns:\n  cache: {size: 3}\n", "size"},
		{"dns:\n  timeout: soon\n", "line 5"},
		{"dns:\n  blockpage_ipv4: bloque\n", `"bloque"`},
	})
}

// TestStartDNS runs the DNS component as the edge wires it: on the edge's
// generation, registry and journal, stopped by Shutdown.
func TestStartDNS(t *testing.T) {
	reg := prometheus.NewRegistry()
	jr := &journal.Memory{}
	e, port := dnsEdge(t, Config{DNS: DNSConfig{Listen: "127.0.0.1:0"}}, reg, jr)
	if err := e.startDNS(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	if r := queryCanary(t, port, ""); r.Rcode != mdns.RcodeNameError {
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
