package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary manifests to Verify: it must answer with an
// error or a manifest, never crash, and never accept a path that leaves
// the backup.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"format":1,"created":"2026-12-07T00:00:00Z","software":"t","files":[{"path":"vigie.db","size":2,"sha256":"` + sumOf("db") + `"}]}`))
	f.Add([]byte(`{"format":1,"files":[{"path":"../etc/passwd","size":1,"sha256":"00"}]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{"format":1,"files":[{"path":"/vigie.db"}],"extra":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, manifest []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "vigie.db"), []byte("db"), 0o600)
		os.WriteFile(filepath.Join(dir, ManifestName), manifest, 0o600)
		m, err := Verify(dir)
		if err != nil {
			return
		}
		for _, f := range m.Files {
			clean := filepath.Clean(filepath.FromSlash(f.Path))
			if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") {
				t.Fatalf("accepted a path out of the backup: %q", f.Path)
			}
		}
	})
}

func sumOf(s string) string {
	f, _ := os.CreateTemp("", "sum")
	defer os.Remove(f.Name())
	f.WriteString(s)
	f.Close()
	h, _ := hashFile(f.Name())
	return h.SHA256
}
