package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"vigie/demo"
	plan "vigie/rules/firewall"
	"vigie/rules/policy"
)

// testConfig is the edge side of the planning package's golden files.
var testConfig = plan.Config{DNSPort: 53, HTTPPort: 3129, HTTPSPort: 3130, ExplicitPort: 3128, MetricsPort: 9153}

// schoolYAML is the planning package's school with every kind of zone.
const schoolYAML = "../../rules/firewall/testdata/school.yaml"

func loadSource(t testing.TB, path, uai string) plan.Source {
	t.Helper()
	var p *policy.Policy
	var err error
	if path == "demo" {
		p, err = demo.Policy("")
	} else {
		p, err = policy.Load(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	src, err := plan.FromPolicy(p, uai)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// goldenCases are the rulesets of rules/firewall/testdata/golden.
func goldenCases(t testing.TB) []struct {
	name string
	src  plan.Source
	cfg  plan.Config
} {
	wan := testConfig
	wan.WANInterface, wan.Masquerade = "wan0", true
	return []struct {
		name string
		src  plan.Source
		cfg  plan.Config
	}{
		{"demo", loadSource(t, "demo", demo.UAI), testConfig},
		{"school", loadSource(t, schoolYAML, "0670001A"), testConfig},
		{"school-wan", loadSource(t, schoolYAML, "0670001A"), wan},
		{"no-zones", plan.Source{School: policy.School{UAI: "0670002B", Name: "Vide"}}, testConfig},
	}
}

// TestGoldenEncode: every reviewed ruleset converts to netlink objects.
func TestGoldenEncode(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := plan.Build(tc.src, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := toObjects(rs); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIntervalElements(t *testing.T) {
	r := func(from, to string) plan.Range {
		return plan.Range{From: netip.MustParseAddr(from), To: netip.MustParseAddr(to)}
	}
	s := plan.Set{Family: plan.IPv4, Ranges: []plan.Range{r("10.10.0.0", "10.10.0.255"), r("255.255.255.0", "255.255.255.255")}}
	var got []string
	for _, e := range intervalElements(s) {
		a, _ := netip.AddrFromSlice(e.Key)
		tag := "start"
		if e.IntervalEnd {
			tag = "end"
		}
		got = append(got, a.String()+"/"+tag)
	}
	// nft's own encoding: an end at zero, then start/end pairs, and no end
	// after a range that reaches the last address.
	want := "0.0.0.0/end 10.10.0.0/start 10.10.1.0/end 255.255.255.0/start"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v\nwant %s", got, want)
	}
}
