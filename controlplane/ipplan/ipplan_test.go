package ipplan

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"vigie/rules/policy"
)

func TestDiff(t *testing.T) {
	before := []policy.Zone{
		{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24"}, Profile: "eleves"},
		{Name: "wifi", CIDRs: []string{"10.30.0.0/24", "10.31.0.0/24"}, Profile: "invites"},
		{Name: "serveurs", CIDRs: []string{"10.40.0.0/24"}, Profile: "serveurs"},
	}
	after := []policy.Zone{
		{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24"}, Profile: "eleves"},
		{Name: "wifi", CIDRs: []string{"10.31.0.0/24", "10.32.0.0/24"}, Profile: "eleves"},
		{Name: "administratif", CIDRs: []string{"FD00:0:0:20::/64"}, Profile: "personnels"},
	}
	want := []ZoneChange{
		{Zone: "pedagogique", Change: Unchanged, CIDRsKept: []string{"10.10.0.0/24"}, ProfileBefore: "eleves", ProfileAfter: "eleves"},
		{Zone: "wifi", Change: Changed, CIDRsKept: []string{"10.31.0.0/24"}, CIDRsAdded: []string{"10.32.0.0/24"}, CIDRsRemoved: []string{"10.30.0.0/24"},
			ProfileBefore: "invites", ProfileAfter: "eleves"},
		{Zone: "administratif", Change: Added, CIDRsAdded: []string{"fd00:0:0:20::/64"}, ProfileAfter: "personnels"},
		{Zone: "serveurs", Change: Removed, CIDRsRemoved: []string{"10.40.0.0/24"}, ProfileBefore: "serveurs"},
	}
	if got := Diff(before, after); !reflect.DeepEqual(got, want) {
		t.Fatalf("diff\n%+v\nwant\n%+v", got, want)
	}
	if Same(before, after) || !Same(before, before) {
		t.Fatal("Same")
	}
	// A profile change alone is a change.
	moved := []policy.Zone{before[0], before[1], {Name: "serveurs", CIDRs: []string{"10.40.0.0/24"}, Profile: "personnels"}}
	if Same(before, moved) {
		t.Fatal("a profile change went unseen")
	}
}

func TestIsPupils(t *testing.T) {
	for name, want := range map[string]bool{"pedagogique": true, "pedagogique-2": true, "eleves": true, "wifi": false, "administratif": false} {
		if IsPupils(name) != want {
			t.Errorf("IsPupils(%q) = %v", name, !want)
		}
	}
}

// TestCheckLimits: a plan past the bounds is refused without looking
// further, and every problem names its field in French.
func TestCheckLimits(t *testing.T) {
	p := &policy.Policy{Profiles: []policy.Profile{{ID: "eleves"}}}
	many := make([]policy.Zone, MaxZones+1)
	if ps := Check(p, "0671234X", many, "x", nil); len(ps) != 1 || ps[0].Field != "zones" {
		t.Fatalf("too many zones: %+v", ps)
	}
	wide := []policy.Zone{{Name: "pedagogique", Profile: "eleves", CIDRs: make([]string, MaxCIDRs+1)}}
	if ps := Check(p, "0671234X", wide, "x", nil); len(ps) != 1 || ps[0].Field != "zones[0].cidrs" {
		t.Fatalf("too many prefixes: %+v", ps)
	}
	long := strings.Repeat("é", MaxComment+1)
	ok := []policy.Zone{{Name: "pedagogique", Profile: "eleves", CIDRs: []string{"10.67.0.0/24"}}}
	if ps := Check(p, "0671234X", ok, long, nil); len(ps) != 1 || ps[0].Field != "comment" {
		t.Fatalf("long comment: %+v", ps)
	}
	if ps := Check(p, "0671234X", ok, "Nouveau plan", nil); len(ps) != 0 {
		t.Fatalf("a good plan refused: %+v", ps)
	}
	bad := []policy.Zone{{Name: "pedagogique", Profile: "eleves", CIDRs: []string{"10.67.0.0/24"}, Interfaces: []string{"eth0/1"}}}
	ps := Check(p, "0671234X", bad, "Nouveau plan", nil)
	if len(ps) != 1 || ps[0].String() != "zones[0].interfaces[0]: « eth0/1 » n’est pas un nom d’interface (1 à 15 caractères, sans espace ni /)" {
		t.Fatalf("interface: %+v", ps)
	}
}

func TestNormalize(t *testing.T) {
	got := Normalize([]policy.Zone{{Name: " wifi ", CIDRs: []string{" 10.30.0.0/24", "", " "}, Interfaces: []string{"wlan0 "}, Profile: " invites"}})
	want := []policy.Zone{{Name: "wifi", CIDRs: []string{"10.30.0.0/24"}, Interfaces: []string{"wlan0"}, Profile: "invites"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v", got)
	}
}

// fieldPaths are the only places a problem may name: the UI maps them to
// its inputs.
var fieldPaths = regexp.MustCompile(`^(comment|zones(\[\d+\]\.(name|profile|cidrs|interfaces)(\[\d+\])?)?)$`)

// FuzzCheck: whatever a technicien sends, Check answers (no panic, no
// hang) with problems on known fields, and a plan it accepts is a valid
// policy.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"pedagogique|10.67.0.0/24|eleves",
		"pedagogique|10.67.0.0/24,10.67.0.128/25|eleves;wifi|10.50.0.0/16|invites",
		"pedagogique||;wifi|10.67.1.0/33|vip",
		"eleves|::1/128,fd00::/8|serveurs;eleves|0.0.0.0/0|eleves",
		"|||;;;",
	} {
		f.Add(s, "Nouveau plan")
	}
	pol := policy.Policy{Version: 1,
		Profiles: []policy.Profile{{ID: "eleves"}, {ID: "invites"}, {ID: "serveurs", Unfiltered: true}},
		Schools: []policy.School{
			{UAI: "0671234X", Name: "Collège Jean Monnet", Zones: []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.67.0.0/24"}, Profile: "eleves"}}},
			{UAI: "0680001A", Name: "Collège Victor Hugo", Zones: []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.50.0.0/24"}, Profile: "eleves"}}},
		}}
	f.Fuzz(func(t *testing.T, spec, comment string) {
		var zones []policy.Zone
		for _, z := range strings.Split(spec, ";") {
			parts := strings.SplitN(z, "|", 3)
			for len(parts) < 3 {
				parts = append(parts, "")
			}
			zones = append(zones, policy.Zone{Name: parts[0], CIDRs: strings.Split(parts[1], ","), Profile: parts[2]})
		}
		zones = Normalize(zones)
		ps := Check(&pol, "0671234X", zones, comment, func(uai string) bool { return strings.HasPrefix(uai, "067") })
		for _, p := range ps {
			if !fieldPaths.MatchString(p.Field) || p.Text == "" {
				t.Fatalf("problem %+v", p)
			}
		}
		if len(ps) > 0 {
			return
		}
		cand := pol
		cand.Schools = append([]policy.School(nil), pol.Schools...)
		cand.Schools[0].Zones = zones
		if err := cand.Validate(); err != nil {
			t.Fatalf("accepted %+v, but the policy refuses it: %v", zones, err)
		}
	})
}
