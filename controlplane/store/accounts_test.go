package store

import (
	"context"
	"errors"
	"testing"
)

func TestAccountsFollowCredentials(t *testing.T) { eachBackend(t, testAccountsFollowCredentials) }

// testAccountsFollowCredentials: migration 2's columns round-trip, an SSO
// subject finds its account, a user's tokens go at once, and a revoked
// token's id is never given again.
func testAccountsFollowCredentials(t *testing.T, s Store, _ func(string) error) {
	ctx := context.Background()
	var uid, first int64
	err := s.Update(ctx, func(tx Tx) error {
		var err error
		if uid, err = tx.CreateUser(ctx, User{Login: "paul.durand", Role: "chef_etablissement", UAI: "0671234X", CreatedAt: t0,
			MustChangePassword: true, SSOSubject: "https://sso.ac-exemple.fr u2"}); err != nil {
			return err
		}
		for _, h := range []string{"a", "b"} {
			if first, err = tx.CreateAPIToken(ctx, APIToken{UserID: uid, Name: h, TokenHash: h, CreatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.UserBySSO(ctx, "https://sso.ac-exemple.fr u2")
	if err != nil || u.ID != uid || !u.MustChangePassword || u.Login != "paul.durand" {
		t.Fatalf("by SSO subject: %+v %v", u, err)
	}
	if _, err := s.UserBySSO(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty subject: %v", err)
	}
	var n int
	err = s.Update(ctx, func(tx Tx) error {
		u.MustChangePassword = false
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		n, err = tx.DeleteUserAPITokens(ctx, uid)
		return err
	})
	if err != nil || n != 2 {
		t.Fatalf("revoked %d tokens: %v", n, err)
	}
	if u, _ := s.UserByID(ctx, uid); u.MustChangePassword {
		t.Fatal("must_change_password not updated")
	}
	var next int64
	err = s.Update(ctx, func(tx Tx) error {
		next, err = tx.CreateAPIToken(ctx, APIToken{UserID: uid, Name: "c", TokenHash: "c", CreatedAt: t0})
		return err
	})
	if err != nil || next <= first {
		t.Fatalf("token id %d after revoking %d: %v", next, first, err)
	}
}
