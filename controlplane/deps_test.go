package controlplane

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoNetlink: the control plane plans and shows firewalls
// (vigie/rules/firewall) but never links the edge's kernel side: no
// nftables, no netlink, in any of its packages. It names the importer
// when one creeps back.
func TestNoNetlink(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the control plane's packages: %v", err)
	}
	cmd := exec.Command(goCmd, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "vigie/controlplane/...")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for _, imp := range f[1:] {
			if strings.Contains(imp, "nftables") || strings.Contains(imp, "netlink") {
				t.Errorf("%s imports %s: the control plane must not link the edge's kernel side", f[0], imp)
			}
		}
	}
}
