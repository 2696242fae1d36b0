package firewall

import (
	"bytes"
	"strings"
	"testing"
	plan "vigie/rules/firewall"

	"go.yaml.in/yaml/v3"

	"vigie/rules/policy"
)

// fuzzInput is the part of a policy the firewall reads, plus the edge's
// side, in YAML: what an RSSI types and a bundle carries.
type fuzzInput struct {
	Zones      []policy.Zone   `yaml:"zones"`
	Unfiltered []string        `yaml:"unfiltered"`
	Firewall   policy.Firewall `yaml:"firewall"`
	WAN        string          `yaml:"wan"`
	Masquerade bool            `yaml:"masquerade"`
}

// FuzzBuild feeds arbitrary zones and matrices to Build: it must refuse
// or produce a ruleset that is whole (every jump, set and counter it
// names exists) and encodable for the kernel, never panic.
func FuzzBuild(f *testing.F) {
	f.Add([]byte(`zones:
  - {name: pedagogique, cidrs: [10.10.0.0/24, "fd00::/64"], interfaces: [lan0], profile: eleves}
  - {name: serveurs, cidrs: [10.40.0.0/24], profile: serveurs}
unfiltered: [serveurs]
firewall:
  flows: [{from: pedagogique, to: serveurs, proto: tcp, ports: ["80", "8000-8100"]}]
  internet: [{from: pedagogique}, {from: serveurs, proto: udp, ports: ["123"], action: deny}]
  management: [{from: internet, proto: tcp, ports: ["22"]}]
wan: wan0
masquerade: true
`))
	f.Add([]byte(`zones: [{name: a, cidrs: [10.0.0.0/8, 10.0.0.0/8]}, {name: b, cidrs: ["10.1.0.0/16"]}]`))
	f.Add([]byte(`zones:
  - {name: pedagogique, cidrs: [10.10.0.0/24, "fd00::/64"], profile: eleves}
  - {name: serveurs, cidrs: [10.40.0.0/24], profile: serveurs}
unfiltered: [serveurs]
firewall:
  internet:
    - {from: pedagogique, proto: udp, ports: ["123"], action: deny}
    - {from: pedagogique, services: [web, dns, ntp]}
    - {from: serveurs, services: [web, ntp]}
    - {from: serveurs, proto: tcp, ports: ["22", "8000-8100"]}
  management:
    - {from: "203.0.113.0/28", services: [metrics]}
    - {from: "2001:db8::/32", proto: tcp, ports: ["22"]}
    - {from: 198.51.100.7, services: [metrics]}
`))
	f.Add([]byte(`zones: [{name: a, interfaces: [eth0]}]
firewall: {internet: [{from: a, proto: icmp}], flows: [{from: a, to: a, ports: ["1-65535"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		var in fuzzInput
		if dec.Decode(&in) != nil {
			return
		}
		src := plan.Source{School: policy.School{UAI: "0670001A", Zones: in.Zones}, Firewall: in.Firewall, Unfiltered: map[string]bool{}}
		for _, u := range in.Unfiltered {
			src.Unfiltered[u] = true
		}
		cfg := plan.Config{DNSPort: 53, HTTPPort: 3129, HTTPSPort: 3130, ExplicitPort: 3128, MetricsPort: 9153,
			WANInterface: in.WAN, Masquerade: in.Masquerade}
		rs, err := plan.Build(src, cfg)
		if err != nil {
			if rs != nil {
				t.Fatal("refused build returned a ruleset")
			}
			if !strings.HasPrefix(err.Error(), "firewall: ") {
				t.Fatalf("error without component: %v", err)
			}
			return
		}
		checkWhole(t, rs)
		if _, err := toObjects(rs); err != nil {
			t.Fatalf("built ruleset does not encode: %v", err)
		}
		if plan.RenderTable(rs) == "" {
			t.Fatal("empty render")
		}
	})
}

// checkWhole verifies that every name a rule uses is defined.
func checkWhole(t *testing.T, rs *plan.Ruleset) {
	t.Helper()
	sets, counters, chains := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range rs.Sets {
		sets[s.Name] = true
		if len(s.Ranges) == 0 {
			t.Fatalf("empty set %s", s.Name)
		}
		for i := 1; i < len(s.Ranges); i++ {
			if !s.Ranges[i-1].To.Next().Less(s.Ranges[i].From) {
				t.Fatalf("set %s: ranges %v and %v touch", s.Name, s.Ranges[i-1], s.Ranges[i])
			}
		}
	}
	for _, c := range rs.Counters {
		counters[c] = true
	}
	for _, c := range rs.Chains {
		chains[c.Name] = true
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			for _, m := range r.Match {
				if (m.Kind == plan.MatchSAddr || m.Kind == plan.MatchDAddr) && !sets[m.Name] {
					t.Fatalf("chain %s: rule %q uses missing set %s", c.Name, plan.RuleText(r), m.Name)
				}
			}
			if r.Counter != "" && !counters[r.Counter] {
				t.Fatalf("chain %s: undeclared counter %s", c.Name, r.Counter)
			}
			if r.Verdict.Kind == plan.Goto && !chains[r.Verdict.Chain] {
				t.Fatalf("chain %s: goto missing chain %s", c.Name, r.Verdict.Chain)
			}
		}
	}
}
