package store

import (
	"context"
	"fmt"
	"time"
)

// failures implements LoginFailures on both backends: w is SQLite's writer
// connection or PostgreSQL's pool, r a reader.
type failures struct{ w, r querier }

func (f failures) AddLoginFailure(ctx context.Context, key string, at time.Time) error {
	if _, err := f.w.ExecContext(ctx, `INSERT INTO login_failures (key, at) VALUES (?, ?)`, key, nanos(at)); err != nil {
		return fmt.Errorf("store: login failure: %w", err)
	}
	return nil
}

func (f failures) LoginFailures(ctx context.Context, key string, since time.Time, limit int) ([]time.Time, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := f.r.QueryContext(ctx, `SELECT at FROM login_failures WHERE key = ? AND at >= ? ORDER BY at LIMIT ?`,
		key, nanos(since), limit)
	if err != nil {
		return nil, fmt.Errorf("store: login failures: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return nil, fmt.Errorf("store: login failures: %w", err)
		}
		out = append(out, fromNanos(at))
	}
	return out, rows.Err()
}

func (f failures) ClearLoginFailures(ctx context.Context, key string) error {
	if _, err := f.w.ExecContext(ctx, `DELETE FROM login_failures WHERE key = ?`, key); err != nil {
		return fmt.Errorf("store: login failures: %w", err)
	}
	return nil
}

func (f failures) PruneLoginFailures(ctx context.Context, before time.Time) (int, error) {
	res, err := f.w.ExecContext(ctx, `DELETE FROM login_failures WHERE at < ?`, nanos(before))
	if err != nil {
		return 0, fmt.Errorf("store: login failures: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
