package controlplane

import (
	"strings"
	"testing"

	"vigie/tstest"
)

// TestNoNetlink: the control plane plans and shows firewalls
// (vigie/rules/firewall) but never links the edge's kernel side: no
// nftables, no netlink, in any of its packages. It names the importer
// when one creeps back.
func TestNoNetlink(t *testing.T) {
	pkgs := tstest.Imports(t, "vigie/controlplane/...")
	if len(pkgs) < 10 {
		t.Fatalf("go list listed %d packages: not the control plane's graph", len(pkgs))
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if strings.Contains(imp, "nftables") || strings.Contains(imp, "netlink") {
				t.Errorf("%s imports %s: the control plane must not link the edge's kernel side", p.Path, imp)
			}
		}
	}
}
