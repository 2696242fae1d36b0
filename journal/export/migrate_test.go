package export

import (
	"bytes"
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestExportBeforeAndAfterBlockMigration: an archive written before the
// store kept blocks (simulated by dropping them) exports from its rows,
// and after MigrateBlocks from its blocks; both exports are the same bytes
// as the one made from blocks written at ingest.
func TestExportBeforeAndAfterBlockMigration(t *testing.T) {
	w := newWorld(t, 3000, 3, 5)
	req := baseRequest(day0, day0.Add(24*time.Hour))
	fromBlocks, m := export(t, w, req)
	if m.Comptes["connexions"] != 3000 || m.Comptes["navigation"] != 3000 {
		t.Fatalf("counts %v", m.Comptes)
	}
	db, err := sql.Open("sqlite", w.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM blocks; DELETE FROM block_chains`); err != nil {
		t.Fatal(err)
	}
	fromRows, _ := export(t, w, req)
	if !bytes.Equal(fromRows, fromBlocks) {
		t.Fatal("the export of an archive without blocks differs from the one read from blocks")
	}
	n, err := w.store.MigrateBlocks(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("migrated %d chains, %v", n, err)
	}
	var blocks int
	if err := db.QueryRow(`SELECT count(*) FROM blocks`).Scan(&blocks); err != nil || blocks == 0 {
		t.Fatalf("%d blocks after migration, %v", blocks, err)
	}
	migrated, _ := export(t, w, req)
	if !bytes.Equal(migrated, fromBlocks) {
		t.Fatal("the export after migration differs")
	}
	if _, err := Verify(bytes.NewReader(migrated), int64(len(migrated)), cpPub); err != nil {
		t.Fatal(err)
	}
}
