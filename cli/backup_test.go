package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// TestBackupRestore backs up a running control plane, changes it, checks
// that a damaged backup is refused before anything is replaced, then
// restores the backup and finds the control plane as it was.
func TestBackupRestore(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	cfg := filepath.Join(t.TempDir(), "controlplane.yaml")
	// listen is the running control plane's address: restore must see it.
	listen := strings.TrimPrefix(cp.URL, "http://")
	if err := os.WriteFile(cfg, []byte("data_dir: "+cp.DataDir+"\nlisten: "+listen+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		var o, e bytes.Buffer
		code := Main(args, &o, &e)
		return o.String() + e.String(), code
	}
	admin := func(args ...string) string {
		t.Helper()
		out, code := run(append([]string{"admin", "--server", cp.URL, "--token", cp.RSSIToken}, args...)...)
		if code != 0 {
			t.Fatalf("admin %v: %s", args, out)
		}
		return out
	}
	admin("lists", "add", "academie_bloque", "avant.example")
	admin("publish", "-m", "avant la sauvegarde")
	// The backup runs while the control plane serves.
	bdir := filepath.Join(t.TempDir(), "sauvegarde")
	if out, code := run("controlplane", "backup", "--config", cfg, bdir); code != 0 || !strings.Contains(out, "MANIFEST.json") {
		t.Fatalf("backup: %d %s", code, out)
	}
	for _, f := range []string{"vigie.db", "journal.db", "MANIFEST.json", "requisitions/key"} {
		if _, err := os.Stat(filepath.Join(bdir, f)); err != nil {
			t.Fatalf("backup lacks %s", f)
		}
	}
	// The requisitions' AES key opens the exports transmitted to the
	// AQSSI: in the hashed manifest, and no more readable than at home.
	reqKey := filepath.Join(cp.DataDir, "requisitions", "key")
	key, err := os.ReadFile(reqKey)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := os.ReadFile(filepath.Join(bdir, "MANIFEST.json")); !strings.Contains(string(m), `"requisitions/key"`) {
		t.Fatalf("manifest lacks requisitions/key:\n%s", m)
	}
	if fi, err := os.Stat(bdir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("backup directory: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(bdir, "requisitions", "key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backed-up requisitions key: %v %v", fi.Mode(), err)
	}
	if out, code := run("controlplane", "backup", "--config", cfg, bdir); code == 0 || !strings.Contains(out, "not empty") {
		t.Fatalf("backup into a used directory: %d %s", code, out)
	}
	admin("lists", "add", "academie_bloque", "apres.example")
	admin("publish", "-m", "après la sauvegarde")
	// Restoring under a running control plane is refused.
	if out, code := run("controlplane", "restore", "--config", cfg, bdir); code == 0 || !strings.Contains(out, "stop it first") {
		t.Fatalf("restore while running: %d %s", code, out)
	}
	cp.Stop()
	// A pending request arrives after the backup: restore puts it aside.
	pending := filepath.Join(cp.DataDir, "requisitions", "requests", "apres.json")
	os.MkdirAll(filepath.Dir(pending), 0o700)
	if err := os.WriteFile(pending, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A damaged copy: refused, and the data directory is untouched.
	bad := filepath.Join(t.TempDir(), "abimee")
	if out, code := run("controlplane", "backup", "--config", cfg, bad); code != 0 {
		t.Fatalf("second backup: %s", out)
	}
	db := filepath.Join(bad, "vigie.db")
	b, _ := os.ReadFile(db)
	b[len(b)/2] ^= 0xff
	os.WriteFile(db, b, 0o600)
	before, _ := os.ReadFile(filepath.Join(cp.DataDir, "vigie.db"))
	if out, code := run("controlplane", "restore", "--config", cfg, bad); code == 0 || !strings.Contains(out, "vigie.db: size") {
		t.Fatalf("damaged backup restored: %d %s", code, out)
	}
	if after, _ := os.ReadFile(filepath.Join(cp.DataDir, "vigie.db")); !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed vigie.db")
	}
	os.WriteFile(filepath.Join(bad, "intrus"), []byte("x"), 0o600)
	if out, _ := run("controlplane", "restore", "--config", cfg, bad); !strings.Contains(out, "intrus: not in the manifest") {
		t.Fatalf("unlisted file not reported: %s", out)
	}
	out, code := run("controlplane", "restore", "--config", cfg, bdir)
	if code != 0 || !strings.Contains(out, "before-restore-") {
		t.Fatalf("restore: %d %s", code, out)
	}
	if got, err := os.ReadFile(reqKey); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("requisitions key after restore: %v", err)
	}
	if _, err := os.Stat(pending); err == nil {
		t.Fatal("a request made after the backup survived the restore")
	}
	cp.Restart()
	vs := admin("versions")
	if !strings.Contains(vs, "avant la sauvegarde") || strings.Contains(vs, "après la sauvegarde") {
		t.Fatalf("restored versions:\n%s", vs)
	}
	if out := admin("lists", "show", "academie_bloque"); strings.Contains(out, "apres.example") || !strings.Contains(out, "avant.example") {
		t.Fatalf("restored list:\n%s", out)
	}
	admin("audit", "--verify")
}

// TestChecks: "check" validates a configuration without starting
// anything, and names the file and field of each problem.
func TestChecks(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (string, int) {
		var o, e bytes.Buffer
		code := Main(args, &o, &e)
		return o.String() + e.String(), code
	}
	cp := filepath.Join(dir, "cp.yaml")
	os.WriteFile(cp, []byte("data_dir: "+dir+"\nlisten: 127.0.0.1:1\n"), 0o600)
	if out, code := run("controlplane", "check", "--config", cp); code == 0 || !strings.Contains(out, cp+": key:") {
		t.Fatalf("missing key: %d %s", code, out)
	}
	if out, code := run("keys", "generate", "--out", filepath.Join(dir, "academie.key")); code != 0 {
		t.Fatal(out)
	}
	if out, code := run("controlplane", "check", "--config", cp); code != 0 || !strings.Contains(out, "configuration OK") {
		t.Fatalf("good config: %d %s", code, out)
	}
	// The secrets the service reads at start, each missing in turn.
	for _, c := range []struct{ extra, field string }{
		{"database: postgres://vigie@db.example/vigie\ndatabase_password_file: " + dir + "/absent.password\n", "database_password_file"},
		{"sso:\n  issuer: https://idp.example\n  client_id: vigie\n  client_secret_file: " + dir + "/absent.secret\n  redirect_url: https://vigie.example/connexion/academique/retour\n  roles:\n    - {claim: groups, value: vigie-rssi, role: rssi}\n", "sso.client_secret_file"},
	} {
		os.WriteFile(cp, []byte("data_dir: "+dir+"\nlisten: 127.0.0.1:1\n"+c.extra), 0o600)
		if out, code := run("controlplane", "check", "--config", cp); code == 0 || !strings.Contains(out, cp+": "+c.field+":") {
			t.Errorf("missing %s: %d %s", c.field, code, out)
		}
	}
	os.WriteFile(cp, []byte("data_dir: "+dir+"\nlisten: nowhere\n"), 0o600)
	if out, code := run("controlplane", "check", "--config", cp); code == 0 || !strings.Contains(out, "listen:") {
		t.Fatalf("bad listen: %d %s", code, out)
	}
	os.WriteFile(cp, []byte("data_dir: "+dir+"\nlisten_typo: x\n"), 0o600)
	if out, code := run("controlplane", "check", "--config", cp); code == 0 || !strings.Contains(out, "listen_typo") {
		t.Fatalf("unknown field: %d %s", code, out)
	}
	edge := filepath.Join(dir, "edge.yaml")
	base := "uai: 0671234X\nstate_dir: " + dir + "/etat\npublic_key: " + dir + "/academie.key.pub\n"
	os.WriteFile(edge, []byte(base+"controlplane:\n  url: https://cp.example\n  token_file: "+dir+"/absent.token\n"), 0o600)
	if out, code := run("edge", "check", "--config", edge); code == 0 || !strings.Contains(out, "controlplane.token_file") {
		t.Fatalf("missing token: %d %s", code, out)
	}
	os.WriteFile(filepath.Join(dir, "edge.token"), []byte("vge_x\n"), 0o600)
	os.WriteFile(edge, []byte(base+"controlplane:\n  url: https://cp.example\n  token_file: "+dir+"/edge.token\n"), 0o600)
	if out, code := run("edge", "check", "--config", edge); code != 0 || !strings.Contains(out, "configuration OK") {
		t.Fatalf("good edge config: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "etat")); err == nil {
		t.Fatal("check created the state directory")
	}
	good := base + "controlplane:\n  url: https://cp.example\n  token_file: " + dir + "/edge.token\n"
	for _, c := range []struct{ extra, field string }{
		{"identity:\n  radius:\n    listen: 10.20.0.1:1813\n    clients:\n      - address: 10.20.0.2\n        secret_file: " + dir + "/absent.radius\n", "identity.radius.clients[0].secret_file"},
		{"identity:\n  leases:\n    - path: " + dir + "/absent.leases\n      format: isc\n", "identity.leases[0].path"},
		{"journal:\n  key: " + dir + "/absent-journal.key\n", "journal.key"},
	} {
		os.WriteFile(edge, []byte(good+c.extra), 0o600)
		if out, code := run("edge", "check", "--config", edge); code == 0 || !strings.Contains(out, c.field+":") {
			t.Errorf("missing %s: %d %s", c.field, code, out)
		}
	}
	os.WriteFile(edge, []byte(base+"public_key: /absent.pub\n"), 0o600)
	if out, code := run("edge", "check", "--config", edge); code == 0 {
		t.Fatalf("duplicate key accepted: %s", out)
	}
	os.WriteFile(edge, []byte("uai: 0671234X\nstate_dir: "+dir+"\npublic_key: /absent.pub\n"), 0o600)
	if out, code := run("edge", "check", "--config", edge); code == 0 || !strings.Contains(out, "public_key") {
		t.Fatalf("absent key: %d %s", code, out)
	}
}
