package logs_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/cli"
	"vigie/journal"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
	"vigie/journal/ship"
)

// TestExportDeclaresUncleanStop: an edge journal that restarts after an
// unclean stop declares the loss interval; the export's CSV, resume.html
// and vigie logs verify all say "arrêt brutal : enregistrements
// possiblement perdus entre ... et ...", and resume.html no longer claims
// "la suite complète des enregistrements".
func TestExportDeclaresUncleanStop(t *testing.T) {
	e := newEnv(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	dir := filepath.Join(t.TempDir(), "journal")
	opt := segment.Options{Dir: dir, UAI: monnet, Key: key, CommitInterval: time.Millisecond, MinFreeBytes: -1}
	j, err := segment.OpenJournal(opt)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	g := journaltest.New(5, monnet, start)
	for i := 0; i < 300; i++ {
		for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
			r := g.Next(s)
			j.Append(&r)
		}
	}
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The files as a power cut leaves them: the journal was never closed.
	crashed := filepath.Join(t.TempDir(), "journal")
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	opt.Dir = crashed
	j, err = segment.OpenJournal(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		if j.Log(s).Recovery().Crash == nil {
			t.Fatalf("%s: no loss interval declared", s)
		}
	}
	sh, err := ship.New(ship.Options{Logs: []*segment.Log{j.Log(journal.Connexions), j.Log(journal.Navigation)}, URL: e.http.URL, Token: e.edgeTok})
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export.zip")
	var stdout, stderr bytes.Buffer
	if code := cli.Main([]string{"logs", "export", "--server", e.http.URL, "--token", e.tokens["chef"], "--uai", monnet,
		"--from", start.Add(-time.Hour).Format(time.RFC3339), "--to", time.Now().Add(time.Minute).Format(time.RFC3339), "--reference", "PV crash",
		"-o", out, "--pubkey", e.pubPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("export: exit %d %s%s", code, stdout.String(), stderr.String())
	}
	const says = "arrêt brutal\u00a0: enregistrements possiblement perdus entre le "
	if n := strings.Count(stdout.String(), "Arrêt brutal   : "+says); n != 2 {
		t.Fatalf("vigie logs verify names %d loss intervals, want 2:\n%s", n, stdout.String())
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, name := range []string{"connexions.csv", "navigation.csv", "resume.html"} {
		f, err := zr.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if !strings.Contains(string(b), says) {
			t.Fatalf("%s does not declare the loss interval", name)
		}
		if name == "resume.html" {
			// Records may be missing inside the interval: the summary
			// must not also claim the complete sequence.
			if strings.Contains(string(b), "suite complète") {
				t.Fatalf("resume.html claims the complete sequence after a declared loss")
			}
			if !strings.Contains(string(b), `<p class="warn">Flux`) {
				t.Fatalf("resume.html does not flag the loss interval as a warning")
			}
		}
	}
}
