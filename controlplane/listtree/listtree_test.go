package listtree

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestPackUnpackUT1(t *testing.T) {
	src := filepath.Join("..", "..", "testdata", "blocklists", "ut1")
	packed, err := Pack(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "lists", "ut1-x")
	if err := Unpack(packed, dst, 1<<30); err != nil {
		t.Fatal(err)
	}
	var files int
	filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: differs after pack and unpack (%v)", rel, err)
		}
		files++
		return nil
	})
	t.Logf("%d files, packed %d bytes", files, len(packed))
	if files == 0 {
		t.Fatal("no file in the test tree")
	}
	if err := Unpack(packed, filepath.Join(t.TempDir(), "small"), 1000); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("tree over the bound: %v", err)
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	for _, h := range []tar.Header{
		{Name: "../evil", Typeflag: tar.TypeReg, Size: 1},
		{Name: "/etc/evil", Typeflag: tar.TypeReg, Size: 1},
		{Name: "lien", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
	} {
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		tw.WriteHeader(&h)
		if h.Size > 0 {
			tw.Write([]byte("x"))
		}
		tw.Close()
		zw.Close()
		dir := t.TempDir()
		if err := Unpack(buf.Bytes(), filepath.Join(dir, "t"), 1<<20); err == nil {
			t.Errorf("%q (%c) unpacked", h.Name, h.Typeflag)
		}
		if _, err := os.Stat(filepath.Join(dir, "t")); err == nil {
			t.Errorf("%q: a refused tree was left in place", h.Name)
		}
	}
}
