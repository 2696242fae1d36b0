package requisition

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestVault(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	v, err := Open(dir, 0, clock)
	if err != nil {
		t.Fatal(err)
	}
	if v.Keep() != 30*24*time.Hour {
		t.Fatalf("default keep %v", v.Keep())
	}
	zip := []byte("PK\x03\x04 export signé : Dupont Jean, 10.50.0.12")
	tr, err := v.Put(zip, Transmission{UAI: "0671234X", Reference: "PV 2026/17", Name: "export.zip", TransmittedBy: "chef"})
	if err != nil {
		t.Fatal(err)
	}
	// At rest the file is encrypted: none of its text is readable.
	raw, err := os.ReadFile(filepath.Join(dir, tr.ID+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("Dupont")) || bytes.Contains(raw, []byte("PK\x03\x04")) {
		t.Fatal("the export is stored in clear")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	// A vault reopened with the same key file reads it back.
	v2, err := Open(dir, time.Hour*24*30, clock)
	if err != nil {
		t.Fatal(err)
	}
	got, t2, err := v2.Download(tr.ID, "aqssi")
	if err != nil || !bytes.Equal(got, zip) {
		t.Fatalf("download: %q %v", got, err)
	}
	if t2.DownloadedBy != "aqssi" || !t2.DownloadedAt.Equal(now) {
		t.Fatalf("download not recorded: %+v", t2)
	}
	// An altered file is refused, not served.
	bad := bytes.Clone(raw)
	bad[len(bad)-1] ^= 1
	os.WriteFile(filepath.Join(dir, tr.ID+".bin"), bad, 0o600)
	if _, _, err := v.Download(tr.ID, "aqssi"); err == nil {
		t.Fatal("altered file decrypted")
	}
	os.WriteFile(filepath.Join(dir, tr.ID+".bin"), raw, 0o600)
	if _, _, err := v.Download("../key", "aqssi"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("path in id: %v", err)
	}
	// Not purged before its time, purged after, and then gone.
	if p, err := v.Purge(); err != nil || len(p) != 0 {
		t.Fatalf("early purge: %v %v", p, err)
	}
	now = now.Add(30*24*time.Hour + time.Second)
	if _, _, err := v.Download(tr.ID, "aqssi"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired download: %v", err)
	}
	p, err := v.Purge()
	if err != nil || len(p) != 1 || p[0].ID != tr.ID {
		t.Fatalf("purge: %v %v", p, err)
	}
	if _, err := os.Stat(filepath.Join(dir, tr.ID+".bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("purged file still there: %v", err)
	}
	ls, err := v.List()
	if err != nil || len(ls) != 1 || ls[0].PurgedAt.IsZero() || ls[0].DownloadedBy != "aqssi" {
		t.Fatalf("status after purge: %+v %v", ls, err)
	}
	if p, _ := v.Purge(); len(p) != 0 {
		t.Fatal("purged twice")
	}
	// A wrong-size key file is refused with its path.
	os.WriteFile(filepath.Join(dir, "key"), []byte("court"), 0o600)
	if _, err := Open(dir, 0, clock); err == nil {
		t.Fatal("short key accepted")
	}
}
