// Package ipplan checks and compares the IP plan of one school (its zones:
// prefixes, interfaces and the profile each zone gets) as a technicien of
// the Collectivité proposes it to the académie. The convention has the plan
// "validé conjointement": the département maintains the network, the
// académie decides what filtering each part of it gets, so a proposal is
// refused early, in French and on the field, for what the RSSI would refuse
// anyway: prefixes that overlap another school's or each other, a pupils'
// zone without a filtering profile, malformed prefixes.
//
// The API (controlplane/api) runs Check when a proposal is made and again
// when it is validated, and shows Diff to the RSSI; the web interface shows
// the same diff.
package ipplan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"vigie/rules/policy"
)

// Bounds of one proposal: a collège's plan has a handful of zones.
const (
	MaxZones      = 32
	MaxCIDRs      = 256
	MaxInterfaces = 32
	MaxComment    = 2000
)

// Problem is one reason a proposal is refused, on the field it is about:
// a path in the proposal ("zones[1].cidrs[0]", "zones[0].profile",
// "comment"), or "" for the whole proposal. Text is French.
type Problem struct {
	Field, Text string
}

// String is the form the API lists problems in: "field: text".
func (p Problem) String() string {
	if p.Field == "" {
		return p.Text
	}
	return p.Field + ": " + p.Text
}

// Strings lists problems as the API's problem document does.
func Strings(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// IsPupils reports whether a zone holds the pupils' devices: the IP plan's
// "pedagogique" zone (and variants such as "pedagogique-2" or "eleves"). A
// pupils' zone must get a filtering profile, whoever proposes the plan.
func IsPupils(zone string) bool {
	return strings.HasPrefix(zone, "pedagogique") || strings.HasPrefix(zone, "eleves")
}

// Normalize trims the blanks a form or a script leaves around names,
// prefixes, interfaces and profiles, and drops empty prefixes and
// interfaces; it changes nothing else (a prefix with host bits set is
// reported by Check, not silently masked).
func Normalize(zones []policy.Zone) []policy.Zone {
	out := make([]policy.Zone, 0, len(zones))
	trim := func(ss []string) []string {
		var r []string
		for _, s := range ss {
			if s = strings.TrimSpace(s); s != "" {
				r = append(r, s)
			}
		}
		return r
	}
	for _, z := range zones {
		out = append(out, policy.Zone{Name: strings.TrimSpace(z.Name), CIDRs: trim(z.CIDRs),
			Interfaces: trim(z.Interfaces), Profile: strings.TrimSpace(z.Profile)})
	}
	return out
}

// Check returns the problems of zones proposed as the whole plan of school
// uai, against the policy p (the draft): names, prefixes, interfaces,
// profiles, the pupils' zones, overlaps inside the plan and with every
// other school's prefixes. visible says whether the caller may see a
// school: an overlap with a school outside the caller's scope is reported
// without naming it. An empty result means the proposal may be stored;
// the caller still validates the whole policy with it.
func Check(p *policy.Policy, uai string, zones []policy.Zone, comment string, visible func(uai string) bool) []Problem {
	var out []Problem
	bad := func(field, format string, args ...any) {
		out = append(out, Problem{Field: field, Text: fmt.Sprintf(format, args...)})
	}
	switch c := strings.TrimSpace(comment); {
	case c == "":
		bad("comment", "dites en une phrase pourquoi le plan change : le RSSI la lira avant de décider")
	case utf8.RuneCountInString(c) > MaxComment:
		bad("comment", "%d caractères au plus", MaxComment)
	}
	if len(zones) == 0 {
		bad("zones", "le plan doit garder au moins une zone")
		return out
	}
	if len(zones) > MaxZones {
		bad("zones", "%d zones au plus", MaxZones)
		return out
	}
	profiles := map[string]policy.Profile{}
	for _, pr := range p.Profiles {
		profiles[pr.ID] = pr
	}
	type owned struct {
		prefix netip.Prefix
		zone   string
	}
	var mine []owned
	names := map[string]bool{}
	for j, z := range zones {
		zf := fmt.Sprintf("zones[%d]", j)
		switch {
		case z.Name == "":
			bad(zf+".name", "nommez la zone (pedagogique, administratif, wifi, serveurs, invites…)")
		case !policy.ValidID(z.Name):
			bad(zf+".name", "« %s » n’est pas un nom de zone valide (minuscules, chiffres, _ . -)", z.Name)
		case names[z.Name]:
			bad(zf+".name", "la zone « %s » figure deux fois dans le plan", z.Name)
		}
		names[z.Name] = true

		pr, known := profiles[z.Profile]
		switch {
		case z.Profile == "" && IsPupils(z.Name):
			bad(zf+".profile", "zone des élèves sans profil : choisissez le profil filtré qui s’applique aux élèves")
		case z.Profile == "":
			bad(zf+".profile", "choisissez un profil pour cette zone")
		case !known:
			bad(zf+".profile", "le profil « %s » n’existe pas dans la politique de l’académie", z.Profile)
		case pr.Unfiltered && IsPupils(z.Name):
			bad(zf+".profile", "une zone des élèves ne peut pas recevoir le profil non filtré « %s »", z.Profile)
		}

		if len(z.CIDRs) == 0 && len(z.Interfaces) == 0 {
			bad(zf+".cidrs", "indiquez au moins une plage d’adresses (par exemple 10.67.12.0/24)")
		}
		if len(z.CIDRs) > MaxCIDRs {
			bad(zf+".cidrs", "%d plages au plus par zone", MaxCIDRs)
			continue
		}
		if len(z.Interfaces) > MaxInterfaces {
			bad(zf+".interfaces", "%d interfaces au plus par zone", MaxInterfaces)
		}
		for k, ifn := range z.Interfaces {
			if ifn == "" || len(ifn) > 15 || strings.ContainsAny(ifn, "/ \t\n") {
				bad(fmt.Sprintf("%s.interfaces[%d]", zf, k), "« %s » n’est pas un nom d’interface (1 à 15 caractères, sans espace ni /)", ifn)
			}
		}
		for k, c := range z.CIDRs {
			cf := fmt.Sprintf("%s.cidrs[%d]", zf, k)
			pfx, err := netip.ParsePrefix(strings.TrimSpace(c))
			if err != nil {
				bad(cf, "« %s » n’est pas une plage d’adresses CIDR (par exemple 10.67.12.0/24)", c)
				continue
			}
			if pfx.Masked() != pfx {
				bad(cf, "« %s » n’est pas le début d’une plage : vouliez-vous écrire %s ?", c, pfx.Masked())
				continue
			}
			if clash := slices.IndexFunc(mine, func(o owned) bool { return o.prefix.Overlaps(pfx) }); clash >= 0 {
				o := mine[clash]
				if o.zone == z.Name {
					bad(cf, "la plage %s chevauche la plage %s de la même zone", pfx, o.prefix)
				} else {
					bad(cf, "la plage %s chevauche la plage %s de la zone « %s » de ce plan", pfx, o.prefix, o.zone)
				}
				continue
			}
			mine = append(mine, owned{pfx, z.Name})
			if where := otherSchool(p, uai, pfx, visible); where != "" {
				bad(cf, "la plage %s chevauche %s", pfx, where)
			}
		}
	}
	return out
}

// otherSchool names the first prefix of another school that overlaps pfx,
// "" when none does.
func otherSchool(p *policy.Policy, uai string, pfx netip.Prefix, visible func(string) bool) string {
	for _, s := range p.Schools {
		if s.UAI == uai {
			continue
		}
		for _, z := range s.Zones {
			for _, c := range z.CIDRs {
				o, err := netip.ParsePrefix(c)
				if err != nil || !o.Overlaps(pfx) {
					continue
				}
				if visible != nil && !visible(s.UAI) {
					return "une plage d’un établissement hors de votre périmètre : rapprochez-vous du RSSI de l’académie"
				}
				return fmt.Sprintf("la plage %s de l’établissement %s (%s), zone « %s »", o, s.Name, s.UAI, z.Name)
			}
		}
	}
	return ""
}

// Change kinds of a zone between two plans.
const (
	Added     = "added"
	Removed   = "removed"
	Changed   = "changed"
	Unchanged = "unchanged"
)

// ZoneChange is one zone compared between the plan in force in the draft
// (before) and the plan proposed (after).
type ZoneChange struct {
	Zone   string `json:"zone"`
	Change string `json:"change"`
	// CIDRsAdded and CIDRsRemoved are the prefixes only after, only before.
	CIDRsAdded   []string `json:"cidrs_added,omitempty"`
	CIDRsRemoved []string `json:"cidrs_removed,omitempty"`
	// CIDRsKept are in both.
	CIDRsKept        []string `json:"cidrs_kept,omitempty"`
	ProfileBefore    string   `json:"profile_before,omitempty"`
	ProfileAfter     string   `json:"profile_after,omitempty"`
	InterfacesBefore []string `json:"interfaces_before,omitempty"`
	InterfacesAfter  []string `json:"interfaces_after,omitempty"`
}

// Diff compares two plans zone by zone, in the order of after, then the
// zones after removed. Prefixes compare by their canonical form.
func Diff(before, after []policy.Zone) []ZoneChange {
	var out []ZoneChange
	find := func(zs []policy.Zone, name string) (policy.Zone, bool) {
		i := slices.IndexFunc(zs, func(z policy.Zone) bool { return z.Name == name })
		if i < 0 {
			return policy.Zone{}, false
		}
		return zs[i], true
	}
	for _, a := range after {
		b, ok := find(before, a.Name)
		c := ZoneChange{Zone: a.Name, ProfileAfter: a.Profile, InterfacesAfter: a.Interfaces}
		if !ok {
			c.Change = Added
			c.CIDRsAdded = canonical(a.CIDRs)
			out = append(out, c)
			continue
		}
		c.ProfileBefore, c.InterfacesBefore = b.Profile, b.Interfaces
		ac, bc := canonical(a.CIDRs), canonical(b.CIDRs)
		for _, x := range ac {
			if slices.Contains(bc, x) {
				c.CIDRsKept = append(c.CIDRsKept, x)
			} else {
				c.CIDRsAdded = append(c.CIDRsAdded, x)
			}
		}
		for _, x := range bc {
			if !slices.Contains(ac, x) {
				c.CIDRsRemoved = append(c.CIDRsRemoved, x)
			}
		}
		c.Change = Unchanged
		if len(c.CIDRsAdded) > 0 || len(c.CIDRsRemoved) > 0 || a.Profile != b.Profile || !slices.Equal(a.Interfaces, b.Interfaces) {
			c.Change = Changed
		}
		out = append(out, c)
	}
	for _, b := range before {
		if _, ok := find(after, b.Name); !ok {
			out = append(out, ZoneChange{Zone: b.Name, Change: Removed, CIDRsRemoved: canonical(b.CIDRs),
				ProfileBefore: b.Profile, InterfacesBefore: b.Interfaces})
		}
	}
	return out
}

// Same reports whether two plans are equal zone by zone (order of zones
// and of prefixes aside).
func Same(before, after []policy.Zone) bool {
	if len(before) != len(after) {
		return false
	}
	for _, c := range Diff(before, after) {
		if c.Change != Unchanged {
			return false
		}
	}
	return true
}

// canonical writes prefixes in their canonical form, keeping what does
// not parse as it is (a stored plan is valid; this is for display).
func canonical(cidrs []string) []string {
	out := make([]string, 0, len(cidrs))
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(strings.TrimSpace(c)); err == nil {
			c = p.String()
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}
