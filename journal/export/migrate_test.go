package export

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
)

// TestExportBeforeAndAfterBlockMigration: an archive of the per-record
// layout (what the previous version kept, written here from the same
// records) is converted to blocks when opened, and its exports, whole and
// filtered, are the same bytes as those of the archive that stored the
// edges' batches as they came (whose bytes the golden files fix).
func TestExportBeforeAndAfterBlockMigration(t *testing.T) {
	w := newWorld(t, 3000, 3, 5)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "legacy.db")
	if err := archive.WriteLegacy(ctx, w.store, uai, path); err != nil {
		t.Fatal(err)
	}
	st, err := archive.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	migrated := &world{store: st, path: path, recs: w.recs}
	whole := baseRequest(day0, day0.Add(24*time.Hour))
	client := whole
	client.Client = w.recs[journal.Navigation][10].Client.Addr()
	for name, req := range map[string]Request{"whole": whole, "client": client} {
		before, m := export(t, w, req)
		if m.Comptes["navigation"] == 0 {
			t.Fatalf("%s: nothing exported", name)
		}
		after, _ := export(t, migrated, req)
		if !bytes.Equal(before, after) {
			t.Fatalf("%s: the export after migration differs", name)
		}
		if _, err := Verify(bytes.NewReader(after), int64(len(after)), cpPub); err != nil {
			t.Fatal(err)
		}
	}
}
