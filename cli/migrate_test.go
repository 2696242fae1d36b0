package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
	"vigie/controlplane/store/pgtest"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/export"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
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
	jdb := filepath.Join(cp.DataDir, "journal.db")
	fillArchive(t, jdb)
	before := exportArchive(t, openSQLiteArchive(t, jdb))
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
		!strings.Contains(out, "list tree lists/ut1 stored in the database") ||
		!strings.Contains(out, `journal archive moved into schema "ac_test_journal": 2 chains verified on both sides, `) ||
		strings.Contains(out, "held_blocks   0 rows") || !strings.Contains(out, "gaps          1 rows") {
		t.Fatalf("migrate said:\n%s", out)
	}
	moved, err := archive.OpenPostgres(context.Background(), url, archive.PostgresConfig{Schema: "ac_test"})
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	if after := exportArchive(t, moved); !bytes.Equal(before, after) {
		t.Fatalf("the export after the move (%d bytes) differs from the one before (%d bytes)", len(after), len(before))
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

const (
	archiveUAI = "0750001A"
)

var (
	archiveDay = time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	edgeSeal   = ed25519.NewKeyFromSeed(make([]byte, 32))
	cpSeal     = ed25519.NewKeyFromSeed([]byte("vigie migrate test control plane"))
)

func openSQLiteArchive(t *testing.T, path string) *archive.SQLStore {
	t.Helper()
	st, err := archive.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fillArchive ships a real edge journal's sealed segments of both streams
// into the archive at path, one connexions batch missing (a gap), and
// purges connexions under a hold, so that the archive has sealed and held
// blocks, a gap and a hold to move.
func fillArchive(t *testing.T, path string) {
	t.Helper()
	st, err := archive.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := archiveDay.Add(24 * time.Hour)
	arch, err := archive.New(archive.Options{Store: st, Now: func() time.Time { return now },
		EdgeKey: func(context.Context, string) (ed25519.PublicKey, error) {
			return edgeSeal.Public().(ed25519.PublicKey), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	var client journal.Record
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		dir := t.TempDir()
		l, err := segment.Open(segment.Options{Dir: dir, UAI: archiveUAI, Stream: s, Key: edgeSeal, CommitInterval: time.Millisecond, MinFreeBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		g := journaltest.New(uint64(s)+60, archiveUAI, archiveDay)
		for b := 0; b < 4; b++ {
			for i := 0; i < 300; i++ {
				r := g.Next(s)
				journal.Canonicalize(&r)
				if !client.Client.Addr().IsValid() && s == journal.Connexions {
					client = r
				}
				l.Append(&r)
			}
			if err := l.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.WaitSealed(ctx); err != nil {
			t.Fatal(err)
		}
		segs, err := l.Sealed()
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		for i, sg := range segs {
			if s == journal.Connexions && i == 1 {
				continue
			}
			data, err := os.ReadFile(sg.Path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := arch.Ingest(ctx, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	h, err := arch.PlaceHold(ctx, "rssi1", "rssi", "", archive.Hold{UAI: archiveUAI, From: archiveDay, To: archiveDay.Add(24 * time.Hour), Client: client.Client.Addr(), Reference: "PV 12"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Purge(ctx, journal.Connexions, archiveDay.Add(48*time.Hour), []archive.Hold{h}); err != nil {
		t.Fatal(err)
	}
}

// exportArchive is the whole-school export of the archive's day.
func exportArchive(t *testing.T, st archive.Store) []byte {
	t.Helper()
	var b bytes.Buffer
	req := export.Request{UAI: archiveUAI, School: "Collège test", From: archiveDay.Add(-time.Hour), To: archiveDay.Add(48 * time.Hour),
		Reference: "PV 12", Motive: "réquisition", Exporter: "rssi1", Role: "rssi"}
	m, err := export.Write(context.Background(), &b, st, req, export.Options{Key: cpSeal, Now: func() time.Time { return archiveDay.Add(72 * time.Hour) }, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Comptes["navigation"] == 0 || m.Comptes["connexions"] == 0 {
		t.Fatal("nothing exported")
	}
	return b.Bytes()
}
