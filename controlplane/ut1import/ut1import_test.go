package ut1import

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/demo"
	"vigie/rules/policy"
)

type tarEntry struct {
	name, body, link string
	typ              byte
}

func makeTarGz(t testing.TB, entries []tarEntry) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link, Size: int64(len(e.body))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// treeTarball packs a directory as UT1 does: everything under blacklists/.
func treeTarball(t *testing.T, dir string) []byte {
	var entries []tarEntry
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		name := "blacklists/" + filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			entries = append(entries, tarEntry{name: name + "/", typ: tar.TypeDir})
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			entries = append(entries, tarEntry{name: name, typ: tar.TypeSymlink, link: target})
		default:
			b, _ := os.ReadFile(p)
			entries = append(entries, tarEntry{name: name, body: string(b)})
		}
		return nil
	})
	return makeTarGz(t, entries)
}

func serve(t *testing.T, files map[string][]byte) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func md5hex(b []byte) string { h := md5.Sum(b); return hex.EncodeToString(h[:]) }

func sampleTree(t *testing.T) string {
	dir, err := demo.WriteSample(filepath.Join(t.TempDir(), "sample"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "ut1")
}

func TestImportTarballOverHTTPS(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	prev := sampleTree(t)
	// The new tree: two domains more in gambling, one less in dating, no chat.
	next := sampleTree(t)
	f, _ := os.OpenFile(filepath.Join(next, "gambling", "domains"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\nnouveau-casino.example\nautre-casino.example\n")
	f.Close()
	dating, _ := os.ReadFile(filepath.Join(next, "dating", "domains"))
	lines := strings.Split(strings.TrimSpace(string(dating)), "\n")
	os.WriteFile(filepath.Join(next, "dating", "domains"), []byte(strings.Join(lines[1:], "\n")+"\n"), 0o644)
	os.RemoveAll(filepath.Join(next, "chat"))
	tgz := treeTarball(t, next)
	srv := serve(t, map[string][]byte{
		"/blacklists/download/blacklists.tar.gz": tgz,
		"/blacklists/download/MD5SUM.LST":        []byte(md5hex([]byte("autre")) + "  ads.tar.gz\n" + md5hex(tgz) + "  blacklists.tar.gz\n"),
	})
	now := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	res, err := Import(ctx, Options{Source: srv.URL + "/blacklists/download/blacklists.tar.gz", Client: srv.Client(),
		DataDir: data, Previous: prev, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res.MD5 != md5hex(tgz) || res.Dir != "lists/ut1-20260901T080000Z" {
		t.Fatalf("result %+v", res)
	}
	got := map[string]CategoryChange{}
	for _, c := range res.Categories {
		got[c.Category] = c
	}
	if c := got["gambling"]; c.Status != "changed" || c.DomainsAdded != 2 || c.DomainsRemoved != 0 {
		t.Errorf("gambling: %+v", c)
	}
	if c := got["dating"]; c.Status != "changed" || c.DomainsRemoved != 1 {
		t.Errorf("dating: %+v", c)
	}
	if c := got["chat"]; c.Status != "removed" {
		t.Errorf("chat: %+v", c)
	}
	if c := got["adult"]; c.Status != "unchanged" {
		t.Errorf("adult: %+v", c)
	}
	// Aliases survive the trip (porn -> adult is a link in the sample).
	if _, err := os.Lstat(filepath.Join(data, res.Dir, "porn")); err != nil {
		t.Errorf("alias lost: %v", err)
	}

	// The draft now points at the imported tree, and the audit says so.
	st, err := store.OpenSQLite(filepath.Join(data, "vigie.db"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	who := publish.Actor{Name: "rssi", Role: "rssi"}
	pol := &policy.Policy{Version: 1, Academie: "A", Sources: []policy.Source{{Name: "ut1", Type: "ut1", Path: "ancien"}},
		Profiles: []policy.Profile{{ID: "p"}}}
	if err := publish.ReplaceDraft(ctx, st, pol, who, now); err != nil {
		t.Fatal(err)
	}
	if err := UpdateDraft(ctx, st, res, who, now); err != nil {
		t.Fatal(err)
	}
	d, _ := st.Draft(ctx)
	if d.Policy.Sources[0].Path != res.Dir {
		t.Fatalf("draft source %+v", d.Policy.Sources)
	}
	es, _ := st.AuditEntries(ctx, 0, 0)
	last := es[len(es)-1]
	if last.Action != "ut1.import" || !strings.Contains(string(last.After), `"gambling"`) || !strings.Contains(string(last.Before), "ancien") {
		t.Fatalf("audit %s %s %s", last.Action, last.Before, last.After)
	}
}

func TestImportRefusals(t *testing.T) {
	ctx := context.Background()
	good := makeTarGz(t, []tarEntry{{name: "blacklists/adult/domains", body: "x.example\n"}})
	tests := []struct {
		name    string
		archive []byte
		md5     string
		source  string
		max     int64
		want    string
	}{
		{"wrong md5", good, md5hex([]byte("x")), "", 0, "does not match"},
		{"no md5 published", good, "-", "", 0, "lists no MD5"},
		{"parent escape", makeTarGz(t, []tarEntry{{name: "../evil", body: "x"}}), "", "", 0, "escapes"},
		{"absolute", makeTarGz(t, []tarEntry{{name: "/etc/evil", body: "x"}}), "", "", 0, "unsafe"},
		{"link out", makeTarGz(t, []tarEntry{{name: "b/l", typ: tar.TypeSymlink, link: "../../etc"}}), "", "", 0, "climb"},
		{"absolute link", makeTarGz(t, []tarEntry{{name: "b/l", typ: tar.TypeSymlink, link: "/etc"}}), "", "", 0, "relative"},
		{"through a link", makeTarGz(t, []tarEntry{{name: "b/adult/", typ: tar.TypeDir}, {name: "b/l", typ: tar.TypeSymlink, link: "adult"},
			{name: "b/l/domains", body: "x"}}), "", "", 0, "under the link"},
		{"hard link", makeTarGz(t, []tarEntry{{name: "b/h", typ: tar.TypeLink, link: "b/x"}}), "", "", 0, "only files"},
		{"device", makeTarGz(t, []tarEntry{{name: "b/d", typ: tar.TypeChar}}), "", "", 0, "only files"},
		{"too big", good, "", "", 10, "larger than"},
		{"not gzip", []byte("ceci n'est pas une archive"), "", "", 0, "not a gzip"},
		{"no category", makeTarGz(t, []tarEntry{{name: "b/README", body: "x"}}), "", "", 0, "no category"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := tt.md5
			switch sum {
			case "":
				sum = md5hex(tt.archive)
			case "-":
				sum = md5hex([]byte("x")) + "  autre.tar.gz"
			}
			srv := serve(t, map[string][]byte{"/bl.tar.gz": tt.archive, "/MD5SUM.LST": []byte(sum + "  bl.tar.gz\n")})
			src := tt.source
			if src == "" {
				src = srv.URL + "/bl.tar.gz"
			}
			data := t.TempDir()
			_, err := Import(ctx, Options{Source: src, Client: srv.Client(), DataDir: data, MaxBytes: tt.max})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			// Nothing is left behind, inside or outside the data directory.
			ents, _ := os.ReadDir(filepath.Join(data, "lists"))
			if len(ents) != 0 {
				t.Fatalf("left %d entries in lists/", len(ents))
			}
			if _, err := os.Lstat(filepath.Join(data, "..", "evil")); err == nil {
				t.Fatal("wrote outside the data directory")
			}
		})
	}
}

func TestImportDirectoryAndPrune(t *testing.T) {
	data := t.TempDir()
	src := sampleTree(t)
	var dirs []string
	for i := 0; i < 3; i++ {
		now := time.Date(2026, 9, 1, 8, 0, i, 0, time.UTC)
		res, err := Import(context.Background(), Options{Source: src, DataDir: data, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, res.Dir)
		if i > 0 && len(res.Changed()) != len(res.Categories) {
			// No Previous given: every category counts as added.
			t.Fatalf("changed %d of %d", len(res.Changed()), len(res.Categories))
		}
	}
	if err := Prune(data, dirs[2]); err != nil {
		t.Fatal(err)
	}
	for i, d := range dirs {
		_, err := os.Stat(filepath.Join(data, d))
		if (err == nil) != (i == 2) {
			t.Errorf("%s present=%v after prune", d, err == nil)
		}
	}
	if _, err := Import(context.Background(), Options{Source: filepath.Join(data, "absent"), DataDir: data}); err == nil {
		t.Fatal("missing directory imported")
	}
}

func TestParseMD5(t *testing.T) {
	h := md5hex([]byte("x"))
	tests := []struct{ text, want string }{
		{h + "\n", h},
		{h + "  blacklists.tar.gz\n", h},
		{h + " *blacklists.tar.gz\n", h},
		{"MD5 (blacklists.tar.gz) = " + h + "\n", h},
		{md5hex([]byte("y")) + "  other.tar.gz\n", ""},
		{"garbage\n", ""},
		{h + "\n" + h + "\n", ""},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, err := parseMD5(strings.NewReader(tt.text), "blacklists.tar.gz", "test")
			if got != tt.want || (err != nil) != (tt.want == "") {
				t.Fatalf("parseMD5(%q) = %q, %v", tt.text, got, err)
			}
		})
	}
}

// FuzzExtract feeds arbitrary archives to the extractor: it must never
// panic or write outside its directory.
func FuzzExtract(f *testing.F) {
	f.Add(makeTarGz(f, []tarEntry{{name: "blacklists/adult/domains", body: "x.example\n"}, {name: "blacklists/porn", typ: tar.TypeSymlink, link: "adult"}}))
	f.Add(makeTarGz(f, []tarEntry{{name: "../x", body: "x"}}))
	f.Add(makeTarGz(f, []tarEntry{{name: "a/l", typ: tar.TypeSymlink, link: "."}, {name: "a/l/l2", typ: tar.TypeSymlink, link: "x"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		archive := filepath.Join(base, "a.tar.gz")
		os.WriteFile(archive, data, 0o644)
		dir := filepath.Join(base, "out")
		extract(archive, dir, 1<<20)
		filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			real, err := filepath.EvalSymlinks(p)
			if err == nil && !strings.HasPrefix(real, base) {
				t.Fatalf("link %s leads outside to %s", p, real)
			}
			return nil
		})
		ents, _ := os.ReadDir(base)
		for _, e := range ents {
			if e.Name() != "a.tar.gz" && e.Name() != "out" {
				t.Fatalf("wrote %s beside the output directory", e.Name())
			}
		}
	})
}

// FuzzParseMD5 reads arbitrary checksum files: an answer is always a
// 32-digit hexadecimal hash.
func FuzzParseMD5(f *testing.F) {
	f.Add(md5hex([]byte("x")) + "  blacklists.tar.gz\n")
	f.Add("MD5 (blacklists.tar.gz) = " + md5hex([]byte("x")) + "\n")
	f.Add(md5hex([]byte("x")))
	f.Fuzz(func(t *testing.T, text string) {
		got, err := parseMD5(strings.NewReader(text), "blacklists.tar.gz", "fuzz")
		if err == nil && !isMD5(got) {
			t.Fatalf("parseMD5 returned %q", got)
		}
	})
}

// TestImportLocalTarballAndPlainHTTP: a tarball on disk is checked
// against the MD5SUM.LST beside it when there is one; plain http works
// with the published MD5 and says it only proves integrity.
func TestImportLocalTarballAndPlainHTTP(t *testing.T) {
	ctx := context.Background()
	archive := treeTarball(t, sampleTree(t))
	dir := t.TempDir()
	tgz := filepath.Join(dir, "blacklists.tar.gz")
	if err := os.WriteFile(tgz, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	// No MD5 file: imported, nothing claimed, and the report says so.
	res, err := Import(ctx, Options{Source: tgz, DataDir: data})
	if err != nil || res.MD5 != "" || len(res.Categories) == 0 || !slices.ContainsFunc(res.Problems, func(p string) bool { return strings.Contains(p, "no MD5 checked") }) {
		t.Fatalf("no MD5: %+v %v", res, err)
	}
	// The MD5 beside it is checked.
	md5File := filepath.Join(dir, "MD5SUM.LST")
	os.WriteFile(md5File, []byte(md5hex(archive)+"  blacklists.tar.gz\n"), 0o644)
	if res, err = Import(ctx, Options{Source: tgz, DataDir: data, Now: func() time.Time { return time.Unix(1, 0) }}); err != nil || res.MD5 != md5hex(archive) || slices.ContainsFunc(res.Problems, func(p string) bool { return strings.Contains(p, "no MD5 checked") }) {
		t.Fatalf("with MD5: %+v %v", res, err)
	}
	os.WriteFile(md5File, []byte(md5hex([]byte("autre"))+"  blacklists.tar.gz\n"), 0o644)
	if _, err = Import(ctx, Options{Source: tgz, DataDir: data}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("wrong MD5 accepted: %v", err)
	}
	if _, err = Import(ctx, Options{Source: filepath.Join(dir, "MD5SUM.LST"), DataDir: data}); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("not a tarball: %v", err)
	}
	// Plain http, with the published MD5.
	files := map[string][]byte{"/bl/blacklists.tar.gz": archive, "/bl/MD5SUM.LST": []byte(md5hex(archive) + "  blacklists.tar.gz\n")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := files[r.URL.Path]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	res, err = Import(ctx, Options{Source: srv.URL + "/bl/blacklists.tar.gz", DataDir: data, Now: func() time.Time { return time.Unix(2, 0) }})
	if err != nil || res.MD5 != md5hex(archive) || len(res.Problems) == 0 || !strings.Contains(res.Problems[0], "plain http") {
		t.Fatalf("plain http: %+v %v", res, err)
	}
	files["/bl/blacklists.tar.gz"] = append([]byte{}, archive[:len(archive)-1]...)
	if _, err = Import(ctx, Options{Source: srv.URL + "/bl/blacklists.tar.gz", DataDir: data}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("tampered http download accepted: %v", err)
	}
}

// TestImportUnchangedKeepsNoCopy: importing the tree the draft already
// uses keeps no second copy.
func TestImportUnchangedKeepsNoCopy(t *testing.T) {
	data := t.TempDir()
	src := sampleTree(t)
	first, err := Import(context.Background(), Options{Source: src, DataDir: data, Now: func() time.Time { return time.Unix(1, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	prev := filepath.Join(data, first.Dir)
	res, err := Import(context.Background(), Options{Source: src, DataDir: data, Previous: prev, Now: func() time.Time { return time.Unix(2, 0) }})
	if err != nil || !res.Unchanged || res.Dir != first.Dir || len(res.Changed()) != 0 {
		t.Fatalf("unchanged import: %+v %v", res, err)
	}
	ents, _ := os.ReadDir(filepath.Join(data, "lists"))
	if len(ents) != 1 {
		t.Fatalf("lists/ holds %d entries, want the one tree", len(ents))
	}
	// One byte changed: a new tree.
	os.WriteFile(filepath.Join(src, "adult", "domains"), []byte("autre.example\n"), 0o644)
	res, err = Import(context.Background(), Options{Source: src, DataDir: data, Previous: prev, Now: func() time.Time { return time.Unix(3, 0) }})
	if err != nil || res.Unchanged || res.Dir == first.Dir {
		t.Fatalf("changed import: %+v %v", res, err)
	}
}

// TestRunCopiesNothingTwiceAndPrunes: Run, as the API and the CLI call
// it, keeps no copy of a tree the draft already uses, and leaves only the
// current tree and the previous one after a change.
func TestRunCopiesNothingTwiceAndPrunes(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	st, err := store.OpenSQLite(filepath.Join(data, "vigie.db"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	who := publish.Actor{Name: "rssi", Role: "rssi"}
	now := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	pol := &policy.Policy{Version: 1, Academie: "A", Profiles: []policy.Profile{{ID: "p"}}}
	if err := publish.ReplaceDraft(ctx, st, pol, who, now); err != nil {
		t.Fatal(err)
	}
	src := sampleTree(t)
	run := func(sec int) *Result {
		t.Helper()
		at := now.Add(time.Duration(sec) * time.Second)
		res, err := Run(ctx, st, Options{Source: src, DataDir: data, Now: func() time.Time { return at }}, who, at)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	trees := func() []string {
		t.Helper()
		ents, err := os.ReadDir(filepath.Join(data, "lists"))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, filepath.Join("lists", e.Name()))
		}
		return out
	}
	first := run(1)
	// The same tree again: nothing copied, the draft keeps its tree.
	second := run(2)
	if !second.Unchanged || second.Dir != first.Dir {
		t.Fatalf("identical import: %+v", second)
	}
	if got := trees(); !slices.Equal(got, []string{first.Dir}) {
		t.Fatalf("after an identical import lists/ holds %v, want [%s]", got, first.Dir)
	}
	// Two changes: the oldest tree goes, current and previous stay.
	os.WriteFile(filepath.Join(src, "adult", "domains"), []byte("autre.example\n"), 0o644)
	third := run(3)
	os.WriteFile(filepath.Join(src, "adult", "domains"), []byte("encore.example\n"), 0o644)
	fourth := run(4)
	want := []string{third.Dir, fourth.Dir}
	slices.Sort(want)
	if got := trees(); !slices.Equal(got, want) || third.Dir == fourth.Dir {
		t.Fatalf("after two changes lists/ holds %v, want %v", got, want)
	}
	if d, _ := st.Draft(ctx); d.Policy.Sources[0].Path != fourth.Dir {
		t.Fatalf("draft source %+v, want %s", d.Policy.Sources, fourth.Dir)
	}
}
