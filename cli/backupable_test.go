package cli

import (
	"strings"
	"testing"

	"vigie/controlplane"
)

// TestBackupableSaysWhatToBackUp: the backup command refuses what it
// cannot copy and names, per backend, what the operator backs up instead.
func TestBackupableSaysWhatToBackUp(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  controlplane.Config
		want []string // "" for no error
	}{
		{"sqlite in data_dir", controlplane.Config{DataDir: "/var/lib/vigie/controlplane"}, nil},
		{"sqlite named in data_dir", controlplane.Config{DataDir: "/d", Database: "sqlite:/d/vigie.db"}, nil},
		{"postgres", controlplane.Config{DataDir: "/d", Database: "postgres://vigie@db/vigie", DatabaseSchema: "ac_lyon"},
			[]string{"pg_dump -Fc -n ac_lyon -n ac_lyon_journal", "journal.db is not used"}},
		{"postgres default schema", controlplane.Config{DataDir: "/d", Database: "postgres://vigie@db/vigie"},
			[]string{"-n vigie -n vigie_journal"}},
		{"sqlite elsewhere", controlplane.Config{DataDir: "/d", Database: "sqlite:/srv/vigie.db"},
			[]string{"/srv/vigie.db and /d/journal.db as SQLite files"}},
	} {
		err := backupable(c.cfg, "controlplane.yaml")
		if (err == nil) != (c.want == nil) {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: %q lacks %q", c.name, err, w)
			}
		}
		if err != nil && strings.Contains(c.cfg.Database, "postgres") && strings.Contains(err.Error(), "as files") {
			t.Fatalf("%s: tells to copy files on PostgreSQL: %v", c.name, err)
		}
	}
}
