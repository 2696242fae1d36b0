package firewall

import (
	"fmt"

	"vigie/rules"
	"vigie/rules/policy"
)

// Source is what the firewall needs from a policy, for one school: its
// zones, the académie's flow matrix, and which profiles filter nothing.
type Source struct {
	School   policy.School
	Firewall policy.Firewall
	// Unfiltered holds the profiles that filter nothing (policy
	// "unfiltered: true"): their zones are neither redirected to the
	// filter nor stripped of QUIC and DoT. Every other zone is filtered.
	Unfiltered map[string]bool
}

// FromRuleset takes the source from a compiled policy generation.
func FromRuleset(rs *rules.Ruleset, uai string) (Source, error) {
	s, ok := rs.School(uai)
	if !ok {
		return Source{}, fmt.Errorf("firewall: the policy has no school %q", uai)
	}
	src := Source{School: s, Firewall: rs.Firewall(), Unfiltered: map[string]bool{}}
	for _, z := range s.Zones {
		if id, ok := rs.Profile(z.Profile); ok && rs.ProfileSettings(id).Unfiltered {
			src.Unfiltered[z.Profile] = true
		}
	}
	return src, nil
}

// FromPolicy takes the source from a policy file, without reading its
// lists: rendering a firewall does not need them.
func FromPolicy(p *policy.Policy, uai string) (Source, error) {
	src := Source{Firewall: p.Firewall, Unfiltered: map[string]bool{}}
	found := false
	for _, s := range p.Schools {
		if s.UAI == uai {
			src.School, found = s, true
		}
	}
	if !found {
		return Source{}, fmt.Errorf("firewall: the policy has no school %q", uai)
	}
	for _, pr := range p.Profiles {
		if pr.Unfiltered {
			src.Unfiltered[pr.ID] = true
		}
	}
	return src, nil
}
