package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/audit"
)

// reader implements Reader over the reader pool or a transaction.
type reader struct{ db querier }

// writer implements Tx.
type writer struct {
	reader
	// notify tells the other processes sharing the database about a change
	// once the transaction commits (nil when the store is not shared).
	notify func(ctx context.Context, kind, key string) error
	// savepoints: see guard.
	savepoints bool
}

// guard runs one statement that may fail on a uniqueness constraint inside
// a savepoint where the backend needs one: a failed statement aborts a
// whole PostgreSQL transaction, while the caller may handle ErrConflict
// and go on, as it can on SQLite.
func (w *writer) guard(ctx context.Context, stmt func() error) error {
	if !w.savepoints {
		return stmt()
	}
	if _, err := w.db.ExecContext(ctx, `SAVEPOINT vigie_guard`); err != nil {
		return err
	}
	if err := stmt(); err != nil {
		if _, rerr := w.db.ExecContext(ctx, `ROLLBACK TO SAVEPOINT vigie_guard`); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	_, err := w.db.ExecContext(ctx, `RELEASE SAVEPOINT vigie_guard`)
	return err
}

// changed sends a change notification when the store is shared.
func (w *writer) changed(ctx context.Context, kind, key string) error {
	if w.notify == nil {
		return nil
	}
	return w.notify(ctx, kind, key)
}

func notFound(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

func limit(p Page, max int) int {
	if p.Limit <= 0 || p.Limit > max {
		return max
	}
	return p.Limit
}

// ---- draft and lists

func (r reader) Draft(ctx context.Context) (Draft, error) {
	var d Draft
	var doc string
	var at int64
	err := r.db.QueryRowContext(ctx, `SELECT policy, revision, updated_at, updated_by FROM draft WHERE id = 1`).
		Scan(&doc, &d.Revision, &at, &d.UpdatedBy)
	if err != nil {
		return d, notFound("draft", err)
	}
	if err := json.Unmarshal([]byte(doc), &d.Policy); err != nil {
		return d, fmt.Errorf("store: draft: stored policy is not valid JSON: %w", err)
	}
	d.UpdatedAt = fromNanos(at)
	return d, nil
}

const listCols = `l.id, l.category, l.school, l.comment, l.created_by, l.created_at,
	(SELECT count(*) FROM list_entries e WHERE e.list_id = l.id)`

func scanList(sc interface{ Scan(...any) error }) (List, error) {
	var l List
	var at int64
	err := sc.Scan(&l.ID, &l.Category, &l.School, &l.Comment, &l.CreatedBy, &at, &l.Entries)
	l.CreatedAt = fromNanos(at)
	return l, err
}

func (r reader) Lists(ctx context.Context) ([]List, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+listCols+` FROM lists l ORDER BY l.id`)
	if err != nil {
		return nil, fmt.Errorf("store: lists: %w", err)
	}
	defer rows.Close()
	var out []List
	for rows.Next() {
		l, err := scanList(rows)
		if err != nil {
			return nil, fmt.Errorf("store: lists: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func (r reader) List(ctx context.Context, id string) (List, error) {
	l, err := scanList(r.db.QueryRowContext(ctx, `SELECT `+listCols+` FROM lists l WHERE l.id = ?`, id))
	if err != nil {
		return l, notFound("list "+strconv.Quote(id), err)
	}
	return l, nil
}

func scanEntries(rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var at int64
		if err := rows.Scan(&e.List, &e.Kind, &e.Value, &e.Comment, &e.Author, &at); err != nil {
			return nil, fmt.Errorf("store: entries: %w", err)
		}
		e.Added = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

const entryCols = `list_id, kind, value, comment, author, added_at`

func (r reader) Entries(ctx context.Context, list string, p Page) ([]Entry, error) {
	kind, value, _ := strings.Cut(p.After, "\x00")
	rows, err := r.db.QueryContext(ctx, `SELECT `+entryCols+` FROM list_entries
		WHERE list_id = ? AND (kind, value) > (?, ?) ORDER BY kind, value LIMIT ?`,
		list, kind, value, limit(p, MaxPage+1))
	if err != nil {
		return nil, fmt.Errorf("store: entries: %w", err)
	}
	return scanEntries(rows)
}

func (r reader) AllEntries(ctx context.Context) ([]Entry, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+entryCols+` FROM list_entries ORDER BY list_id, kind, value`)
	if err != nil {
		return nil, fmt.Errorf("store: entries: %w", err)
	}
	return scanEntries(rows)
}

func (w *writer) PutDraft(ctx context.Context, d Draft, rev int64) (int64, error) {
	doc, err := json.Marshal(d.Policy)
	if err != nil {
		return 0, fmt.Errorf("store: draft: %w", err)
	}
	var cur int64
	err = w.db.QueryRowContext(ctx, `SELECT revision FROM draft WHERE id = 1`).Scan(&cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		cur = 0
	case err != nil:
		return 0, fmt.Errorf("store: draft: %w", err)
	}
	if cur != rev {
		return 0, fmt.Errorf("store: draft is at revision %d, not %d: %w", cur, rev, ErrConflict)
	}
	_, err = w.db.ExecContext(ctx, `INSERT INTO draft (id, policy, revision, updated_at, updated_by) VALUES (1, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET policy = excluded.policy, revision = excluded.revision,
		updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		string(doc), cur+1, nanos(d.UpdatedAt), d.UpdatedBy)
	if err != nil {
		return 0, fmt.Errorf("store: draft: %w", err)
	}
	return cur + 1, nil
}

func (w *writer) CreateList(ctx context.Context, l List) error {
	err := w.guard(ctx, func() error {
		_, err := w.db.ExecContext(ctx, `INSERT INTO lists (id, category, school, comment, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			l.ID, l.Category, l.School, l.Comment, l.CreatedBy, nanos(l.CreatedAt))
		return err
	})
	if isConstraint(err) {
		return fmt.Errorf("store: list %q already exists: %w", l.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create list: %w", err)
	}
	return nil
}

func (w *writer) UpdateList(ctx context.Context, l List) error {
	res, err := w.db.ExecContext(ctx, `UPDATE lists SET category = ?, school = ?, comment = ? WHERE id = ?`,
		l.Category, l.School, l.Comment, l.ID)
	return affected("list "+strconv.Quote(l.ID), res, err)
}

func (w *writer) DeleteList(ctx context.Context, id string) error {
	res, err := w.db.ExecContext(ctx, `DELETE FROM lists WHERE id = ?`, id)
	return affected("list "+strconv.Quote(id), res, err)
}

func affected(what string, res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return nil
}

func (w *writer) AddEntries(ctx context.Context, es []Entry) ([]Entry, error) {
	stmt, err := w.db.PrepareContext(ctx, `INSERT INTO list_entries (`+entryCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, fmt.Errorf("store: add entries: %w", err)
	}
	defer stmt.Close()
	var added []Entry
	for _, e := range es {
		res, err := stmt.ExecContext(ctx, e.List, e.Kind, e.Value, e.Comment, e.Author, nanos(e.Added))
		if err != nil {
			return nil, fmt.Errorf("store: add entry %q to list %q: %w", e.Value, e.List, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			added = append(added, e)
		}
	}
	return added, nil
}

func (w *writer) RemoveEntries(ctx context.Context, list string, kind EntryKind, values []string) ([]Entry, error) {
	var removed []Entry
	for _, v := range values {
		rows, err := w.db.QueryContext(ctx, `DELETE FROM list_entries WHERE list_id = ? AND kind = ? AND value = ?
			RETURNING `+entryCols, list, kind, v)
		if err != nil {
			return nil, fmt.Errorf("store: remove entry %q from list %q: %w", v, list, err)
		}
		es, err := scanEntries(rows)
		if err != nil {
			return nil, err
		}
		removed = append(removed, es...)
	}
	return removed, nil
}

// ---- versions and sections

const versionCols = `serial, hash, author, comment, created_at, diff, rollback_of, size, domains`

func scanVersion(sc interface{ Scan(...any) error }, extra ...any) (Version, error) {
	var v Version
	var at int64
	var diff string
	dest := append([]any{&v.Serial, &v.Hash, &v.Author, &v.Comment, &at, &diff, &v.RollbackOf, &v.Size, &v.Domains}, extra...)
	err := sc.Scan(dest...)
	v.Created = fromNanos(at)
	if diff != "" {
		v.Diff = json.RawMessage(diff)
	}
	return v, err
}

func (r reader) Versions(ctx context.Context, p Page) ([]Version, error) {
	before := uint64(1<<63 - 1)
	if p.After != "" {
		n, err := strconv.ParseUint(p.After, 10, 63)
		if err != nil {
			return nil, fmt.Errorf("store: versions: bad page key %q", p.After)
		}
		before = n
	}
	rows, err := r.db.QueryContext(ctx, `SELECT `+versionCols+` FROM versions WHERE serial < ? ORDER BY serial DESC LIMIT ?`,
		before, limit(p, MaxPage+1))
	if err != nil {
		return nil, fmt.Errorf("store: versions: %w", err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("store: versions: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (r reader) version(ctx context.Context, what, where string, args ...any) (Version, error) {
	var pol string
	var manifest []byte
	v, err := scanVersion(r.db.QueryRowContext(ctx, `SELECT `+versionCols+`, manifest, policy FROM versions `+where, args...),
		&manifest, &pol)
	if err != nil {
		return v, notFound(what, err)
	}
	v.Manifest, v.Policy = manifest, json.RawMessage(pol)
	return v, nil
}

func (r reader) Version(ctx context.Context, serial uint64) (Version, error) {
	return r.version(ctx, fmt.Sprintf("version %d", serial), `WHERE serial = ?`, serial)
}

func (r reader) LatestVersion(ctx context.Context) (Version, error) {
	return r.version(ctx, "latest version", `ORDER BY serial DESC LIMIT 1`)
}

func (r reader) Section(ctx context.Context, hash [32]byte) ([]byte, error) {
	var data []byte
	if err := r.db.QueryRowContext(ctx, `SELECT data FROM sections WHERE hash = ?`, hash[:]).Scan(&data); err != nil {
		return nil, notFound(fmt.Sprintf("section %x", hash[:8]), err)
	}
	return data, nil
}

func (r reader) HasSection(ctx context.Context, hash [32]byte) (bool, error) {
	var n int
	if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM sections WHERE hash = ?`, hash[:]).Scan(&n); err != nil {
		return false, fmt.Errorf("store: section: %w", err)
	}
	return n > 0, nil
}

func (w *writer) PutSections(ctx context.Context, secs []Section) error {
	for _, s := range secs {
		if _, err := w.db.ExecContext(ctx, `INSERT INTO sections (hash, data) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			s.Hash[:], s.Data); err != nil {
			return fmt.Errorf("store: put section: %w", err)
		}
	}
	return nil
}

func (w *writer) InsertVersion(ctx context.Context, v Version) error {
	err := w.guard(ctx, func() error {
		_, err := w.db.ExecContext(ctx, `INSERT INTO versions (`+versionCols+`, manifest, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.Serial, v.Hash, v.Author, v.Comment, nanos(v.Created), string(v.Diff), v.RollbackOf, v.Size, v.Domains,
			v.Manifest, string(v.Policy))
		return err
	})
	if isConstraint(err) {
		return fmt.Errorf("store: version %d already exists: %w", v.Serial, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: insert version: %w", err)
	}
	return w.changed(ctx, EventVersion, strconv.FormatUint(v.Serial, 10))
}

// ---- edges

const edgeCols = `id, uai, name, created_at, token_hash, last_seen, applied_serial, applied_hash, software, last_error, remote,
	claimed_serial, claimed_hash`

func scanEdge(sc interface{ Scan(...any) error }) (Edge, error) {
	var e Edge
	var at, seen int64
	err := sc.Scan(&e.ID, &e.UAI, &e.Name, &at, &e.TokenHash, &seen, &e.AppliedSerial, &e.AppliedHash,
		&e.Software, &e.LastError, &e.Remote, &e.ClaimedSerial, &e.ClaimedHash)
	e.CreatedAt, e.LastSeen = fromNanos(at), fromNanos(seen)
	return e, err
}

func (r reader) Edges(ctx context.Context, uai string, p Page) ([]Edge, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+edgeCols+` FROM edges WHERE (? = '' OR uai = ?) AND id > ?
		ORDER BY id LIMIT ?`, uai, uai, p.After, limit(p, MaxPage+1))
	if err != nil {
		return nil, fmt.Errorf("store: edges: %w", err)
	}
	defer rows.Close()
	var out []Edge
	for rows.Next() {
		e, err := scanEdge(rows)
		if err != nil {
			return nil, fmt.Errorf("store: edges: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (r reader) Edge(ctx context.Context, id string) (Edge, error) {
	e, err := scanEdge(r.db.QueryRowContext(ctx, `SELECT `+edgeCols+` FROM edges WHERE id = ?`, id))
	if err != nil {
		return e, notFound("edge "+strconv.Quote(id), err)
	}
	return e, nil
}

func (r reader) EdgeByToken(ctx context.Context, tokenHash string) (Edge, error) {
	e, err := scanEdge(r.db.QueryRowContext(ctx, `SELECT `+edgeCols+` FROM edges WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return e, notFound("edge token", err)
	}
	return e, nil
}

func (w *writer) CreateEdge(ctx context.Context, e Edge) error {
	err := w.guard(ctx, func() error {
		_, err := w.db.ExecContext(ctx, `INSERT INTO edges (id, uai, name, created_at, token_hash) VALUES (?, ?, ?, ?, ?)`,
			e.ID, e.UAI, e.Name, nanos(e.CreatedAt), e.TokenHash)
		return err
	})
	if isConstraint(err) {
		return fmt.Errorf("store: edge %q already exists: %w", e.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create edge: %w", err)
	}
	return nil
}

func (w *writer) SetEdgeToken(ctx context.Context, id, tokenHash string) error {
	res, err := w.db.ExecContext(ctx, `UPDATE edges SET token_hash = ? WHERE id = ?`, tokenHash, id)
	if err := affected("edge "+strconv.Quote(id), res, err); err != nil {
		return err
	}
	return w.changed(ctx, EventEdge, id)
}

func (w *writer) DeleteEdge(ctx context.Context, id string) error {
	res, err := w.db.ExecContext(ctx, `DELETE FROM edges WHERE id = ?`, id)
	if err := affected("edge "+strconv.Quote(id), res, err); err != nil {
		return err
	}
	return w.changed(ctx, EventEdge, id)
}

// statusChunk is how many edges' reports one UPDATE writes: after a
// publication thousands of edges report within seconds, and a statement
// per edge is a round trip per edge to PostgreSQL (its CPU shared with
// the replicas'). 250 rows are 2,250 parameters, well under both
// backends' limits.
const statusChunk = 250

func (w *writer) RecordEdgeStatus(ctx context.Context, st map[string]EdgeStatus) error {
	ids := make([]string, 0, len(st))
	for id := range st {
		ids = append(ids, id)
	}
	// In id order: two replicas flushing at once lock rows in the same
	// order rather than deadlock.
	slices.Sort(ids)
	for len(ids) > 0 {
		n := min(statusChunk, len(ids))
		var q strings.Builder
		// Typed casts: PostgreSQL types a bare parameter of a VALUES list
		// as text. Both backends name the columns of VALUES column1...
		q.WriteString(`UPDATE edges SET last_seen = v.column2, applied_serial = v.column3, applied_hash = v.column4,
		software = v.column5, last_error = v.column6, remote = v.column7, claimed_serial = v.column8, claimed_hash = v.column9
		FROM (VALUES `)
		args := make([]any, 0, 9*n)
		for i, id := range ids[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(`(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT))`)
			s := st[id]
			args = append(args, id, nanos(s.LastSeen), s.AppliedSerial, s.AppliedHash, s.Software, s.LastError, s.Remote,
				s.ClaimedSerial, s.ClaimedHash)
		}
		q.WriteString(`) AS v WHERE edges.id = v.column1`)
		if _, err := w.db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("store: status of %d edges: %w", n, err)
		}
		ids = ids[n:]
	}
	return nil
}

// ---- users, sessions, tokens

const userCols = `id, login, name, role, uai, password_hash, disabled, created_at, must_change_password, sso_subject, scope`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var u User
	var at int64
	err := sc.Scan(&u.ID, &u.Login, &u.Name, &u.Role, &u.UAI, &u.PasswordHash, &u.Disabled, &at, &u.MustChangePassword, &u.SSOSubject, &u.Scope)
	u.CreatedAt = fromNanos(at)
	return u, err
}

func (r reader) Users(ctx context.Context) ([]User, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY login`)
	if err != nil {
		return nil, fmt.Errorf("store: users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (r reader) User(ctx context.Context, login string) (User, error) {
	u, err := scanUser(r.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE login = ?`, login))
	if err != nil {
		return u, notFound("user "+strconv.Quote(login), err)
	}
	return u, nil
}

func (r reader) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(r.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if err != nil {
		return u, notFound(fmt.Sprintf("user #%d", id), err)
	}
	return u, nil
}

func (w *writer) CreateUser(ctx context.Context, u User) (int64, error) {
	var id int64
	err := w.guard(ctx, func() error {
		return w.db.QueryRowContext(ctx, `INSERT INTO users (login, name, role, uai, password_hash, disabled, created_at, must_change_password, sso_subject, scope)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, u.Login, u.Name, u.Role, u.UAI, u.PasswordHash, u.Disabled, nanos(u.CreatedAt),
			u.MustChangePassword, u.SSOSubject, u.Scope).Scan(&id)
	})
	if isConstraint(err) {
		return 0, fmt.Errorf("store: user %q already exists: %w", u.Login, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("store: create user: %w", err)
	}
	return id, nil
}

func (w *writer) UpdateUser(ctx context.Context, u User) error {
	res, err := w.db.ExecContext(ctx, `UPDATE users SET name = ?, role = ?, uai = ?, password_hash = ?, disabled = ?, must_change_password = ?, sso_subject = ?, scope = ? WHERE id = ?`,
		u.Name, u.Role, u.UAI, u.PasswordHash, u.Disabled, u.MustChangePassword, u.SSOSubject, u.Scope, u.ID)
	return affected("user "+strconv.Quote(u.Login), res, err)
}

func (r reader) Session(ctx context.Context, idHash string) (Session, error) {
	var s Session
	var c, e int64
	err := r.db.QueryRowContext(ctx, `SELECT id_hash, user_id, csrf, created_at, expires_at, remote FROM sessions WHERE id_hash = ?`, idHash).
		Scan(&s.IDHash, &s.UserID, &s.CSRF, &c, &e, &s.Remote)
	if err != nil {
		return s, notFound("session", err)
	}
	s.CreatedAt, s.ExpiresAt = fromNanos(c), fromNanos(e)
	return s, nil
}

func (w *writer) CreateSession(ctx context.Context, s Session) error {
	_, err := w.db.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at, remote) VALUES (?, ?, ?, ?, ?, ?)`,
		s.IDHash, s.UserID, s.CSRF, nanos(s.CreatedAt), nanos(s.ExpiresAt), s.Remote)
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

func (w *writer) DeleteSession(ctx context.Context, idHash string) error {
	_, err := w.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	if err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

func (w *writer) DeleteUserSessions(ctx context.Context, userID int64) error {
	_, err := w.db.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		return fmt.Errorf("store: delete sessions: %w", err)
	}
	return nil
}

func (w *writer) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := w.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, nanos(now))
	if err != nil {
		return 0, fmt.Errorf("store: expire sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

const tokenCols = `id, user_id, name, token_hash, created_at, last_used, expires_at`

func scanToken(sc interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	var c, u, e int64
	err := sc.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, &c, &u, &e)
	t.CreatedAt, t.LastUsed, t.ExpiresAt = fromNanos(c), fromNanos(u), fromNanos(e)
	return t, err
}

func (r reader) APIToken(ctx context.Context, tokenHash string) (APIToken, error) {
	t, err := scanToken(r.db.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return t, notFound("API token", err)
	}
	return t, nil
}

func (r reader) APITokens(ctx context.Context, userID int64) ([]APIToken, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: API tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: API tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (w *writer) CreateAPIToken(ctx context.Context, t APIToken) (int64, error) {
	var id int64
	err := w.db.QueryRowContext(ctx, `INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		t.UserID, t.Name, t.TokenHash, nanos(t.CreatedAt), nanos(t.ExpiresAt)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: create API token: %w", err)
	}
	return id, nil
}

func (w *writer) DeleteAPIToken(ctx context.Context, userID, id int64) error {
	res, err := w.db.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ? AND id = ?`, userID, id)
	return affected(fmt.Sprintf("API token #%d", id), res, err)
}

func (w *writer) TouchAPIToken(ctx context.Context, id int64, at time.Time) error {
	_, err := w.db.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, nanos(at), id)
	if err != nil {
		return fmt.Errorf("store: API token: %w", err)
	}
	return nil
}

// ---- audit

const auditCols = `seq, at, actor, role, action, target, before, after, remote, prev, hash`

func scanAudit(sc interface{ Scan(...any) error }) (audit.Entry, error) {
	var e audit.Entry
	var at int64
	var before, after, prev, hash []byte
	err := sc.Scan(&e.Seq, &at, &e.Actor, &e.Role, &e.Action, &e.Target, &before, &after, &e.Remote, &prev, &hash)
	if err != nil {
		return e, err
	}
	e.Time = time.Unix(0, at).UTC()
	if len(before) > 0 {
		e.Before = before
	}
	if len(after) > 0 {
		e.After = after
	}
	copy(e.Prev[:], prev)
	copy(e.Hash[:], hash)
	return e, nil
}

func (r reader) AuditEntries(ctx context.Context, after uint64, n int) ([]audit.Entry, error) {
	if n <= 0 || n > 5000 {
		n = 5000
	}
	return r.auditQuery(ctx, "audit", `SELECT `+auditCols+` FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, after, n)
}

// auditQuery reads the entries a query selects, in its order.
func (r reader) auditQuery(ctx context.Context, what, query string, args ...any) ([]audit.Entry, error) {
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// maxTailActions bounds the actions one AuditTail filters on (each is a
// bound parameter of the query).
const maxTailActions = 50

func (r reader) AuditTail(ctx context.Context, q AuditQuery) ([]audit.Entry, error) {
	n := q.Limit
	if n <= 0 || n > 5000 {
		n = 5000
	}
	if len(q.Actions) > maxTailActions {
		return nil, fmt.Errorf("store: audit tail: %d actions, at most %d", len(q.Actions), maxTailActions)
	}
	// Sequence numbers are int64 on both backends; a bound past that
	// range is no bound.
	before := int64(math.MaxInt64)
	if q.Before > 0 && q.Before < math.MaxInt64 {
		before = int64(q.Before)
	}
	if q.After >= math.MaxInt64 {
		return nil, nil
	}
	// The primary key is the sequence: the database walks it backwards
	// from before and stops after n matches, or at after.
	query := `SELECT ` + auditCols + ` FROM audit WHERE seq > ? AND seq < ?`
	args := []any{int64(q.After), before}
	if len(q.Actions) > 0 {
		query += ` AND action IN (?` + strings.Repeat(`, ?`, len(q.Actions)-1) + `)`
		for _, a := range q.Actions {
			args = append(args, a)
		}
	}
	query += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, n)
	return r.auditQuery(ctx, "audit tail", query, args...)
}

func (r reader) AuditEntry(ctx context.Context, seq uint64) (audit.Entry, error) {
	e, err := scanAudit(r.db.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit WHERE seq = ?`, seq))
	if err != nil {
		return e, notFound(fmt.Sprintf("audit entry %d", seq), err)
	}
	return e, nil
}

func (w *writer) AppendAudit(ctx context.Context, e *audit.Entry) error {
	if e.Time.IsZero() || e.Actor == "" || e.Action == "" {
		return fmt.Errorf("store: audit: entry without time, actor or action")
	}
	last, err := scanAudit(w.db.QueryRowContext(ctx, `SELECT `+auditCols+` FROM audit ORDER BY seq DESC LIMIT 1`))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		e.Seal(nil)
	case err != nil:
		return fmt.Errorf("store: audit: %w", err)
	default:
		e.Seal(&last)
	}
	_, err = w.db.ExecContext(ctx, `INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Time.UnixNano(), e.Actor, e.Role, e.Action, e.Target, []byte(e.Before), []byte(e.After), e.Remote, e.Prev[:], e.Hash[:])
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}
