package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"vigie/controlplane/audit"
)

// moveTables are the tables a move copies, parents before children, with
// their columns (the same on both backends).
var moveTables = []struct{ name, cols, order string }{
	{"draft", "id, policy, revision, updated_at, updated_by", "id"},
	{"lists", "id, category, school, comment, created_by, created_at", "id"},
	{"list_entries", entryCols, "list_id, kind, value"},
	{"sections", "hash, data", "hash"},
	{"versions", versionCols + ", manifest, policy", "serial"},
	{"edges", edgeCols, "id"},
	{"users", userCols, "id"},
	{"sessions", "id_hash, user_id, csrf, created_at, expires_at, remote", "id_hash"},
	{"api_tokens", tokenCols, "id"},
	{"audit", auditCols, "seq"},
	{"ip_proposals", ipProposalCols, "id"},
	{"edge_events", "edge, uai, kind, at, until_at, serial, detail", "at, edge, kind"},
	{"blocked_days", "uai, day, category, blocked, allowed", "uai, day, category"},
}

// moveMigrationRows are rows a new schema's migrations write (the start
// of the edges' history): a target holding only those is still empty.
var moveMigrationRows = map[string]string{"edge_events": "kind = 'recording'"}

// MoveReport is what a move copied and what the copy's audit chain
// verifies to.
type MoveReport struct {
	Rows map[string]int
	// Source and Copy are the audit chain verified on each side; a move
	// succeeds only when both verify to the same head.
	Source, Copy audit.Result
}

// Move copies an académie's whole state from a SQLite store into an empty
// PostgreSQL schema, in one snapshot of the source and one transaction on
// the target, values unchanged (times stay Unix nanoseconds, the audit
// chain keeps its sequences and hashes). It then verifies the chain on both
// sides and fails, leaving the target as it found it, unless both verify
// to the same head.
func Move(ctx context.Context, from *SQLite, to *Postgres) (*MoveReport, error) {
	src, err := from.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("store: move: %w", err)
	}
	defer src.Rollback()
	rep := &MoveReport{Rows: map[string]int{}}
	if rep.Source, err = verifyChain(ctx, reader{db: src}); err != nil {
		return nil, fmt.Errorf("store: move: source: %w", err)
	}
	if !rep.Source.OK() {
		return rep, fmt.Errorf("store: move: the source's audit chain does not verify (%s): repair or keep it, do not move it", rep.Source.Problem)
	}
	dst, err := to.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: move: %w", err)
	}
	defer dst.Rollback()
	if _, err := dst.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, to.lockKey("write")); err != nil {
		return nil, fmt.Errorf("store: move: write lock: %w", err)
	}
	for _, t := range moveTables {
		var n int
		q := `SELECT count(*) FROM ` + t.name
		if w, ok := moveMigrationRows[t.name]; ok {
			q += ` WHERE NOT (` + w + `)`
		}
		if err := dst.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return nil, fmt.Errorf("store: move: target %s: %w", t.name, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("store: move: the target schema %q is not empty (%d rows in %s): move into a new schema", to.schema, n, t.name)
		}
	}
	for name, w := range moveMigrationRows {
		// The source's rows replace those the target's migrations wrote.
		if _, err := dst.ExecContext(ctx, `DELETE FROM `+name+` WHERE `+w); err != nil {
			return nil, fmt.Errorf("store: move: %s: %w", name, err)
		}
	}
	for _, t := range moveTables {
		n, err := copyTable(ctx, src, dst, t.name, t.cols, t.order)
		if err != nil {
			return nil, fmt.Errorf("store: move: %s: %w", t.name, err)
		}
		rep.Rows[t.name] = n
	}
	// Identity columns got explicit values: move their sequences past them.
	for _, t := range []string{"users", "api_tokens", "ip_proposals"} {
		if _, err := dst.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), coalesce(max(id), 0) + 1, false) FROM `+t); err != nil {
			return nil, fmt.Errorf("store: move: %s sequence: %w", t, err)
		}
	}
	if rep.Copy, err = verifyChain(ctx, reader{db: pgQuerier{dst, to.rebinds}}); err != nil {
		return nil, fmt.Errorf("store: move: copy: %w", err)
	}
	if !rep.Copy.OK() || rep.Copy.Entries != rep.Source.Entries || rep.Copy.Head != rep.Source.Head {
		return rep, fmt.Errorf("store: move: the copied audit chain does not verify to the source's head (%+v against %+v): nothing was written", rep.Copy, rep.Source)
	}
	if err := dst.Commit(); err != nil {
		return nil, fmt.Errorf("store: move: commit: %w", err)
	}
	return rep, nil
}

func copyTable(ctx context.Context, src *sql.Tx, dst *sql.Tx, table, cols, order string) (int, error) {
	rows, err := src.QueryContext(ctx, `SELECT `+cols+` FROM `+table+` ORDER BY `+order)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	names := strings.Split(cols, ",")
	marks := make([]string, len(names))
	for i := range marks {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	ins, err := dst.PrepareContext(ctx, `INSERT INTO `+table+` (`+cols+`) VALUES (`+strings.Join(marks, ", ")+`)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, name := range names {
			// SQLite keeps booleans as integers.
			if n := strings.TrimSpace(name); n == "disabled" || n == "must_change_password" {
				if v, ok := vals[i].(int64); ok {
					vals[i] = v != 0
				}
			}
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		n++
	}
	return n, rows.Err()
}

// verifyChain walks the whole audit chain page by page.
func verifyChain(ctx context.Context, r reader) (audit.Result, error) {
	var v audit.Verifier
	var after uint64
	for {
		es, err := r.AuditEntries(ctx, after, 5000)
		if err != nil {
			return audit.Result{}, err
		}
		for i := range es {
			if !v.Add(&es[i]) {
				return v.Result(), nil
			}
		}
		if len(es) < 5000 {
			return v.Result(), nil
		}
		after = es[len(es)-1].Seq
	}
}
