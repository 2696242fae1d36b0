package testlab

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBinaryDoesNotLinkTesting: package testing in the vigie binary means
// test helpers (and their flags and dependencies) shipped to every school
// gateway. The lab's test helpers stay in _test.go files for that reason;
// this fails when any package of the binary imports testing again, and
// names the importers.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the binary's packages: %v", err)
	}
	gomod, err := exec.Command(goCmd, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command(goCmd, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "vigie")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps vigie: %v\n%s", err, stderr)
	}
	var pkgs, importers []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkgs = append(pkgs, f[0])
		if slices.Contains(f[1:], "testing") {
			importers = append(importers, f[0])
		}
	}
	if !slices.Contains(pkgs, "vigie") || !slices.Contains(pkgs, "vigie/testlab") {
		t.Fatalf("go list -deps vigie listed %d packages without vigie or vigie/testlab: not the binary's graph", len(pkgs))
	}
	if slices.Contains(pkgs, "testing") {
		t.Errorf("the vigie binary links package testing, imported by %v", importers)
	}
}
