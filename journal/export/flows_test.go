package export

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/journaltest"
	"vigie/journal/journaltest/sealed"
)

// TestExportFlows exports a connexions stream where the proxy's records
// and conntrack's flow records alternate: the flow fields reach the JSON
// Lines and the CSV under their French names, and the export verifies.
func TestExportFlows(t *testing.T) {
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
	}
	st, _ := sealed.Archive(t, sealed.Options{UAI: uai, Key: edgeKey, Now: day0.Add(48 * time.Hour)},
		map[journal.Stream][][]journal.Record{journal.Connexions: {want}})
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
