package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

// TestAdminCoversTheGuide walks what the operator guide asks, through the
// CLI only: a school and its zones, a profile, the flow matrix, an edge
// and its token, the Tester's question, a hold, users and tokens, and
// the JSON output scripts rely on.
func TestAdminCoversTheGuide(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := runAdmin(append([]string{"--server", cp.URL, "--token", cp.RSSIToken}, args...), &out, &errb)
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
	must("0671234X", "schools")
	must("Collège Neuf", "schools", "set", "0679001A", "--name", "Collège Neuf", "--commune", "Sélestat")
	must("10.70.0.0/24", "schools", "zone", "0679001A", "pedagogique", "--cidr", "10.70.0.0/24", "--profile", "eleves")
	must("10.71.0.0/24", "schools", "zone", "0679001A", "wifi", "--cidr", "10.71.0.0/24", "--profile", "invites")
	if out := must("pedagogique", "schools", "zone-remove", "0679001A", "wifi"); strings.Contains(out, "10.71.0.0/24") {
		t.Fatalf("zone not removed:\n%s", out)
	}
	must("gambling", "profiles", "set", "cdi", "--name", "CDI", "--block", "adult,gambling")
	must("cdi", "profiles")
	must("adult", "profiles", "show", "cdi")
	must("profile cdi removed", "profiles", "remove", "cdi")
	must("administratif", "firewall")
	out := must("published serial 2", "publish", "-m", "Collège Neuf")
	_ = out
	// The Tester's answer, from the CLI.
	must("BLOCKED https://www.pornhub.com/", "explain", "https://www.pornhub.com/", "--uai", "0679001A", "--zone", "pedagogique")
	must("ALLOWED eduscol.education.fr", "explain", "eduscol.education.fr", "--uai", "0671234X", "--zone", "pedagogique")
	must("zone pedagogique", "explain", "pornhub.com", "--uai", "0671234X", "--ip", "10.10.0.7", "--draft")
	if out, err := run("explain", "pornhub.com", "--uai", "0671234X", "--zone", "nulle-part"); err == nil || !strings.Contains(err.Error(), "Zone absente") {
		t.Fatalf("unknown zone: %v %s", err, out)
	}
	// Scripts read JSON.
	var ex struct {
		Block bool   `json:"block"`
		List  string `json:"list"`
	}
	out = must(`"block": true`, "--json", "explain", "pornhub.com", "--uai", "0671234X", "--zone", "pedagogique")
	if err := json.Unmarshal([]byte(out), &ex); err != nil || !ex.Block || ex.List == "" {
		t.Fatalf("explain --json: %v %+v\n%s", err, ex, out)
	}
	var edges []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(must("monnet-1", "--json", "edges")), &edges); err != nil || len(edges) == 0 || edges[0].State == "" {
		t.Fatalf("edges --json: %v %+v", err, edges)
	}
	// An edge and its token, shown once; a new token replaces it.
	must("token: vge_", "edges", "add", "0679001A", "--id", "neuf-1")
	must("has a new token", "edges", "token", "neuf-1")
	must("never", "edges", "--uai", "0679001A")
	must("edge neuf-1 removed", "edges", "remove", "neuf-1")
	tokFile := filepath.Join(t.TempDir(), "edge.token")
	if out := must("Its token is in "+tokFile, "edges", "add", "0679001A", "--id", "neuf-2", "--token-out", tokFile); strings.Contains(out, "vge_") {
		t.Fatalf("token printed with --token-out:\n%s", out)
	}
	if b, err := os.ReadFile(tokFile); err != nil || !strings.HasPrefix(string(b), "vge_") {
		t.Fatalf("token file: %v %q", err, b)
	}
	must("control plane up", "wait", "--timeout", "5s")
	if out, err := run("wait", "--edge", "neuf-2", "--timeout", "1s"); err == nil || !strings.Contains(err.Error(), "state never") {
		t.Fatalf("wait for an edge never seen: %v %s", err, out)
	}
	must("safesearch: true", "profiles", "set", "invites", "--add-block", "adult", "--safesearch")
	// The token from a file, as scripts keep it.
	rssiFile := filepath.Join(t.TempDir(), "rssi.token")
	os.WriteFile(rssiFile, []byte(cp.RSSIToken+"\n"), 0o600)
	var o, e bytes.Buffer
	if err := runAdmin([]string{"--server", cp.URL, "--token-file", rssiFile, "schools"}, &o, &e); err != nil || !strings.Contains(o.String(), "0679001A") {
		t.Fatalf("--token-file: %v %s%s", err, o.String(), e.String())
	}
	must("0679001A", "schools", "status", "0679001A")
	// Accounts and tokens.
	must("password: ", "users", "add", "chef.neuf", "--role", "chef_etablissement", "--uai", "0679001A", "--name", "Chef Neuf")
	must("chef.neuf", "users")
	must("account chef.neuf updated", "users", "set", "chef.neuf", "--disable")
	must("token \"script\"", "tokens", "create", "script", "--days", "30")
	must("script", "tokens")
	// Holds need the log archive, which cptest runs too.
	must("ID", "holds")
}

// TestAdminHelpEveryVerb: every noun and every verb of "vigie admin"
// answers -h without a token, walked from the tables the dispatch uses,
// and a noun's -h names all its verbs.
func TestAdminHelpEveryVerb(t *testing.T) {
	t.Setenv("VIGIE_TOKEN", "")
	t.Setenv("VIGIE_TOKEN_FILE", "")
	a := &admin{}
	tables := a.verbTables()
	for noun := range a.nouns() {
		helps := [][]string{{noun, "-h"}}
		for verb := range tables[noun] {
			helps = append(helps, []string{noun, verb, "-h"})
		}
		for _, args := range helps {
			var o, e bytes.Buffer
			if code := Main(append([]string{"admin"}, args...), &o, &e); code != 0 {
				t.Errorf("vigie admin %s: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), e.String())
			}
			if len(args) == 2 {
				for verb := range tables[noun] {
					if !strings.Contains(o.String()+e.String(), verb) {
						t.Errorf("vigie admin %s -h does not name %q:\n%s%s", noun, verb, o.String(), e.String())
					}
				}
			}
		}
	}
	for noun := range tables {
		if _, ok := a.nouns()[noun]; !ok {
			t.Errorf("verb table %q is no admin command", noun)
		}
	}
}

// TestSubcommandHelp: "vigie GROUP -h" lists the subcommands.
func TestSubcommandHelp(t *testing.T) {
	for _, group := range []string{"logs", "admin", "controlplane", "rules", "firewall"} {
		var o, e bytes.Buffer
		if code := Main([]string{group, "-h"}, &o, &e); code != 0 || strings.Contains(o.String()+e.String(), "unknown subcommand") {
			t.Errorf("vigie %s -h: exit %d\n%s%s", group, code, o.String(), e.String())
		}
	}
}
