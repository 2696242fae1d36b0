package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres is the Store that several control-plane replicas share. The
// queries are SQLite's (reader, writer), with placeholders rebound; what
// SQLite got from being one process's file, PostgreSQL gets explicitly:
//
//   - every Update takes a transaction-scoped advisory lock first, so
//     writes are serialized across replicas exactly as SQLite's single
//     writer serializes them (the audit chain's next sequence, the next
//     serial: two replicas can never both append the same one);
//   - changes other replicas must act on (a new version, a revoked edge
//     token) are announced with NOTIFY inside the transaction, so they
//     are delivered when, and only if, it commits (Watch);
//   - background work takes a session advisory lock on a connection held
//     for as long as the work runs (Lead).
//
// Every object lives in one schema (PostgresConfig.Schema), set as the
// connections' search_path, so several académies can share a cluster.
type Postgres struct {
	reader
	failures
	history
	db      *sql.DB
	conn    *pgx.ConnConfig
	schema  string
	channel string
	log     *slog.Logger
	rebinds *sync.Map
}

var (
	_ Store         = (*Postgres)(nil)
	_ Shared        = (*Postgres)(nil)
	_ LoginFailures = (*Postgres)(nil)
	_ History       = (*Postgres)(nil)
)

// PostgresConfig tunes OpenPostgres.
type PostgresConfig struct {
	// Schema holds this académie's tables (default "vigie"): lower-case
	// letters, digits and underscores, starting with a letter.
	Schema string
	// MaxConns bounds the pool (default 10).
	MaxConns int
	Log      *slog.Logger
	// Password, when set, overrides the URL's and libpq's.
	Password string
}

var schemaName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// OpenPostgres connects to the database at url (a postgres:// URL or a
// libpq key=value string; the password comes from the URL, PGPASSWORD or
// the libpq password file), creates the schema if needed and brings it to
// the current version.
func OpenPostgres(ctx context.Context, url string, c PostgresConfig) (*Postgres, error) {
	if c.Schema == "" {
		c.Schema = "vigie"
	}
	if !schemaName.MatchString(c.Schema) {
		return nil, fmt.Errorf("store: postgres: schema %q: want lower-case letters, digits and _ (at most 40), starting with a letter", c.Schema)
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	if c.Password != "" {
		cfg.Password = c.Password
	}
	cfg.RuntimeParams["search_path"] = c.Schema
	cfg.RuntimeParams["application_name"] = "vigie-controlplane"
	p := &Postgres{conn: cfg, schema: c.Schema, channel: "vigie_" + c.Schema, log: c.Log, rebinds: &sync.Map{}}
	if err := p.migrate(ctx); err != nil {
		return nil, fmt.Errorf("store: postgres %s: %w", c.Schema, err)
	}
	p.db = stdlib.OpenDB(*cfg)
	p.db.SetMaxOpenConns(c.MaxConns)
	p.db.SetMaxIdleConns(c.MaxConns)
	p.db.SetConnMaxIdleTime(5 * time.Minute)
	p.reader = reader{db: pgQuerier{p.db, p.rebinds}}
	p.failures = failures{w: p.reader.db, r: p.reader.db}
	p.history = history{w: p.reader.db, r: p.reader.db}
	return p, nil
}

// Schema is the schema this store uses.
func (p *Postgres) Schema() string { return p.schema }

// DB is the pool, for tests and the migration tool.
func (p *Postgres) DB() *sql.DB { return p.db }

// Close closes the pool.
func (p *Postgres) Close() error { return p.db.Close() }

// lockKey names an advisory lock of this schema: locks are cluster-wide,
// so two académies sharing a cluster must not share their keys.
func (p *Postgres) lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("vigie\x00" + p.schema + "\x00" + name))
	return int64(h.Sum64())
}

// Update runs fn in one transaction after taking the schema's write lock.
func (p *Postgres) Update(ctx context.Context, fn func(Tx) error) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, p.lockKey("write")); err != nil {
		tx.Rollback()
		return fmt.Errorf("store: write lock: %w", err)
	}
	q := pgQuerier{tx, p.rebinds}
	w := &writer{reader: reader{db: q}, savepoints: true, notify: func(ctx context.Context, kind, key string) error {
		if _, err := q.ExecContext(ctx, `SELECT pg_notify(?, ?)`, p.channel, kind+":"+key); err != nil {
			return fmt.Errorf("store: notify: %w", err)
		}
		return nil
	}}
	if err := fn(w); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// connect opens a connection outside the pool: LISTEN and session locks
// belong to one connection and must not be handed to another caller.
func (p *Postgres) connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.ConnectConfig(ctx, p.conn.Copy())
}

// Watch listens on the schema's channel on a dedicated connection.
func (p *Postgres) Watch(ctx context.Context, fn func(Event)) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := p.listen(ctx, fn)
		if ctx.Err() != nil {
			break
		}
		p.log.Warn("store: postgres: change feed lost, reconnecting", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return ctx.Err()
}

func (p *Postgres) listen(ctx context.Context, fn func(Event)) error {
	conn, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.channel}.Sanitize()); err != nil {
		return err
	}
	// Anything committed before LISTEN took effect was not announced to
	// us: whoever keeps state in memory reloads it now.
	fn(Event{Kind: EventResync})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		kind, key, _ := strings.Cut(n.Payload, ":")
		fn(Event{Kind: kind, Key: key})
	}
}

// Lead runs fn on whichever replica holds the named session advisory lock.
// The lock lives as long as the connection that took it: when the holder
// dies, PostgreSQL ends its session and another replica's next try wins.
func (p *Postgres) Lead(ctx context.Context, name string, fn func(ctx context.Context)) error {
	return p.lead(ctx, name, time.Second, fn)
}

func (p *Postgres) lead(ctx context.Context, name string, every time.Duration, fn func(ctx context.Context)) error {
	key := p.lockKey("lead\x00" + name)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := p.holdAndRun(ctx, name, key, every, fn); err != nil && ctx.Err() == nil {
			p.log.Debug("store: postgres: leadership attempt", "work", name, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// holdAndRun tries the lock once; when taken, runs fn until ctx ends or the
// connection fails a check.
func (p *Postgres) holdAndRun(ctx context.Context, name string, key int64, every time.Duration, fn func(ctx context.Context)) error {
	conn, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil || !got {
		return err
	}
	p.log.Info("store: postgres: this replica leads the background work", "work", name)
	defer p.log.Info("store: postgres: this replica no longer leads", "work", name)
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(lctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			// fn returned on its own: keep the lock until ctx ends, so
			// another replica does not start the same work again.
			<-ctx.Done()
			return nil
		case <-t.C:
			cctx, ccancel := context.WithTimeout(ctx, every)
			_, err := conn.Exec(cctx, `SELECT 1`)
			ccancel()
			if err != nil {
				return fmt.Errorf("lost the lock's connection: %w", err)
			}
		}
	}
}

// pgQuerier rebinds SQLite's ? placeholders to PostgreSQL's $n. The store's
// queries hold no ? inside string literals.
type pgQuerier struct {
	q     querier
	cache *sync.Map
}

func (p pgQuerier) rebind(q string) string {
	if v, ok := p.cache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	out := b.String()
	p.cache.Store(q, out)
	return out
}

func (p pgQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.q.ExecContext(ctx, p.rebind(query), args...)
}

func (p pgQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.q.QueryContext(ctx, p.rebind(query), args...)
}

func (p pgQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.q.QueryRowContext(ctx, p.rebind(query), args...)
}

func (p pgQuerier) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.q.PrepareContext(ctx, p.rebind(query))
}

// pgMigrations are PostgreSQL's schema versions, recorded in
// schema_version. Never edit a published migration: append a new one.
// Times are Unix nanoseconds as in SQLite, so that a move between the two
// copies values unchanged; text keys sort bytewise (COLLATE "C") as in
// SQLite, so pages and exports come out in the same order on both.
var pgMigrations = []string{
	`
CREATE TABLE draft (
	id integer PRIMARY KEY CHECK (id = 1),
	policy text NOT NULL,
	revision bigint NOT NULL,
	updated_at bigint NOT NULL,
	updated_by text NOT NULL
);
CREATE TABLE lists (
	id text COLLATE "C" PRIMARY KEY,
	category text NOT NULL,
	school text NOT NULL DEFAULT '',
	comment text NOT NULL DEFAULT '',
	created_by text NOT NULL,
	created_at bigint NOT NULL
);
CREATE TABLE list_entries (
	list_id text COLLATE "C" NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
	kind text COLLATE "C" NOT NULL CHECK (kind IN ('domain', 'url', 'expression')),
	value text COLLATE "C" NOT NULL,
	comment text NOT NULL DEFAULT '',
	author text NOT NULL,
	added_at bigint NOT NULL,
	PRIMARY KEY (list_id, kind, value)
);
CREATE TABLE sections (
	hash bytea PRIMARY KEY,
	data bytea NOT NULL
);
CREATE TABLE versions (
	serial bigint PRIMARY KEY,
	hash text NOT NULL,
	author text NOT NULL,
	comment text NOT NULL,
	created_at bigint NOT NULL,
	diff text NOT NULL DEFAULT '',
	rollback_of bigint NOT NULL DEFAULT 0,
	size bigint NOT NULL,
	domains bigint NOT NULL,
	manifest bytea NOT NULL,
	policy text NOT NULL
);
CREATE TABLE edges (
	id text COLLATE "C" PRIMARY KEY,
	uai text COLLATE "C" NOT NULL,
	name text NOT NULL DEFAULT '',
	created_at bigint NOT NULL,
	token_hash text NOT NULL UNIQUE,
	last_seen bigint NOT NULL DEFAULT 0,
	applied_serial bigint NOT NULL DEFAULT 0,
	applied_hash text NOT NULL DEFAULT '',
	software text NOT NULL DEFAULT '',
	last_error text NOT NULL DEFAULT '',
	remote text NOT NULL DEFAULT ''
);
CREATE INDEX edges_by_uai ON edges (uai, id);
CREATE TABLE users (
	id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	login text COLLATE "C" NOT NULL UNIQUE,
	name text NOT NULL DEFAULT '',
	role text NOT NULL,
	uai text NOT NULL DEFAULT '',
	password_hash text NOT NULL DEFAULT '',
	disabled boolean NOT NULL DEFAULT false,
	created_at bigint NOT NULL
);
CREATE TABLE sessions (
	id_hash text PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	csrf text NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL,
	remote text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE TABLE api_tokens (
	id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name text NOT NULL,
	token_hash text NOT NULL UNIQUE,
	created_at bigint NOT NULL,
	last_used bigint NOT NULL DEFAULT 0,
	expires_at bigint NOT NULL DEFAULT 0
);
CREATE TABLE audit (
	seq bigint PRIMARY KEY,
	at bigint NOT NULL,
	actor text NOT NULL,
	role text NOT NULL,
	action text NOT NULL,
	target text NOT NULL,
	before bytea,
	after bytea,
	remote text NOT NULL,
	prev bytea NOT NULL,
	hash bytea NOT NULL
);
`,
	// 2: failed logins, shared by every replica.
	`
CREATE TABLE login_failures (
	key text NOT NULL,
	at bigint NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (key, at);
CREATE INDEX login_failures_by_time ON login_failures (at);
`,
	// 3: imported list trees, packed (controlplane/listtree), so that any
	// replica can compile a draft whatever replica imported its lists.
	`
CREATE TABLE list_trees (
	name text COLLATE "C" PRIMARY KEY,
	data bytea NOT NULL,
	created_at bigint NOT NULL
);
`,
	// 4: as SQLite's migration 3 (api_tokens ids come from an identity
	// sequence here, never reused already).
	`
ALTER TABLE users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN sso_subject text NOT NULL DEFAULT '';
CREATE INDEX users_by_sso ON users (sso_subject) WHERE sso_subject != '';
`,
	// 5: a technicien's scope (UAI prefixes and UAIs, comma-separated).
	`ALTER TABLE users ADD COLUMN scope text NOT NULL DEFAULT '';`,
	// 6: as SQLite's migration 5, the IP plan proposals.
	`
CREATE TABLE ip_proposals (
	id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	uai text COLLATE "C" NOT NULL,
	zones text NOT NULL,
	base text NOT NULL,
	comment text NOT NULL,
	proposed_by text NOT NULL,
	proposed_at bigint NOT NULL,
	status text NOT NULL CHECK (status IN ('pending', 'validated', 'refused')),
	decided_by text NOT NULL DEFAULT '',
	decided_at bigint NOT NULL DEFAULT 0,
	reason text NOT NULL DEFAULT '',
	draft_revision bigint NOT NULL DEFAULT 0
);
CREATE INDEX ip_proposals_by_uai ON ip_proposals (uai, id);
CREATE INDEX ip_proposals_by_status ON ip_proposals (status, id);
`,
	// 7: as SQLite's migration 6 (the edges' history and the blocked
	// requests per day, for the yearly review).
	`
CREATE TABLE edge_events (
	edge text COLLATE "C" NOT NULL,
	uai text COLLATE "C" NOT NULL,
	kind text NOT NULL,
	at bigint NOT NULL,
	until_at bigint NOT NULL DEFAULT 0,
	serial bigint NOT NULL DEFAULT 0,
	detail text NOT NULL DEFAULT ''
);
CREATE INDEX edge_events_by_uai ON edge_events (uai, at);
INSERT INTO edge_events (edge, uai, kind, at) VALUES ('', '', 'recording', floor(extract(epoch from now()))::bigint * 1000000000);
CREATE TABLE blocked_days (
	uai text COLLATE "C" NOT NULL,
	day text COLLATE "C" NOT NULL,
	category text COLLATE "C" NOT NULL,
	blocked bigint NOT NULL DEFAULT 0,
	allowed bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (uai, day, category)
);
`,
	// 8: as SQLite's migration 7 (EdgeStatus.ClaimedSerial).
	`
ALTER TABLE edges ADD COLUMN claimed_serial bigint NOT NULL DEFAULT 0;
ALTER TABLE edges ADD COLUMN claimed_hash text NOT NULL DEFAULT '';
`,
}

// PutListTree stores a packed list tree once (a name is never reused:
// imports are named by their time).
func (p *Postgres) PutListTree(ctx context.Context, name string, packed []byte) error {
	_, err := p.reader.db.ExecContext(ctx, `INSERT INTO list_trees (name, data, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		name, packed, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: list tree %q: %w", name, err)
	}
	return nil
}

// ListTree returns a packed list tree.
func (p *Postgres) ListTree(ctx context.Context, name string) ([]byte, error) {
	var data []byte
	err := p.reader.db.QueryRowContext(ctx, `SELECT data FROM list_trees WHERE name = ?`, name).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: list tree %q: %w", name, errors.Join(ErrNotFound, fs.ErrNotExist))
	}
	if err != nil {
		return nil, fmt.Errorf("store: list tree %q: %w", name, err)
	}
	return data, nil
}

// migrate creates the schema and applies the missing migrations, under an
// advisory lock so that replicas starting together do not race.
func (p *Postgres) migrate(ctx context.Context) error {
	conn, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, p.lockKey("migrate")); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	schema := pgx.Identifier{p.schema}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+schema+".schema_version (version integer NOT NULL)"); err != nil {
		return fmt.Errorf("schema version table: %w", err)
	}
	var v int
	err = tx.QueryRow(ctx, "SELECT version FROM "+schema+".schema_version").Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".schema_version VALUES (0)"); err != nil {
			return fmt.Errorf("schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(pgMigrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d: upgrade vigie", v, len(pgMigrations))
	}
	for i := v; i < len(pgMigrations); i++ {
		if _, err := tx.Exec(ctx, pgMigrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE "+schema+".schema_version SET version = $1", len(pgMigrations)); err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	return tx.Commit(ctx)
}

// PostgresSchemaVersion is the PostgreSQL schema this program writes.
var PostgresSchemaVersion = len(pgMigrations)
