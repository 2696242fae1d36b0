package store

import (
	"context"
	"fmt"
)

// Account reads and writes added with SSO and credential revocation
// (migration 2), kept apart from the original queries.

func (r reader) UserBySSO(ctx context.Context, subject string) (User, error) {
	if subject == "" {
		return User{}, fmt.Errorf("store: user by SSO subject: empty subject: %w", ErrNotFound)
	}
	u, err := scanUser(r.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE sso_subject = ?`, subject))
	if err != nil {
		return u, notFound("user by SSO subject", err)
	}
	return u, nil
}

func (w *writer) DeleteUserAPITokens(ctx context.Context, userID int64) (int, error) {
	res, err := w.db.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, userID)
	if err != nil {
		return 0, fmt.Errorf("store: revoke API tokens of user #%d: %w", userID, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
