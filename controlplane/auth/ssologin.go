package auth

import (
	"context"
	"errors"
	"fmt"

	"vigie/controlplane/store"
)

// ErrPasswordLoginDisabled refuses a password sign-in when the académie's
// identity provider is the way in and the login is not the break-glass
// account.
var ErrPasswordLoginDisabled = errors.New("auth: password sign-in is reserved to the break-glass account")

// SSOAccount is a person as the identity provider asserted them and the
// claims mapping made them.
type SSOAccount struct {
	// Subject is "issuer subject": stable across renamings.
	Subject     string
	Login, Name string
	Role        Role
	UAI         string
}

// SSORefusedError says why an SSO identity gets no session here.
type SSORefusedError struct{ Reason string }

func (e *SSORefusedError) Error() string { return "auth: SSO sign-in refused: " + e.Reason }

// SSOLogin opens a session for a person the identity provider vouched for.
// Their account is created on first sign-in and bound to their subject;
// a role or school that changed at the provider is applied, and, as for
// any account, ends their sessions and revokes their API tokens. A
// disabled account stays disabled, and a local account of the same login
// is never taken over.
func (s *Service) SSOLogin(ctx context.Context, a SSOAccount, remote string) (*Identity, *Session, error) {
	now := s.now()
	if a.Subject == "" || a.Login == "" {
		return nil, nil, errors.New("auth: SSO account without subject or login")
	}
	var u store.User
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.UserBySSO(ctx, a.Subject)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if _, err := tx.User(ctx, a.Login); err == nil {
				return &SSORefusedError{Reason: fmt.Sprintf("un compte local porte déjà l’identifiant %s : la RSSI doit le renommer ou le supprimer avant que vous puissiez vous connecter avec le compte académique.", a.Login)}
			}
			u = store.User{Login: a.Login, Name: a.Name, Role: string(a.Role), UAI: a.UAI, CreatedAt: now, SSOSubject: a.Subject}
			if u.ID, err = tx.CreateUser(ctx, u); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, auditEntry(now, "sso", "user.create", "user/"+u.Login, nil, u, remote))
		case err != nil:
			return err
		}
		if u.Disabled {
			return &SSORefusedError{Reason: "votre compte Vigie a été désactivé par la RSSI."}
		}
		before := u
		u.Role, u.UAI = string(a.Role), a.UAI
		if a.Name != "" {
			u.Name = a.Name
		}
		if u == before {
			return nil
		}
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if u.Role != before.Role || u.UAI != before.UAI {
			if _, err := RevokeCredentials(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		return tx.AppendAudit(ctx, auditEntry(now, "sso", "user.update", "user/"+u.Login, before, u, remote))
	})
	if err != nil {
		var re *SSORefusedError
		if errors.As(err, &re) {
			s.failed.add(a.Login, hostOf(remote), "sso: refused", now)
		}
		return nil, nil, err
	}
	id := identityOf(u)
	sess, err := s.openSession(ctx, id, "login.sso", remote, now, nil)
	if err != nil {
		return nil, nil, err
	}
	return id, sess, nil
}

// RecordRefusedSSO counts an académie identity the claims mapping refused
// in the aggregated failed sign-ins.
func (s *Service) RecordRefusedSSO(login, remote, reason string) {
	s.failed.add(login, hostOf(remote), reason, s.now())
}
