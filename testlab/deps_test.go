package testlab

import (
	"slices"
	"testing"

	"vigie/tstest"
)

// TestBinaryDoesNotLinkTesting: package testing in the vigie binary means
// test helpers (and their flags and dependencies) shipped to every school
// gateway. The lab's test helpers stay in _test.go files for that reason;
// this fails when any package of the binary imports testing again, and
// names the importers.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	var pkgs, importers []string
	for _, p := range tstest.Imports(t, "vigie") {
		pkgs = append(pkgs, p.Path)
		if slices.Contains(p.Imports, "testing") {
			importers = append(importers, p.Path)
		}
	}
	if !slices.Contains(pkgs, "vigie") || !slices.Contains(pkgs, "vigie/testlab") {
		t.Fatalf("go list -deps vigie listed %d packages without vigie or vigie/testlab: not the binary's graph", len(pkgs))
	}
	if slices.Contains(pkgs, "testing") {
		t.Errorf("the vigie binary links package testing, imported by %v", importers)
	}
}
