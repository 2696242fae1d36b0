package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
	"vigie/controlplane/store/pgtest"
)

// TestControlplaneMigrate moves a control plane that ran on SQLite into
// PostgreSQL with the command an operator types, then serves from there:
// the audit chain verifies, versions and accounts are all there, and
// publishing goes on from the next serial.
func TestControlplaneMigrate(t *testing.T) {
	pg := pgtest.Start(t)
	cp := cptest.Start(t, cptest.Options{LongPoll: time.Second})
	if s := cp.Block("avant.example"); s != 2 {
		t.Fatalf("serial %d", s)
	}
	cp.Stop()
	url := pg.URL("postgres")
	migrate := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := runControlplane(append([]string{"migrate"}, args...), &out, &errb)
		return out.String() + errb.String(), err
	}
	from := "sqlite:" + filepath.Join(cp.DataDir, "vigie.db")
	out, err := migrate("--from", from, "--to", url, "--schema", "ac_test")
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "audit chain verified on both sides") || !strings.Contains(out, "versions      2 rows") ||
		!strings.Contains(out, "list tree lists/ut1 stored in the database") {
		t.Fatalf("migrate said:\n%s", out)
	}
	// Moving twice into the same schema is refused.
	if out, err := migrate("--from", from, "--to", url, "--schema", "ac_test"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second move: %v\n%s", err, out)
	}
	if _, err := migrate("--from", from, "--to", "postgres://u:pw@h/db"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("inline password: %v", err)
	}

	cp.UseDatabase(url, "ac_test")
	admin := func(want string, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		err := runAdmin(append([]string{"--server", cp.URL, "--token", cp.RSSIToken}, args...), &out, &errb)
		if err != nil || !strings.Contains(out.String(), want) {
			t.Fatalf("vigie admin %s: %v, output lacks %q:\n%s%s", strings.Join(args, " "), err, want, out.String(), errb.String())
		}
	}
	admin("audit chain verified", "audit", "--verify")
	admin("bloque avant.example", "versions")
	if s := cp.Block("apres.example"); s != 3 {
		t.Fatalf("serial after the move %d, want 3", s)
	}
	admin("audit chain verified", "audit", "--verify")
}
