package auth

import (
	"strings"
	"testing"
)

func TestScope(t *testing.T) {
	for _, c := range []struct {
		scope, uai string
		want       bool
	}{
		{"", "0681234A", true},
		{"067", "0671234X", true},
		{"067", "0681234A", false},
		{"067,0681234A", "0681234A", true},
		{"067,0681234A", "0681235B", false},
		{"0681234A", "0681234", false},
		{"067", "", false},
	} {
		if got := InScope(c.scope, c.uai); got != c.want {
			t.Errorf("InScope(%q, %q) = %v", c.scope, c.uai, got)
		}
		id := &Identity{Role: Technicien, Scope: c.scope}
		if got := id.CanSeeSchool(c.uai); got != c.want {
			t.Errorf("technicien %q sees %q: %v", c.scope, c.uai, got)
		}
	}
	if (&Identity{Role: RSSI, Scope: "067"}).Scoped() || !(&Identity{Role: Technicien, Scope: "067"}).Scoped() {
		t.Error("Scoped")
	}
	for _, c := range []struct{ in, want, err string }{
		{"", "", ""},
		{" 067 , 0681234a ", "067,0681234A", ""},
		{"67", "67", ""},
		{"Bas-Rhin", "", `element 1 "Bas-Rhin"`},
		{"067,", "", "element 2 is empty"},
		{"06712345X", "", "element 1"},
	} {
		got, err := ParseScope(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseScope(%q): %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseScope(%q) = %q, %v", c.in, got, err)
		}
	}
}
