package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	plan "vigie/rules/firewall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/rules/policy"
	"vigie/testlab/netns"
	"vigie/tstest"
)

// The tests of this file apply rulesets to a real kernel, each in a
// throwaway network namespace. They need root (CI runs as root) and the
// nft command (CI installs it) to compare against nft's own parser.

var nsSeq atomic.Int64

func requireRoot(t *testing.T) {
	t.Helper()
	tstest.RequireRoot(t)
}

// newNS creates a namespace removed when the test ends.
func newNS(t *testing.T) *netns.NS {
	t.Helper()
	requireRoot(t)
	name := fmt.Sprintf("vfw-%d-%d", os.Getpid(), nsSeq.Add(1))
	ns, err := netns.Add(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

func nft(t *testing.T, ns *netns.NS, stdin string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("the nft command is missing (apt-get install nftables): ", err)
	}
	cmd := ns.Command(context.Background(), "nft", args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s in %s: %v\n%s", strings.Join(args, " "), ns.Name, err, out)
	}
	return string(out)
}

var spaces = regexp.MustCompile(`\s+`)

// listing is "nft list table inet vigie" with whitespace folded (nft wraps
// long element lists at its own width).
func listing(t *testing.T, ns *netns.NS) string {
	return spaces.ReplaceAllString(nft(t, ns, "", "list", "table", "inet", plan.TableName), " ")
}

// TestApplyMatchesNft applies each golden ruleset over netlink in one
// namespace and loads its rendered text with nft -f in another: nft must
// list the same table in both. This is what makes the reviewed text the
// truth about what the kernel enforces.
func TestApplyMatchesNft(t *testing.T) {
	requireRoot(t)
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := plan.Build(tc.src, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			viaNetlink, viaText := newNS(t), newNS(t)
			fw, err := New(Options{NetNS: viaNetlink.Fd()})
			if err != nil {
				t.Fatal(err)
			}
			if err := fw.Apply(rs); err != nil {
				t.Fatal(err)
			}
			if err := fw.Verify(rs); err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			if err := plan.Render(&text, rs); err != nil {
				t.Fatal(err)
			}
			nft(t, viaText, text.String(), "-f", "-")
			got, want := listing(t, viaNetlink), listing(t, viaText)
			if got != want {
				t.Fatalf("netlink and nft -f disagree:\nnetlink: %s\nnft -f:  %s", got, want)
			}
			// Applying again replaces the table in place.
			if err := fw.Apply(rs); err != nil {
				t.Fatal(err)
			}
			if again := listing(t, viaNetlink); again != got {
				t.Fatalf("second apply changed the table:\n%s\n%s", again, got)
			}
		})
	}
}

// TestFailedBatchKeepsPrevious sends a batch the kernel refuses (a rule
// counting on a counter that does not exist): the previous ruleset must
// still be in force, whole, and other tables untouched.
func TestFailedBatchKeepsPrevious(t *testing.T) {
	ns := newNS(t)
	nft(t, ns, "table inet other {\n chain c {\n type filter hook input priority 10; policy accept;\n tcp dport 7 counter accept\n }\n}\n", "-f", "-")
	other := spaces.ReplaceAllString(nft(t, ns, "", "list", "table", "inet", "other"), " ")

	good, err := plan.Build(loadSource(t, "demo", "0671234X"), testConfig)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := New(Options{NetNS: ns.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Apply(good); err != nil {
		t.Fatal(err)
	}
	before := listing(t, ns)

	bad, err := plan.Build(loadSource(t, schoolYAML, "0670001A"), testConfig)
	if err != nil {
		t.Fatal(err)
	}
	fwd := bad.Chain("forward")
	fwd.Rules = append(fwd.Rules[:len(fwd.Rules)-1], plan.Rule{Counter: "no-such-counter", Verdict: plan.Verdict{Kind: plan.Drop}})
	err = fw.Apply(bad)
	if err == nil {
		t.Fatal("the kernel accepted a rule counting on a missing counter")
	}
	t.Logf("refused as expected: %v", err)
	if after := listing(t, ns); after != before {
		t.Fatalf("a refused batch changed the table:\nbefore: %s\nafter:  %s", before, after)
	}
	if err := fw.Verify(good); err != nil {
		t.Fatalf("the previous ruleset is not intact: %v", err)
	}
	if got := spaces.ReplaceAllString(nft(t, ns, "", "list", "table", "inet", "other"), " "); got != other {
		t.Fatalf("another tool's table changed:\n%s\n%s", other, got)
	}
	if err := fw.Remove(); err != nil {
		t.Fatal(err)
	}
	if out := nft(t, ns, "", "list", "tables"); strings.Contains(out, "vigie") || !strings.Contains(out, "other") {
		t.Fatalf("remove: tables now %q", out)
	}
}

// TestBigZone applies a zone of 12,000 prefixes (24,000 set elements),
// far more than one netlink message can carry: the elements go in chunks,
// the batch stays whole. BenchmarkApplyBigZone measures bigger ones.
func TestBigZone(t *testing.T) {
	ns := newNS(t)
	src, v4, v6 := bigZone(10000, 2000)
	rs, err := plan.Build(src, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := New(Options{NetNS: ns.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := fw.Apply(rs); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied and verified %d IPv4 + %d IPv6 prefixes in %v", v4, v6, time.Since(start))
	out := nft(t, ns, "", "list", "set", "inet", plan.TableName, "zone_pedagogique_v6")
	if n := strings.Count(out, "fd00:"); n != v6 {
		t.Fatalf("nft lists %d IPv6 prefixes, want %d", n, v6)
	}
	out = nft(t, ns, "", "list", "set", "inet", plan.TableName, "zone_pedagogique_v4")
	if n := strings.Count(out, " 10.64."); n != v4 {
		t.Fatalf("nft lists %d IPv4 prefixes, want %d", n, v4)
	}
}

// bigZone is a school whose one zone has n4 IPv4 and n6 IPv6 prefixes,
// none adjacent (so none merge).
func bigZone(n4, n6 int) (plan.Source, int, int) {
	var cidrs []string
	for i := 0; i < n4; i++ {
		a := netip.AddrFrom4([4]byte{10, 64 + byte(i>>15), byte(i >> 7), byte(i<<1) &^ 1})
		cidrs = append(cidrs, netip.PrefixFrom(a, 32).String())
	}
	for i := 0; i < n6; i++ {
		cidrs = append(cidrs, fmt.Sprintf("fd00:%x::/64", i*2))
	}
	return plan.Source{School: policy.School{UAI: "0670003C", Zones: []policy.Zone{
		{Name: "pedagogique", CIDRs: cidrs, Profile: "eleves"},
	}}, Firewall: policy.Firewall{Internet: []policy.Flow{{From: "pedagogique", Services: []string{"web", "dns", "ntp"}}}}}, n4, n6
}

// TestCountersMove sends packets the firewall drops from a client
// namespace and reads the named counters, directly and as metrics, across
// a table replacement (which zeroes the kernel's counters).
func TestCountersMove(t *testing.T) {
	gw, client := newNS(t), newNS(t)
	ctx := context.Background()
	if err := netns.Veth(ctx, gw, "lan0", client, "eth0"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		ns   *netns.NS
		args []string
	}{
		{gw, []string{"addr", "add", "10.10.0.1/24", "dev", "lan0"}},
		{gw, []string{"link", "set", "lan0", "up"}},
		{client, []string{"addr", "add", "10.10.0.10/24", "dev", "eth0"}},
		{client, []string{"link", "set", "eth0", "up"}},
	} {
		if err := step.ns.IP(ctx, step.args...); err != nil {
			t.Fatal(err)
		}
	}
	src := plan.Source{School: policy.School{UAI: "0670004D", Zones: []policy.Zone{
		{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24"}, Interfaces: []string{"lan0"}, Profile: "eleves"},
	}}}
	rs, err := plan.Build(src, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	fw, err := New(Options{NetNS: gw.Fd(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Apply(rs); err != nil {
		t.Fatal(err)
	}
	// UDP to a port the gateway does not offer to the zone: counted on input.pedagogique.
	send := func(n int) {
		t.Helper()
		c, err := client.Dial(ctx, "udp", "10.10.0.1:9999")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			if _, err := c.Write([]byte("probe")); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(3)
	waitCount(t, fw, "input.pedagogique", 3)
	// A new generation replaces the table: the metric must not go back.
	if err := fw.Apply(rs); err != nil {
		t.Fatal(err)
	}
	send(2)
	waitCount(t, fw, "input.pedagogique", 5)
	want := `
# HELP vigie_firewall_dropped_packets_total Packets dropped by the firewall's counted rules, by reason (quic, dot, dns, vpn, ssh, proxy, internet, zone, input, forward, invalid) and source zone.
# TYPE vigie_firewall_dropped_packets_total counter
vigie_firewall_dropped_packets_total{reason="dns",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="forward",zone=""} 0
vigie_firewall_dropped_packets_total{reason="input",zone=""} 0
vigie_firewall_dropped_packets_total{reason="input",zone="pedagogique"} 5
vigie_firewall_dropped_packets_total{reason="proxy",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="ssh",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="vpn",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="internet",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="invalid",zone=""} 0
vigie_firewall_dropped_packets_total{reason="dot",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="quic",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="zone",zone="pedagogique"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigie_firewall_dropped_packets_total"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(fw.applies.WithLabelValues("ok")); got != 2 {
		t.Fatalf("applies ok = %v, want 2", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

func waitCount(t *testing.T, fw *Firewall, name string, want uint64) {
	t.Helper()
	var got map[string]Count
	if !tstest.WaitFor(5*time.Second, func() bool {
		var err error
		if got, err = fw.Counters(); err != nil {
			t.Fatal(err)
		}
		return got[name].Packets == want
	}) {
		t.Fatalf("counter %s = %d packets, want %d (all: %v)", name, got[name].Packets, want, got)
	}
}

// TestShippedPoliciesPassNftCheck: what "vigie firewall render" prints for
// the policies an operator starts from passes nft's own check (nft -c).
func TestShippedPoliciesPassNftCheck(t *testing.T) {
	ns := newNS(t)
	for _, c := range []struct{ path, uai string }{
		{"../../examples/policy.yaml", "0671234X"},
		{"../../testlab/policy.yaml", "0679999Z"},
		{"demo", "0671234X"},
	} {
		t.Run(c.path, func(t *testing.T) {
			cfg := testConfig
			cfg.WANInterface, cfg.Masquerade = "eth0", true
			rs, err := plan.Build(loadSource(t, c.path, c.uai), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			if err := plan.Render(&text, rs); err != nil {
				t.Fatal(err)
			}
			nft(t, ns, text.String(), "-c", "-f", "-")
		})
	}
}
