package export

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
)

// TestExportFlows exports a connexions stream where the proxy's records
// and conntrack's flow records alternate: the flow fields reach the JSON
// Lines and the CSV under their French names, and the export verifies.
func TestExportFlows(t *testing.T) {
	dir := t.TempDir()
	st, err := archive.OpenSQLite(filepath.Join(dir, "archive.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	arch, err := archive.New(archive.Options{Store: st, Now: func() time.Time { return day0.Add(48 * time.Hour) },
		EdgeKey: func(context.Context, string) (ed25519.PublicKey, error) {
			return edgeKey.Public().(ed25519.PublicKey), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := segment.Open(segment.Options{Dir: filepath.Join(dir, "c"), UAI: uai, Stream: journal.Connexions, Key: edgeKey,
		CommitInterval: time.Millisecond, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	g := journaltest.New(5, uai, day0)
	var want []journal.Record
	for i := 0; i < 400; i++ {
		r := g.Next(journal.Connexions)
		if i%2 == 1 {
			r = g.Flow()
		}
		journal.Canonicalize(&r)
		r.Seq = uint64(i + 1)
		want = append(want, r)
		l.Append(&r)
	}
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	l.WaitSealed(ctx)
	segs, _ := l.Sealed()
	for _, sg := range segs {
		data, _ := os.ReadFile(sg.Path)
		if _, err := arch.Ingest(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	w := &world{store: st}
	data, _ := export(t, w, baseRequest(day0, day0.Add(24*time.Hour)))
	if _, err := Verify(bytes.NewReader(data), int64(len(data)), cpPub); err != nil {
		t.Fatal(err)
	}
	got := readJSONL(t, data, journal.Connexions)
	if len(got) != len(want) {
		t.Fatalf("%d records exported, want %d", len(got), len(want))
	}
	drops := 0
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
		if got[i].Verdict == "drop" {
			drops++
		}
	}
	if drops == 0 {
		t.Fatal("the generator made no dropped flow: the test proves nothing")
	}
	zr, _ := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	rc, err := zr.Open("connexions.csv")
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(rc)
	for _, s := range []string{"Motif du rejet", "Zone", "Fin", ";drop;", ";internet.", ";proxy;", ";pedagogique;"} {
		if !strings.Contains(string(csv), s) {
			t.Errorf("connexions.csv lacks %q", s)
		}
	}
}
