package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalRetentionBounded(t *testing.T) {
	for _, tc := range []struct{ value, err string }{
		{"168h", ""},
		{"8760h", ""},
		{"8761h", "journal.local_retention: 8761h0m0s is more than the legal maximum of one year"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "edge.yaml")
			os.WriteFile(path, []byte("uai: 0671234X\nstate_dir: /var/lib/vigie\npublic_key: /etc/vigie/academie.pub\njournal:\n  local_retention: "+tc.value+"\n"), 0o600)
			_, err := LoadConfig(path)
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path)) {
				t.Fatalf("error %v, want %q naming the file", err, tc.err)
			}
		})
	}
}
