package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/journal/journaltest/sealed"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const uai = "0671234X"

var (
	edgeKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	cpKey    = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	cpPub    = cpKey.Public().(ed25519.PublicKey)
	day0     = time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	fixedNow = func() time.Time { return time.Date(2026, 3, 9, 14, 30, 0, 0, time.UTC) }
)

// world is an archive filled by a real edge journal through real batches.
type world struct {
	store *archive.SQLite
	path  string
	recs  map[journal.Stream][]journal.Record
}

func newWorld(t testing.TB, perStream, batches int, seed uint64) *world {
	t.Helper()
	w := &world{recs: map[journal.Stream][]journal.Record{}}
	in := map[journal.Stream][][]journal.Record{}
	for _, s := range streams {
		g := journaltest.New(seed+uint64(s), uai, day0)
		for b := 0; b < batches; b++ {
			var batch []journal.Record
			for i := 0; i < perStream/batches; i++ {
				r := g.Next(s)
				journal.Canonicalize(&r)
				r.Seq = uint64(len(w.recs[s]) + 1)
				w.recs[s] = append(w.recs[s], r)
				batch = append(batch, r)
			}
			in[s] = append(in[s], batch)
		}
	}
	// A fixed chain identity keeps the golden files stable.
	w.store, w.path = sealed.Archive(t, sealed.Options{UAI: uai, Key: edgeKey, Now: day0.Add(48 * time.Hour),
		Chain: func(s journal.Stream) uint64 { return seed*10 + uint64(s) }}, in)
	return w
}

func export(t testing.TB, w *world, req Request) ([]byte, *Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := Write(context.Background(), &buf, w.store, req, Options{Key: cpKey, Now: fixedNow, Academie: "Académie de Strasbourg", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

func baseRequest(from, to time.Time) Request {
	return Request{UAI: uai, School: "Collège Vauban", From: from, To: to, Reference: "PV 2026/00123", Motive: "Réquisition judiciaire du 5 mars 2026",
		Exporter: "chef.vauban", Role: "chef_etablissement"}
}

// readJSONL returns the records of one JSON Lines file of an export.
func readJSONL(t testing.TB, zipData []byte, s journal.Stream) []journal.Record {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(s.String() + ".jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []journal.Record
	sc := bufio.NewScanner(rc)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		r, _, err := decodeJSONRecord(sc.Bytes(), s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestExportHoldsEveryRecordOfItsRangeOnce(t *testing.T) {
	w := newWorld(t, 3000, 3, 1)
	// A range that cuts through the middle of the traffic.
	from := w.recs[journal.Connexions][500].Time
	to := w.recs[journal.Connexions][2500].Time
	data, m := export(t, w, baseRequest(from, to))
	res, err := Verify(bytes.NewReader(data), int64(len(data)), cpPub)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		var want []journal.Record
		for _, r := range w.recs[s] {
			if !r.Time.Before(from) && r.Time.Before(to) {
				want = append(want, r)
			}
		}
		got := readJSONL(t, data, s)
		if len(got) != len(want) || m.Comptes[s.String()] != int64(len(want)) || res.Records[s.String()] != int64(len(want)) {
			t.Fatalf("%s: exported %d, manifest %d, verified %d, want %d", s, len(got), m.Comptes[s.String()], res.Records[s.String()], len(want))
		}
		seen := map[uint64]bool{}
		for i := range got {
			if seen[got[i].Seq] {
				t.Fatalf("%s: record %d exported twice", s, got[i].Seq)
			}
			seen[got[i].Seq] = true
			if got[i] != want[i] {
				t.Fatalf("%s: record %d:\n got %+v\nwant %+v", s, i, got[i], want[i])
			}
		}
	}
	if !res.Complete {
		t.Fatal("an unfiltered export of a gapless range is not proven complete")
	}
	if res.Unanchored != 0 {
		t.Fatalf("%d unanchored records", res.Unanchored)
	}
}

func TestExportFiltered(t *testing.T) {
	w := newWorld(t, 2000, 2, 2)
	client := w.recs[journal.Navigation][7].Client.Addr()
	for _, tc := range []struct {
		name  string
		set   func(*Request)
		match func(journal.Record) bool
	}{
		{"client", func(r *Request) { r.Client = client }, func(r journal.Record) bool { return r.Client.Addr() == client }},
		{"domain", func(r *Request) { r.Domain = "Google.fr." }, func(r journal.Record) bool { return r.Host == "www.google.fr" }},
		{"mac", func(r *Request) { r.MAC = "02:00:5E:00:07:03" }, func(r journal.Record) bool { return r.MAC == "02:00:5e:00:07:03" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := baseRequest(day0, day0.Add(24*time.Hour))
			tc.set(&req)
			data, _ := export(t, w, req)
			res, err := Verify(bytes.NewReader(data), int64(len(data)), cpPub)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, s := range streams {
				var want []uint64
				for _, r := range w.recs[s] {
					if tc.match(r) {
						want = append(want, r.Seq)
					}
				}
				var got []uint64
				for _, r := range readJSONL(t, data, s) {
					got = append(got, r.Seq)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: exported %v\nwant %v", s, got, want)
				}
				total += len(got)
			}
			if total == 0 {
				t.Fatal("the filter matched nothing: the test proves nothing")
			}
			if res.Complete {
				t.Fatal("a filtered export claims completeness")
			}
		})
	}
}

// rezip rewrites an export with one file's content passed through change.
func rezip(t testing.TB, data []byte, name string, change func([]byte) []byte) []byte {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if f.Name == name {
			b = change(b)
		}
		fw, _ := zw.Create(f.Name)
		fw.Write(b)
	}
	zw.Close()
	return out.Bytes()
}

func TestVerifyDetectsTampering(t *testing.T) {
	w := newWorld(t, 400, 1, 3)
	data, _ := export(t, w, baseRequest(day0, day0.Add(24*time.Hour)))
	if _, err := Verify(bytes.NewReader(data), int64(len(data)), cpPub); err != nil {
		t.Fatal(err)
	}
	flipAt := func(frac float64) func([]byte) []byte {
		return func(b []byte) []byte {
			b = append([]byte(nil), b...)
			i := int(float64(len(b)) * frac)
			// Change a digit or a letter into another one, so that the
			// file still parses and only the hash can tell.
			for ; i < len(b); i++ {
				if b[i] >= '1' && b[i] <= '8' {
					b[i]++
					return b
				}
			}
			b[len(b)/2] ^= 1
			return b
		}
	}
	for _, name := range append([]string{ManifestName, SignatureName, SummaryName}, DataFiles...) {
		for _, frac := range []float64{0.1, 0.5, 0.97} {
			t.Run(fmt.Sprintf("%s at %.0f%%", name, frac*100), func(t *testing.T) {
				bad := rezip(t, data, name, flipAt(frac))
				_, err := Verify(bytes.NewReader(bad), int64(len(bad)), cpPub)
				var p *Problem
				if !errors.As(err, &p) {
					t.Fatalf("not detected: %v", err)
				}
				wantFile := name
				if name == ManifestName {
					wantFile = SignatureName
				}
				if p.File != wantFile {
					t.Fatalf("problem names %q, want %q: %v", p.File, wantFile, err)
				}
			})
		}
	}
	for _, tc := range []struct {
		name string
		data func() []byte
		want string
	}{
		{"line removed", func() []byte {
			return rezip(t, data, "navigation.jsonl", func(b []byte) []byte {
				i := bytes.IndexByte(b, '\n')
				j := bytes.IndexByte(b[i+1:], '\n')
				return append(append([]byte(nil), b[:i+1]...), b[i+1+j+1:]...)
			})
		}, "navigation.jsonl"},
		{"file added", func() []byte {
			var out bytes.Buffer
			zr, _ := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			zw := zip.NewWriter(&out)
			for _, f := range zr.File {
				zw.Copy(f)
			}
			fw, _ := zw.Create("notes.txt")
			fw.Write([]byte("ajout"))
			zw.Close()
			return out.Bytes()
		}, "notes.txt"},
		{"file removed", func() []byte {
			var out bytes.Buffer
			zr, _ := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			zw := zip.NewWriter(&out)
			for _, f := range zr.File {
				if f.Name != "connexions.csv" {
					zw.Copy(f)
				}
			}
			zw.Close()
			return out.Bytes()
		}, "connexions.csv"},
		{"raw byte of the ZIP", func() []byte {
			b := append([]byte(nil), data...)
			b[len(b)*2/3] ^= 0x40
			return b
		}, ""},
		{"truncated", func() []byte { return data[:len(data)-30] }, ""},
		{"date in a local header", func() []byte {
			b := append([]byte(nil), data...)
			b[10] ^= 0x01 // first entry's modification time: no content changes
			return b
		}, "outside the files' contents"},
		{"bytes appended", func() []byte { return append(append([]byte(nil), data...), "PK"...) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.data()
			_, err := Verify(bytes.NewReader(bad), int64(len(bad)), cpPub)
			if err == nil {
				t.Fatal("not detected")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v does not name %s", err, tc.want)
			}
		})
	}
	t.Run("another key", func(t *testing.T) {
		other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
		if _, err := Verify(bytes.NewReader(data), int64(len(data)), other); err == nil || !strings.Contains(err.Error(), "manifest.sig") {
			t.Fatalf("verified with another key: %v", err)
		}
	})
}

func TestRequestValidation(t *testing.T) {
	w := newWorld(t, 10, 1, 4)
	for _, tc := range []struct {
		name string
		set  func(*Request)
		want string
	}{
		{"no reference", func(r *Request) { r.Reference = " " }, "reference"},
		{"no motive", func(r *Request) { r.Motive = "" }, "motive"},
		{"no range", func(r *Request) { r.From = time.Time{} }, "time range"},
		{"reversed range", func(r *Request) { r.From, r.To = r.To, r.From }, "before"},
		{"bad uai", func(r *Request) { r.UAI = "0671" }, "UAI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := baseRequest(day0, day0.Add(time.Hour))
			tc.set(&req)
			_, err := Write(context.Background(), io.Discard, w.store, req, Options{Key: cpKey})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// TestGolden pins the summary page and the CSV layout: review the diff
// after go test -run Golden -update.
func TestGolden(t *testing.T) {
	w := newWorld(t, 40, 1, 5)
	data, _ := export(t, w, baseRequest(day0, day0.Add(24*time.Hour)))
	zr, _ := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	for _, name := range []string{SummaryName, "connexions.csv", "navigation.csv", "navigation.jsonl", ManifestName} {
		rc, err := zr.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		path := filepath.Join("testdata", "golden", name)
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run with -update and review the diff)", name, path)
		}
	}
}

func TestTimeFormatter(t *testing.T) {
	var f timeFormatter
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 3, 2, 8, 15, 4, 123456789, time.UTC), "2026-03-02T09:15:04.123456+01:00"},
		{time.Date(2026, 7, 14, 22, 0, 0, 0, time.UTC), "2026-07-15T00:00:00.000000+02:00"},
		// The spring change: 01:00 UTC is 03:00 summer time.
		{time.Date(2026, 3, 29, 0, 59, 59, 999999000, time.UTC), "2026-03-29T01:59:59.999999+01:00"},
		{time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), "2026-03-29T03:00:00.000000+02:00"},
		{time.Date(1969, 12, 31, 23, 0, 0, 1000, time.UTC), "1970-01-01T00:00:00.000001+01:00"},
	} {
		got := string(f.append(nil, tc.in))
		if got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.in, got, tc.want)
		}
		back, err := parseTime(got)
		if err != nil || !back.Equal(tc.in.Truncate(time.Microsecond)) {
			t.Errorf("%s reads back as %v (%v)", got, back, err)
		}
	}
}
