package archive

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"vigie/journal"
)

// SQLite: one database file, WAL mode, written through one connection
// (SQLite serializes writers anyway) with FULL sync so that an
// acknowledged batch survives a power cut, read through a small pool.
//
// schema: times are Unix microseconds (the journal's precision). Blocks
// are found by (chain, first), the order of a chain, and by (chain, tmax)
// for a time range; their data comes last in the row, so that reading the
// small columns and the filter never reads the data's overflow pages.
// marks (the links a search starts from, see search.go) came later: an
// archive made before has them after the data (addMarks), read with it.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS chains (
	ref INTEGER PRIMARY KEY,
	uai TEXT NOT NULL,
	stream INTEGER NOT NULL,
	id BLOB NOT NULL,
	max_seq INTEGER NOT NULL DEFAULT 0,
	max_link BLOB,
	created INTEGER NOT NULL,
	UNIQUE (uai, stream, id)
);
CREATE TABLE IF NOT EXISTS sealed_blocks (
	chain INTEGER NOT NULL,
	stream INTEGER NOT NULL,
	first INTEGER NOT NULL,
	last INTEGER NOT NULL,
	n INTEGER NOT NULL,
	tmin INTEGER NOT NULL,
	tmax INTEGER NOT NULL,
	tend INTEGER NOT NULL,
	kind INTEGER NOT NULL,
	last_link BLOB NOT NULL,
	bloom BLOB NOT NULL,
	marks BLOB,
	data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS sealed_blocks_chain_first ON sealed_blocks (chain, first);
CREATE INDEX IF NOT EXISTS sealed_blocks_chain_time ON sealed_blocks (chain, tmax);
CREATE TABLE IF NOT EXISTS held_blocks (
	chain INTEGER NOT NULL,
	stream INTEGER NOT NULL,
	first INTEGER NOT NULL,
	last INTEGER NOT NULL,
	n INTEGER NOT NULL,
	tmin INTEGER NOT NULL,
	tmax INTEGER NOT NULL,
	tend INTEGER NOT NULL,
	kind INTEGER NOT NULL,
	last_link BLOB NOT NULL,
	bloom BLOB NOT NULL,
	marks BLOB,
	data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS held_blocks_chain_first ON held_blocks (chain, first);
CREATE INDEX IF NOT EXISTS held_blocks_chain_time ON held_blocks (chain, tmax);
CREATE TABLE IF NOT EXISTS gaps (
	chain INTEGER NOT NULL,
	first INTEGER NOT NULL,
	last INTEGER NOT NULL,
	found INTEGER NOT NULL,
	PRIMARY KEY (chain, first)
);
CREATE TABLE IF NOT EXISTS holds (
	id INTEGER PRIMARY KEY,
	uai TEXT NOT NULL,
	start INTEGER NOT NULL,
	"end" INTEGER NOT NULL,
	client TEXT NOT NULL DEFAULT '',
	reference TEXT NOT NULL,
	placed_by TEXT NOT NULL,
	placed_at INTEGER NOT NULL,
	released_by TEXT NOT NULL DEFAULT '',
	released_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS edge_keys (
	edge TEXT PRIMARY KEY,
	uai TEXT NOT NULL,
	pub BLOB NOT NULL,
	first_seen INTEGER NOT NULL
);
`

// OpenSQLite opens (creating if needed) the archive database at path. An
// archive written before blocks were its unit (one row per record) is
// converted first (MigrateBlocks).
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	// mmap serves reads of block data without a copy per page.
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=cache_size(-65536)&_pragma=mmap_size(4294967296)&_pragma=temp_store(memory)"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("archive: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.Exec(sqliteSchema); err != nil {
		w.Close()
		return nil, fmt.Errorf("archive: %s: schema: %w", path, err)
	}
	if err := addMarks(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("archive: %s: schema: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("archive: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &SQLStore{w: w, r: r}
	if _, err := s.MigrateBlocks(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("archive: %s: %w", path, err)
	}
	return s, nil
}

// addMarks adds the marks column to the block tables of an archive made
// before it existed; their blocks keep none (a search decodes them whole).
func addMarks(db *sql.DB) error {
	for _, table := range blockTables {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = 'marks'`, table).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := db.Exec(`ALTER TABLE ` + table + ` ADD COLUMN marks BLOB`); err != nil {
				return fmt.Errorf("add marks to %s: %w", table, err)
			}
		}
	}
	return nil
}

// MigrateBlocks converts an archive of the previous layout, one indexed
// row per record (table records, with blocks beside it), into blocks of
// the archive's own encoding, one chain per transaction (a chain's rows go
// in the transaction that writes its blocks, so an interrupted migration
// resumes where it stopped), then drops the old tables. It returns how
// many chains it converted; on a converted archive it costs one query.
func (s *SQLStore) MigrateBlocks(ctx context.Context) (int, error) {
	if s.pg {
		return 0, nil
	}
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'records'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("archive: migrate: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	defer s.cache.forget()
	rows, err := s.w.QueryContext(ctx, `SELECT `+chainCols+` FROM chains ORDER BY ref`)
	if err != nil {
		return 0, fmt.Errorf("archive: migrate: %w", err)
	}
	var chains []Chain
	for rows.Next() {
		c, err := scanChain(rows)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("archive: migrate: %w", err)
		}
		chains = append(chains, c)
	}
	rows.Close()
	done := 0
	for _, c := range chains {
		moved, err := s.migrateChain(ctx, c)
		if err != nil {
			return done, fmt.Errorf("archive: migrate chain %d: %w", c.Ref, err)
		}
		if moved {
			done++
		}
	}
	if _, err := s.w.ExecContext(ctx, `DROP TABLE records; DROP TABLE IF EXISTS blocks; DROP TABLE IF EXISTS block_chains`); err != nil {
		return done, fmt.Errorf("archive: migrate: drop the old tables: %w", err)
	}
	return done, nil
}

func (s *SQLStore) migrateChain(ctx context.Context, c Chain) (bool, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var next int64
	moved := false
	recs := make([]Stored, 0, maxBlockRecords)
	for {
		rows, err := tx.QueryContext(ctx, `SELECT seq, time, client, rhost, link, payload FROM records WHERE chain = ? AND seq >= ? ORDER BY seq LIMIT ?`, c.Ref, next, maxBlockRecords)
		if err != nil {
			return false, err
		}
		recs = recs[:0]
		for rows.Next() {
			var r Stored
			var t, seq int64
			var client, rhost string
			var link []byte
			if err := rows.Scan(&seq, &t, &client, &rhost, &link, &r.Payload); err != nil {
				rows.Close()
				return false, err
			}
			r.Seq, r.Time, r.Link = uint64(seq), fromMicros(t), toHash(link)
			r.Client, _ = netip.ParseAddr(client)
			r.Host = strings.TrimSuffix(ReverseHost(rhost), ".") // labels back in order
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, err
		}
		if len(recs) == 0 {
			break
		}
		moved = true
		if err := s.putRecords(ctx, tx, blockTables[0], c, recs, true); err != nil {
			return false, err
		}
		next = int64(recs[len(recs)-1].Seq) + 1
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM records WHERE chain = ?`, c.Ref); err != nil {
		return false, err
	}
	return moved, tx.Commit()
}

// legacySchema is the layout before blocks were the unit: tests build an
// archive of it to check the migration.
const legacySchema = `
CREATE TABLE IF NOT EXISTS records (
	chain INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	uai TEXT NOT NULL,
	stream INTEGER NOT NULL,
	time INTEGER NOT NULL,
	client TEXT NOT NULL,
	rhost TEXT NOT NULL,
	link BLOB NOT NULL,
	payload BLOB NOT NULL,
	PRIMARY KEY (chain, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_school_time ON records (uai, stream, time);
CREATE INDEX IF NOT EXISTS records_client_time ON records (client, time);
CREATE INDEX IF NOT EXISTS records_host_time ON records (rhost, time);
`

// WriteLegacy writes the records, chains and gaps of school uai held in
// src into a new archive of the per-record layout at path: what a control
// plane of the previous version kept. Tests of the migration build their
// "before" with it.
func WriteLegacy(ctx context.Context, src Store, uai, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, sqliteSchema+legacySchema+`CREATE TABLE IF NOT EXISTS blocks (chain INTEGER, first INTEGER, last INTEGER, tmin INTEGER, tmax INTEGER, data BLOB);
CREATE TABLE IF NOT EXISTS block_chains (chain INTEGER PRIMARY KEY);`); err != nil {
		return fmt.Errorf("legacy schema: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	chains, err := src.Chains(ctx, uai)
	if err != nil {
		return err
	}
	for _, c := range chains {
		if _, err := tx.ExecContext(ctx, `INSERT INTO chains (ref, uai, stream, id, max_seq, max_link, created) VALUES (?, ?, ?, ?, ?, ?, 0)`,
			c.Ref, c.UAI, int(c.Stream), c.ID[:], int64(c.MaxSeq), c.MaxLink[:]); err != nil {
			return err
		}
	}
	gaps, err := src.Gaps(ctx, uai)
	if err != nil {
		return err
	}
	for _, g := range gaps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO gaps (chain, first, last, found) VALUES (?, ?, ?, ?)`, g.Chain, int64(g.First), int64(g.Last), micros(g.Found)); err != nil {
			return err
		}
	}
	var rec journal.Record
	err = src.Scan(ctx, Query{UAI: uai, From: time.Unix(0, 0), To: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, func(c Chain, r *Stored) error {
		if err := journal.DecodeRecord(r.Payload, &rec); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO records (chain, seq, uai, stream, time, client, rhost, link, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Ref, int64(r.Seq), c.UAI, int(c.Stream), micros(r.Time), addrText(rec.Client.Addr()), ReverseHost(rec.Host), r.Link[:], r.Payload)
		return err
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}
