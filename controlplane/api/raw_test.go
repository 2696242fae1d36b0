package api

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

func openRaw(t *testing.T, dir string) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "vigie.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	return db
}
