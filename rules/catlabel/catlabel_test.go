package catlabel

import (
	"os"
	"strings"
	"testing"
)

// TestEveryUT1Category: each category directory of the real UT1 tree has
// a curated French label, with none of UT1's typos.
func TestEveryUT1Category(t *testing.T) {
	ents, err := os.ReadDir("../../testdata/blocklists/ut1")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			continue
		}
		n++
		l, ok := French(e.Name())
		if !ok || l.Name == "" || l.Desc == "" {
			t.Errorf("category %s has no French label", e.Name())
		}
	}
	if n < 65 {
		t.Fatalf("only %d categories in the UT1 tree", n)
	}
	for id, l := range labels {
		for _, bad := range []string{"Agréssif", "reseaux", "Celebrite", "ARJEL", "'", " :", " ;", " ?", " !"} {
			if strings.Contains(l.Name, bad) || (bad != "ARJEL" && strings.Contains(l.Desc, bad)) {
				t.Errorf("%s: %q in %+v", id, bad, l)
			}
		}
	}
	if got := Name("arjel", ""); !strings.Contains(got, "ANJ") {
		t.Errorf("arjel is %q", got)
	}
	if got := Name("academie-bloque", "Bloqué par l’académie"); got != "Bloqué par l’académie" {
		t.Errorf("a policy category lost its name: %q", got)
	}
}
