package rules

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris must resolve on a gateway without tzdata.

	"vigie/rules/domainset"
	"vigie/rules/policy"
)

// newRuleset derives everything a Ruleset needs from its plain parts. Both
// Compile and Load go through it, so a bundle loaded at a school behaves
// exactly like the policy compiled at the académie.
func newRuleset(m meta, set *domainset.Set, sets []uint64, words int, urls map[uint64][]urlRule) (*Ruleset, error) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return nil, fmt.Errorf("rules: time zone: %w", err)
	}
	rs := &Ruleset{
		meta: m, domains: set, sets: sets, words: words, urls: urls,
		byName: map[string]ProfileID{}, bySchool: map[schoolProfile]ProfileID{},
		schools: map[string]*schoolZones{}, categories: map[string]int{}, paris: paris,
		vcache: new(verdictCache),
	}
	if words <= 0 || len(sets)%words != 0 || (len(m.Lists)+63)/64 > words {
		return nil, fmt.Errorf("rules: set table of %d words does not fit %d lists", len(sets), len(m.Lists))
	}
	for i, c := range m.Categories {
		rs.categories[c.ID] = i
	}
	for _, l := range m.Lists {
		if _, ok := rs.categories[l.Category]; !ok {
			return nil, fmt.Errorf("rules: list %q: unknown category %q", l.ID, l.Category)
		}
	}
	rs.exprs = make([]*regexp.Regexp, len(m.Lists))
	rs.strictExprs = make([]*regexp.Regexp, len(m.Lists))
	rs.exprEach = make([][]*regexp.Regexp, len(m.Lists))
	rs.strictEach = make([][]*regexp.Regexp, len(m.Lists))
	for i, l := range m.Lists {
		if rs.exprs[i], rs.exprEach[i], err = compileExpr(l.Expressions); err != nil {
			return nil, fmt.Errorf("rules: list %q: %w", l.ID, err)
		}
		if rs.strictExprs[i], rs.strictEach[i], err = compileExpr(l.StrictExpressions); err != nil {
			return nil, fmt.Errorf("rules: list %q: %w", l.ID, err)
		}
	}
	for _, p := range m.Profiles {
		id, err := rs.addProfile(p, "")
		if err != nil {
			return nil, err
		}
		rs.byName[p.ID] = id
	}
	rs.defaultID = rs.strictest("")
	if m.DefaultProfile != "" {
		id, ok := rs.byName[m.DefaultProfile]
		if !ok {
			return nil, fmt.Errorf("rules: default profile %q does not exist", m.DefaultProfile)
		}
		rs.defaultID = id
	}
	for _, s := range m.Schools {
		sz := &schoolZones{profile: map[string]ProfileID{}}
		for _, z := range s.Zones {
			id, err := rs.schoolProfile(s.UAI, z.Profile)
			if err != nil {
				return nil, err
			}
			sz.profile[z.Name] = id
			for _, c := range z.CIDRs {
				pfx, err := netip.ParsePrefix(c)
				if err != nil {
					return nil, fmt.Errorf("rules: school %s zone %s: %w", s.UAI, z.Name, err)
				}
				sz.zones = append(sz.zones, zoneRange{prefix: pfx.Masked(), zone: z.Name, id: id})
			}
		}
		// Longest prefix first, so the first containing range is the most specific.
		slices.SortStableFunc(sz.zones, func(a, b zoneRange) int { return b.prefix.Bits() - a.prefix.Bits() })
		sz.strict = rs.defaultID
		if m.DefaultProfile == "" {
			sz.strict = rs.strictest(s.UAI)
		} else if id, err := rs.schoolProfile(s.UAI, m.DefaultProfile); err == nil {
			sz.strict = id
		}
		rs.schools[s.UAI] = sz
	}
	return rs, nil
}

func compileExpr(patterns []string) (all *regexp.Regexp, each []*regexp.Regexp, err error) {
	if len(patterns) == 0 {
		return nil, nil, nil
	}
	var b strings.Builder
	each = make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		if each[i], err = regexp.Compile(p); err != nil {
			return nil, nil, fmt.Errorf("expression %q: %w", p, err)
		}
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString("(?:")
		b.WriteString(p)
		b.WriteByte(')')
	}
	all, err = regexp.Compile(b.String())
	return all, each, err
}

// schoolProfile returns the profile p as it applies in school uai: the
// profile's own categories plus the school's custom lists.
func (rs *Ruleset) schoolProfile(uai, profile string) (ProfileID, error) {
	key := schoolProfile{uai, profile}
	if id, ok := rs.bySchool[key]; ok {
		return id, nil
	}
	base, ok := rs.byName[profile]
	if !ok {
		return 0, fmt.Errorf("rules: school %s: unknown profile %q", uai, profile)
	}
	id, err := rs.addProfile(rs.profiles[base].Profile, uai)
	if err != nil {
		return 0, err
	}
	rs.bySchool[key] = id
	return id, nil
}

func (rs *Ruleset) listMask(cats []string, school string) []uint64 {
	want := map[string]bool{}
	for _, c := range cats {
		want[c] = true
	}
	mask := make([]uint64, rs.words)
	for i, l := range rs.meta.Lists {
		if want[l.Category] && (l.School == "" || l.School == school) {
			mask[i/64] |= 1 << (i % 64)
		}
	}
	return mask
}

func (rs *Ruleset) addProfile(p policy.Profile, school string) (ProfileID, error) {
	cp := compiledProfile{Profile: p, school: school}
	cp.block = rs.listMask(p.Block, school)
	cp.allow = rs.listMask(p.Allow, school)
	if school != "" {
		// A school's own lists act by their category's usage in every zone.
		for i, l := range rs.meta.Lists {
			if l.School != school {
				continue
			}
			if rs.meta.Categories[rs.categories[l.Category]].Usage == "white" {
				cp.allow[i/64] |= 1 << (i % 64)
			} else {
				cp.block[i/64] |= 1 << (i % 64)
			}
		}
	}
	for _, w := range p.Windows {
		from, to, err := w.Minutes()
		if err != nil {
			return 0, fmt.Errorf("rules: profile %s: %w", p.ID, err)
		}
		cw := compiledWindow{mask: rs.listMask(w.Categories, school), block: w.Action == "block", from: from, to: to}
		for _, d := range w.Days {
			cw.days |= 1 << policy.Days[strings.ToLower(d)]
		}
		if cw.days == 0 {
			cw.days = 0x7F
		}
		cp.windows = append(cp.windows, cw)
	}
	if len(cp.windows) > 64 {
		return 0, fmt.Errorf("rules: profile %s: more than 64 windows", p.ID)
	}
	// Lists that may be blocked at some time: the base blocks and those of
	// block windows. Their expressions are the ones worth running.
	maybe := slices.Clone(cp.block)
	for _, w := range cp.windows {
		if w.block {
			for i := range maybe {
				maybe[i] |= w.mask[i]
			}
		}
	}
	for i := range rs.meta.Lists {
		if (maybe[i/64]>>(i%64))&1 == 1 && (rs.exprs[i] != nil || (p.StrictExpressions && rs.strictExprs[i] != nil)) {
			cp.exprLists = append(cp.exprLists, i)
		}
	}
	if len(rs.profiles) >= 1<<20 {
		return 0, fmt.Errorf("rules: too many profiles")
	}
	rs.profiles = append(rs.profiles, cp)
	return ProfileID(len(rs.profiles) - 1), nil
}

// strictest is the profile blocking the most lists, the safe default for
// a client that belongs to no known zone.
func (rs *Ruleset) strictest(school string) ProfileID {
	best, bestN := ProfileID(0), -1
	for _, p := range rs.meta.Profiles {
		id := rs.byName[p.ID]
		if school != "" {
			if sid, err := rs.schoolProfile(school, p.ID); err == nil {
				id = sid
			}
		}
		cp := &rs.profiles[id]
		if cp.Unfiltered {
			continue
		}
		n := 0
		for _, w := range cp.block {
			n += popcount(w)
		}
		if n > bestN {
			best, bestN = id, n
		}
	}
	return best
}

func popcount(w uint64) int {
	n := 0
	for ; w != 0; w &= w - 1 {
		n++
	}
	return n
}

// Profile returns the académie-wide profile of that name.
func (rs *Ruleset) Profile(name string) (ProfileID, bool) {
	id, ok := rs.byName[name]
	return id, ok
}

// DefaultProfile is the profile for clients in no zone of a known school.
func (rs *Ruleset) DefaultProfile() ProfileID { return rs.defaultID }

// SchoolProfile returns profile name as it applies in school uai.
func (rs *Ruleset) SchoolProfile(uai, name string) (ProfileID, bool) {
	id, ok := rs.bySchool[schoolProfile{uai, name}]
	return id, ok
}

// Zone returns the zone of addr in school uai and the profile it uses.
// Addresses in no zone get the strictest profile and an empty zone name.
func (rs *Ruleset) Zone(uai string, addr netip.Addr) (zone string, id ProfileID) {
	sz, ok := rs.schools[uai]
	if !ok {
		return "", rs.defaultID
	}
	addr = addr.Unmap()
	for i := range sz.zones {
		if sz.zones[i].prefix.Contains(addr) {
			return sz.zones[i].zone, sz.zones[i].id
		}
	}
	return "", sz.strict
}

// ZoneProfile returns the profile of a named zone of a school.
func (rs *Ruleset) ZoneProfile(uai, zone string) (ProfileID, bool) {
	sz, ok := rs.schools[uai]
	if !ok {
		return 0, false
	}
	id, ok := sz.profile[zone]
	return id, ok
}

// ProfileSettings returns the settings of a compiled profile.
func (rs *Ruleset) ProfileSettings(id ProfileID) *policy.Profile {
	if id < 0 || int(id) >= len(rs.profiles) {
		return &rs.profiles[rs.defaultID].Profile
	}
	return &rs.profiles[id].Profile
}

// Category returns the description of a category.
func (rs *Ruleset) Category(id string) (CategoryInfo, bool) {
	i, ok := rs.categories[id]
	if !ok {
		return CategoryInfo{}, false
	}
	return rs.meta.Categories[i], true
}

// Categories returns every category, in compile order.
func (rs *Ruleset) Categories() []CategoryInfo { return rs.meta.Categories }

// Lists returns every list, in compile order.
func (rs *Ruleset) Lists() []ListInfo { return rs.meta.Lists }

// Schools returns the schools of the policy.
func (rs *Ruleset) Schools() []policy.School { return rs.meta.Schools }

// School returns one school.
func (rs *Ruleset) School(uai string) (policy.School, bool) {
	for _, s := range rs.meta.Schools {
		if s.UAI == uai {
			return s, true
		}
	}
	return policy.School{}, false
}

// Academie names the policy's author, and Contact its fallback contact.
func (rs *Ruleset) Academie() string { return rs.meta.Academie }
func (rs *Ruleset) Contact() string  { return rs.meta.Contact }

// Firewall returns the firewall section of the policy.
func (rs *Ruleset) Firewall() policy.Firewall { return rs.meta.Firewall }

// Domains is the number of distinct listed names.
func (rs *Ruleset) Domains() int { return rs.domains.Len() }

// SizeBytes estimates the memory held by the domain structures.
func (rs *Ruleset) SizeBytes() int { return rs.domains.SizeBytes() + len(rs.sets)*8 }
