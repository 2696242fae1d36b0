package firewall

import (
	"strings"
	"testing"

	"vigie/rules/policy"
)

// The matrix is académie-wide: a line naming a zone that only another
// school has does not concern this school, but a zone no school has is a
// typo and must be refused.
func TestMatrixZonesOfOtherSchools(t *testing.T) {
	p := &policy.Policy{
		Profiles: []policy.Profile{{ID: "eleves"}},
		Schools: []policy.School{
			{UAI: "0670001A", Zones: []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24"}, Profile: "eleves"}}},
			{UAI: "0670002B", Zones: []policy.Zone{
				{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24"}, Profile: "eleves"},
				{Name: "serveurs", CIDRs: []string{"10.40.0.0/24"}, Profile: "eleves"},
			}},
		},
		Firewall: policy.Firewall{
			Flows:    []policy.Flow{{From: "pedagogique", To: "serveurs", Proto: "tcp", Ports: []string{"443"}}},
			Internet: []policy.Flow{{From: "pedagogique", Services: []string{"web"}}, {From: "serveurs", Services: []string{"web"}}},
		},
	}
	cfg := Config{DNSPort: 53, HTTPPort: 3129, HTTPSPort: 3130}
	for _, uai := range []string{"0670001A", "0670002B"} {
		src, err := FromPolicy(p, uai)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Build(src, cfg); err != nil {
			t.Errorf("school %s: %v", uai, err)
		}
	}
	// A standard zone of the guide's IP plan that no school has yet.
	p.Firewall.Internet = append(p.Firewall.Internet, policy.Flow{From: "wifi", Services: []string{"web"}})
	src, _ := FromPolicy(p, "0670001A")
	if _, err := Build(src, cfg); err != nil {
		t.Errorf("standard zone no school has: %v", err)
	}
	p.Firewall.Flows[0].To = "serveur" // no school has it
	src, _ = FromPolicy(p, "0670001A")
	if _, err := Build(src, cfg); err == nil || !strings.Contains(err.Error(), `unknown zone "serveur"`) {
		t.Errorf("typo zone: %v", err)
	}
}
