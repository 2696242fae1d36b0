package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// TestAdminAgainstControlPlane drives a real control plane with the
// commands an RSSI types: block a domain, publish, watch the edges, roll
// back, read and verify the audit log.
func TestAdminAgainstControlPlane(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		full := append([]string{"--server", cp.URL, "--token", cp.RSSIToken}, args...)
		err := runAdmin(full, &out, &errb)
		return out.String() + errb.String(), err
	}
	must := func(want string, args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("vigie admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(out, want) {
			t.Fatalf("vigie admin %s: output lacks %q:\n%s", strings.Join(args, " "), want, out)
		}
		return out
	}
	must("1 domain(s) added to academie-bloque", "lists", "add", "academie_bloque", "Admin.Example", "-m", "signalement")
	must("domain\tadmin.example\trssi\tsignalement", "lists", "show", "academie_bloque")
	must("1 entrée ajoutée", "diff")
	must("published serial 2", "publish", "-m", "Bloquer admin.example")
	// A per-school exception goes to that school's list of the category,
	// which is created on first use.
	must("added to college-monnet-autorise", "lists", "add", "etablissement_autorise", "--school", "0671234X", "cours.example")
	must("created list academie-bloque-0671234x", "lists", "add", "academie_bloque", "--school", "0671234X", "local.example")
	must("monnet-1", "edges")
	must("rolled back to 1 as serial 3", "rollback", "1", "-m", "erreur")
	must("[rollback to 1] erreur", "versions")
	must("publish", "audit", "--limit", "5")
	must("audit chain verified", "audit", "--verify")
	if out, err := run("lists", "add", "academie_bloque", "pas un domaine"); err == nil || !strings.Contains(err.Error(), "domains[0]") {
		t.Fatalf("bad domain: %v %s", err, out)
	}
	if out, err := run("publish"); err == nil {
		t.Fatalf("publish without a message: %s", out)
	}
	var out, errb bytes.Buffer
	if err := runAdmin([]string{"--server", cp.URL, "--token", "vga_faux", "edges"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
}
