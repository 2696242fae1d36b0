package edge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
	"vigie/keyfile"
	"vigie/tstest"
)

// TestJournalComponent runs the edge's journal against a real archive on
// loopback: records written through the edge's sink are durable, survive
// a restart, and reach the archive.
func TestJournalComponent(t *testing.T) {
	dir := t.TempDir()
	st, err := archive.OpenSQLite(filepath.Join(dir, "archive.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stateDir := filepath.Join(dir, "state")
	arch, err := archive.New(archive.Options{Store: st, EdgeKey: func(context.Context, string) (ed25519.PublicKey, error) {
		return keyfile.LoadPublic(filepath.Join(stateDir, "journal.key.pub"))
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(arch.IngestHandler())
	defer srv.Close()

	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)).Public().(ed25519.PublicKey)
	cfg := Config{UAI: "0671234X", StateDir: stateDir, ControlPlane: ControlPlaneConfig{URL: srv.URL}}
	mem := &journal.Memory{}
	reg := prometheus.NewRegistry()
	e, err := New(cfg, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PublicKey: pub, Journal: mem, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.startJournalWith(ctx, JournalConfig{ShipInterval: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	g := journaltest.New(1, "0671234X", time.Now().Add(-time.Minute))
	for i := 0; i < 200; i++ {
		r := g.Next(journal.Navigation)
		r.UAI = "" // the journal fills the edge's UAI
		e.journal.Append(&r)
	}
	// The injected sink still sees every record.
	if n := len(mem.Records()); n != 200 {
		t.Fatalf("memory sink got %d records", n)
	}
	n := 0
	if !tstest.WaitFor(10*time.Second, func() bool {
		n = 0
		st.Scan(ctx, archive.Query{UAI: "0671234X", From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}, func(archive.Chain, *archive.Stored) error {
			n++
			return nil
		})
		return n == 200
	}) {
		t.Fatalf("archive holds %d of 200 records after 10 s of shipping", n)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := keyfile.LoadPrivate(filepath.Join(stateDir, "journal.key"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := segment.OpenJournal(segment.Options{Dir: filepath.Join(stateDir, "journal"), UAI: "0671234X", Key: key, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	res, err := j.Log(journal.Navigation).Verify(nil)
	if err != nil || res.LastSeq != 200 {
		t.Fatalf("after restart: %+v %v", res, err)
	}
}
