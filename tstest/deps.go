package tstest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Imports lists, with "go list -deps", every package the patterns need and
// what each imports directly, in go list's order (dependencies first), for
// tests that guard the shape of the import graph (the binary without
// package testing, the control plane without netlink). It runs at the
// module's root, so patterns are import paths.
func Imports(t testing.TB, patterns ...string) []Package {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list packages: %v", err)
	}
	gomod, err := exec.Command(goCmd, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command(goCmd, append([]string{"list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`}, patterns...)...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", strings.Join(patterns, " "), err, stderr)
	}
	var pkgs []Package
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			pkgs = append(pkgs, Package{Path: f[0], Imports: f[1:]})
		}
	}
	return pkgs
}

// Package is one package of an import graph and its direct imports.
type Package struct {
	Path    string
	Imports []string
}
