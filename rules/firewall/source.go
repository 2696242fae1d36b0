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
	// OtherSchoolsZones are the zone names of the policy's other schools.
	// The matrix is académie-wide: a line naming a zone this school lacks
	// but another school has does not apply here; a name no school has is
	// a typo and refused.
	OtherSchoolsZones map[string]bool
}

// StandardZones are the zone names of the usual IP plan of a collège
// (see the operator guide). The first policy's matrix names them before
// any school exists, so a school lacking one (no guest Wi-Fi) must not
// turn that line into an error: like another school's zone, a standard
// zone a school lacks is simply not this school's business.
var StandardZones = []string{"pedagogique", "administratif", "wifi", "invites", "serveurs"}

func otherZones(schools []policy.School) map[string]bool {
	m := map[string]bool{}
	for _, z := range StandardZones {
		m[z] = true
	}
	for _, s := range schools {
		for _, z := range s.Zones {
			m[z.Name] = true
		}
	}
	return m
}

// FromRuleset takes the source from a compiled policy generation.
func FromRuleset(rs *rules.Ruleset, uai string) (Source, error) {
	s, ok := rs.School(uai)
	if !ok {
		return Source{}, fmt.Errorf("firewall: the policy has no school %q", uai)
	}
	src := Source{School: s, Firewall: rs.Firewall(), Unfiltered: map[string]bool{}, OtherSchoolsZones: otherZones(rs.Schools())}
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
	src := Source{Firewall: p.Firewall, Unfiltered: map[string]bool{}, OtherSchoolsZones: otherZones(p.Schools)}
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
