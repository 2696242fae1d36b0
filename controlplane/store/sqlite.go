package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the default Store: one file in the data directory, in WAL mode,
// written through a single connection (SQLite serializes writers anyway, and
// one connection makes that explicit instead of a busy-wait) and read through
// a small pool that WAL lets run beside the writer.
type SQLite struct {
	reader
	failures
	history
	w *sql.DB
	r *sql.DB
}

var (
	_ Store         = (*SQLite)(nil)
	_ LoginFailures = (*SQLite)(nil)
	_ History       = (*SQLite)(nil)
)

// OpenSQLite opens (creating if needed) the database at path and brings its
// schema to the current version.
func OpenSQLite(path string, readers int) (*SQLite, error) {
	if readers <= 0 {
		readers = 4
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Pragmas on every connection: WAL, a busy timeout for a second process
	// (the CLI importing UT1 while the server runs), foreign keys on, and
	// NORMAL sync, which in WAL mode loses no committed transaction on a
	// process crash and only the last ones on power loss.
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_busy_timeout=10000&_foreign_keys=1&_journal_mode=WAL&_synchronous=NORMAL"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	s := &SQLite{w: w, r: r}
	s.reader = reader{db: r}
	s.failures = failures{w: w, r: r}
	s.history = history{w: w, r: r}
	return s, nil
}

// Close closes both pools.
func (s *SQLite) Close() error { return errors.Join(s.r.Close(), s.w.Close()) }

// Update runs fn in one immediate transaction on the writer connection.
func (s *SQLite) Update(ctx context.Context, fn func(Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(&writer{reader: reader{db: tx}}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// migrations are applied in order; PRAGMA user_version records how many
// ran. Never edit a published migration: append a new one.
var migrations = []string{
	// 1: the initial schema. Times are Unix nanoseconds (0 = never).
	`
CREATE TABLE draft (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	policy TEXT NOT NULL,
	revision INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT NOT NULL
);
CREATE TABLE lists (
	id TEXT PRIMARY KEY,
	category TEXT NOT NULL,
	school TEXT NOT NULL DEFAULT '',
	comment TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE list_entries (
	list_id TEXT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
	kind TEXT NOT NULL CHECK (kind IN ('domain', 'url', 'expression')),
	value TEXT NOT NULL,
	comment TEXT NOT NULL DEFAULT '',
	author TEXT NOT NULL,
	added_at INTEGER NOT NULL,
	PRIMARY KEY (list_id, kind, value)
) WITHOUT ROWID;
CREATE TABLE sections (
	hash BLOB PRIMARY KEY,
	data BLOB NOT NULL
);
CREATE TABLE versions (
	serial INTEGER PRIMARY KEY,
	hash TEXT NOT NULL,
	author TEXT NOT NULL,
	comment TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	diff TEXT NOT NULL DEFAULT '',
	rollback_of INTEGER NOT NULL DEFAULT 0,
	size INTEGER NOT NULL,
	domains INTEGER NOT NULL,
	manifest BLOB NOT NULL,
	policy TEXT NOT NULL
);
CREATE TABLE edges (
	id TEXT PRIMARY KEY,
	uai TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	last_seen INTEGER NOT NULL DEFAULT 0,
	applied_serial INTEGER NOT NULL DEFAULT 0,
	applied_hash TEXT NOT NULL DEFAULT '',
	software TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	remote TEXT NOT NULL DEFAULT ''
);
CREATE INDEX edges_by_uai ON edges (uai, id);
CREATE TABLE users (
	id INTEGER PRIMARY KEY,
	login TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL,
	uai TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',
	disabled INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
	id_hash TEXT PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	csrf TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	remote TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE TABLE api_tokens (
	id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	last_used INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE audit (
	seq INTEGER PRIMARY KEY,
	at INTEGER NOT NULL,
	actor TEXT NOT NULL,
	role TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	before BLOB,
	after BLOB,
	remote TEXT NOT NULL,
	prev BLOB NOT NULL,
	hash BLOB NOT NULL
);
`,
	// 2: failed logins, shared by every process using the database.
	`
CREATE TABLE login_failures (
	key TEXT NOT NULL,
	at INTEGER NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (key, at);
CREATE INDEX login_failures_by_time ON login_failures (at);
`,
	// 3: accounts follow their credentials. A generated password must be
	// changed at first sign-in; an SSO account is bound to its issuer and
	// subject; API token ids are never reused (AUTOINCREMENT), so that
	// audit entries naming token/5 stay unambiguous.
	`
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN sso_subject TEXT NOT NULL DEFAULT '';
CREATE INDEX users_by_sso ON users (sso_subject) WHERE sso_subject != '';
CREATE TABLE api_tokens_v2 (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	last_used INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER NOT NULL DEFAULT 0
);
INSERT INTO api_tokens_v2 SELECT id, user_id, name, token_hash, created_at, last_used, expires_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_v2 RENAME TO api_tokens;
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
`,
	// 4: a technicien's scope (UAI prefixes and UAIs, comma-separated).
	`ALTER TABLE users ADD COLUMN scope TEXT NOT NULL DEFAULT '';`,
	// 5: IP plans proposed by the Collectivités' technicians, validated or
	// refused by the RSSI (zones and base are JSON arrays of zones). Ids
	// are never reused: audit entries name them.
	`
CREATE TABLE ip_proposals (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	uai TEXT NOT NULL,
	zones TEXT NOT NULL,
	base TEXT NOT NULL,
	comment TEXT NOT NULL,
	proposed_by TEXT NOT NULL,
	proposed_at INTEGER NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('pending', 'validated', 'refused')),
	decided_by TEXT NOT NULL DEFAULT '',
	decided_at INTEGER NOT NULL DEFAULT 0,
	reason TEXT NOT NULL DEFAULT '',
	draft_revision INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ip_proposals_by_uai ON ip_proposals (uai, id);
CREATE INDEX ip_proposals_by_status ON ip_proposals (status, id);
`,
	// 6: what edges reported, as changes over time (the yearly review:
	// versions applied and when, outages, refused bundles, software), the
	// moment this history started, so a report can say what it covers, and
	// the blocked requests counted per day, kept past the archive's purge.
	`
CREATE TABLE edge_events (
	edge TEXT NOT NULL,
	uai TEXT NOT NULL,
	kind TEXT NOT NULL,
	at INTEGER NOT NULL,
	until_at INTEGER NOT NULL DEFAULT 0,
	serial INTEGER NOT NULL DEFAULT 0,
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX edge_events_by_uai ON edge_events (uai, at);
INSERT INTO edge_events (edge, uai, kind, at) VALUES ('', '', 'recording', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
CREATE TABLE blocked_days (
	uai TEXT NOT NULL,
	day TEXT NOT NULL,
	category TEXT NOT NULL,
	blocked INTEGER NOT NULL DEFAULT 0,
	allowed INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (uai, day, category)
) WITHOUT ROWID;
`,
	// 7: the version an edge claims and this control plane never
	// published, shared by the replicas (EdgeStatus.ClaimedSerial).
	`
ALTER TABLE edges ADD COLUMN claimed_serial INTEGER NOT NULL DEFAULT 0;
ALTER TABLE edges ADD COLUMN claimed_hash TEXT NOT NULL DEFAULT '';
`,
}

// SchemaVersion is the schema this program writes.
var SchemaVersion = len(migrations)

func migrate(db *sql.DB) error {
	ctx := context.Background()
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d: upgrade vigie", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		// PRAGMA takes no parameters; i is ours.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

// isConstraint reports a uniqueness or primary-key violation, on either
// backend.
func isConstraint(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
