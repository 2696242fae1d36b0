package firewall

import (
	"strings"
	"testing"
	plan "vigie/rules/firewall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/rules/policy"
)

// TestMetricsPerInstance: two firewalls, each with its own fresh registry
// and namespace, each show their own series at zero from the first scrape
// (applies by result before any apply, every counted rule right after
// one), and one firewall's metrics never reach the other's registry.
func TestMetricsPerInstance(t *testing.T) {
	src := plan.Source{School: policy.School{UAI: "0670004D", Zones: []policy.Zone{
		{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24"}, Profile: "eleves"},
	}}}
	rs, err := plan.Build(src, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	const before = `
# HELP vigie_firewall_applies_total Firewall rulesets applied, by result (ok, error).
# TYPE vigie_firewall_applies_total counter
vigie_firewall_applies_total{result="error"} 0
vigie_firewall_applies_total{result="ok"} 0
# HELP vigie_firewall_read_errors_total Scrapes that could not read the kernel's firewall counters.
# TYPE vigie_firewall_read_errors_total counter
vigie_firewall_read_errors_total 0
`
	const after = `
# HELP vigie_firewall_dropped_packets_total Packets dropped by the firewall's counted rules, by reason (quic, dot, dns, vpn, ssh, proxy, internet, zone, input, forward, invalid) and source zone.
# TYPE vigie_firewall_dropped_packets_total counter
vigie_firewall_dropped_packets_total{reason="dns",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="dot",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="forward",zone=""} 0
vigie_firewall_dropped_packets_total{reason="input",zone=""} 0
vigie_firewall_dropped_packets_total{reason="input",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="internet",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="invalid",zone=""} 0
vigie_firewall_dropped_packets_total{reason="proxy",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="quic",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="ssh",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="vpn",zone="pedagogique"} 0
vigie_firewall_dropped_packets_total{reason="zone",zone="pedagogique"} 0
`
	// Before an apply there is no table to read: no dropped series yet.
	names := []string{"vigie_firewall_applies_total", "vigie_firewall_read_errors_total", "vigie_firewall_dropped_packets_total"}
	type instance struct {
		fw  *Firewall
		reg *prometheus.Registry
	}
	var fws []instance
	for range 2 {
		ns := newNS(t)
		reg := prometheus.NewRegistry()
		fw, err := New(Options{NetNS: ns.Fd(), Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		fws = append(fws, instance{fw, reg})
	}
	for i, in := range fws {
		if err := testutil.GatherAndCompare(in.reg, strings.NewReader(before), names...); err != nil {
			t.Errorf("firewall %d before any apply: %v", i, err)
		}
	}
	if err := fws[0].fw.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(fws[0].reg, strings.NewReader(after), "vigie_firewall_dropped_packets_total"); err != nil {
		t.Errorf("applied firewall: %v", err)
	}
	// The second firewall applied nothing: the first one's table and
	// counters must not show in its registry.
	if err := testutil.GatherAndCompare(fws[1].reg, strings.NewReader(before), names...); err != nil {
		t.Errorf("firewall that applied nothing: %v", err)
	}
	if n := testutil.ToFloat64(fws[1].fw.applies.WithLabelValues("ok")); n != 0 {
		t.Errorf("second firewall counts %v applies, want 0", n)
	}
	for i, in := range fws {
		problems, err := testutil.GatherAndLint(in.reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("firewall %d: metric %s: %s", i, p.Metric, p.Text)
		}
	}
}
