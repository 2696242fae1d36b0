package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/rules/policy"
)

// LoginRequest is the body of POST /session.
type LoginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

// SessionInfo answers a login: the identity and the CSRF token that unsafe
// requests made with the cookie must echo in X-CSRF-Token.
type SessionInfo struct {
	Identity  *auth.Identity `json:"identity"`
	CSRFToken string         `json:"csrf_token"`
	ExpiresAt time.Time      `json:"expires_at"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	if req.Login == "" || req.Password == "" {
		return Errorf("bad-request", "login et password sont requis")
	}
	id, sess, err := s.auth.Login(r.Context(), req.Login, req.Password, remote(r))
	if err != nil {
		return err
	}
	s.auth.SetSessionCookie(w, sess)
	return writeJSON(w, http.StatusCreated, SessionInfo{Identity: id, CSRFToken: sess.CSRF, ExpiresAt: sess.ExpiresAt})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if err := s.auth.Logout(r.Context(), identity(r), remote(r)); err != nil {
		return err
	}
	s.auth.ClearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, identity(r))
}

// TokenRequest creates an API token.
type TokenRequest struct {
	Name string `json:"name"`
	// ExpiresInDays is the token's lifetime; 0 means it never expires.
	ExpiresInDays int `json:"expires_in_days,omitempty"`
}

// TokenCreated shows a new token once.
type TokenCreated struct {
	Token string         `json:"token"`
	Info  store.APIToken `json:"info"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	ts, err := s.st.APITokens(r.Context(), identity(r).UserID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, paginate(ts, p, func(t store.APIToken) string { return fmt.Sprintf("%020d", t.ID) }))
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req TokenRequest
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 {
		return Errorf("validation", "name est requis (100 caractères au plus)")
	}
	if req.ExpiresInDays < 0 || req.ExpiresInDays > 3660 {
		return Errorf("validation", "expires_in_days doit être entre 0 et 3660")
	}
	tok, info, err := s.auth.CreateAPIToken(r.Context(), identity(r), req.Name, time.Duration(req.ExpiresInDays)*24*time.Hour, remote(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, TokenCreated{Token: tok, Info: info})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return Errorf("bad-request", "id doit être un entier")
	}
	if err := s.auth.RevokeAPIToken(r.Context(), identity(r), n, remote(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// PasswordChange is the body of POST /me/password.
type PasswordChange struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	id := identity(r)
	if id.Via != auth.ViaSession {
		return Errorf("bad-request", "le mot de passe se change depuis une session, pas avec un jeton")
	}
	var req PasswordChange
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	if req.Current == "" || req.New == "" {
		return Errorf("bad-request", "current et new sont requis")
	}
	sess, err := s.auth.ChangePassword(r.Context(), id, req.Current, req.New, remote(r))
	if err != nil {
		return err
	}
	s.auth.SetSessionCookie(w, sess)
	return writeJSON(w, http.StatusOK, SessionInfo{Identity: id, CSRFToken: sess.CSRF, ExpiresAt: sess.ExpiresAt})
}

func (s *Server) listUserTokens(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	u, err := s.st.User(r.Context(), r.PathValue("login"))
	if err != nil {
		return err
	}
	ts, err := s.st.APITokens(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, paginate(ts, p, func(t store.APIToken) string { return fmt.Sprintf("%020d", t.ID) }))
}

func (s *Server) revokeUserToken(w http.ResponseWriter, r *http.Request) error {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return Errorf("bad-request", "id doit être un entier")
	}
	u, err := s.st.User(r.Context(), r.PathValue("login"))
	if err != nil {
		return err
	}
	if err := s.auth.RevokeUserAPIToken(r.Context(), identity(r), u.ID, u.Login, n, remote(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// UserRequest creates an account. Without a password, one is generated and
// returned once.
type UserRequest struct {
	Login string `json:"login"`
	Name  string `json:"name,omitempty"`
	Role  string `json:"role"`
	UAI   string `json:"uai,omitempty"`
	// Scope limits a technicien: département prefixes ("067") and UAIs,
	// comma-separated; empty for the whole académie.
	Scope    string `json:"scope,omitempty"`
	Password string `json:"password,omitempty"`
}

// UserPatch changes an account; absent fields stay.
type UserPatch struct {
	Name     *string `json:"name,omitempty"`
	Role     *string `json:"role,omitempty"`
	UAI      *string `json:"uai,omitempty"`
	Scope    *string `json:"scope,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
	// Password sets a new password; "generate" makes one and returns it.
	Password *string `json:"password,omitempty"`
}

// UserCreated shows a generated password once.
type UserCreated struct {
	User     store.User `json:"user"`
	Password string     `json:"password,omitempty"`
}

func validLogin(l string) bool {
	if l == "" || len(l) > 64 {
		return false
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '@') {
			return false
		}
	}
	return true
}

// checkScope validates and normalises a technicien's scope: only a
// technicien carries one.
func checkScope(role string, scope *string) error {
	norm, err := auth.ParseScope(*scope)
	if err != nil {
		return Errorf("validation", "champ scope : %v", err)
	}
	if norm != "" && role != string(auth.Technicien) {
		return Errorf("validation", "champ scope : seul un technicien a un périmètre")
	}
	*scope = norm
	return nil
}

// checkAccount validates role and scope: a chef needs exactly one valid UAI,
// other roles none.
func checkAccount(role, uai string) error {
	r, err := auth.ParseRole(role)
	if err != nil {
		return Errorf("validation", "%v", err)
	}
	if r == auth.Chef {
		if !policy.ValidUAI(uai) {
			return Errorf("validation", "un chef_etablissement doit avoir un uai valide (7 chiffres et une lettre), reçu %q", uai)
		}
	} else if uai != "" {
		return Errorf("validation", "seul un chef_etablissement est rattaché à un établissement")
	}
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	us, err := s.st.Users(r.Context())
	if err != nil {
		return err
	}
	if err := s.Audit(r, "users.read", "users", nil, map[string]int{"count": len(us)}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, paginate(us, p, func(u store.User) string { return u.Login }))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var req UserRequest
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	if !validLogin(req.Login) {
		return Errorf("validation", "login %q invalide (a-z, 0-9, . - _ @ ; 64 caractères au plus)", req.Login)
	}
	if err := checkAccount(req.Role, req.UAI); err != nil {
		return err
	}
	if err := checkScope(req.Role, &req.Scope); err != nil {
		return err
	}
	generated := ""
	if req.Password == "" {
		req.Password = auth.GeneratePassword()
		generated = req.Password
	}
	hash, err := auth.HashPassword(req.Password, auth.DefaultParams)
	if err != nil {
		return Errorf("validation", "%v", err)
	}
	u := store.User{Login: req.Login, Name: req.Name, Role: req.Role, UAI: req.UAI, Scope: req.Scope, PasswordHash: hash, CreatedAt: s.now(),
		MustChangePassword: generated != ""}
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		if u.ID, err = tx.CreateUser(r.Context(), u); err != nil {
			return err
		}
		return s.audit(tx, r, "user.create", "user/"+u.Login, nil, u)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, UserCreated{User: u, Password: generated})
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) error {
	var req UserPatch
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	login := r.PathValue("login")
	var out UserCreated
	err := s.st.Update(r.Context(), func(tx store.Tx) error {
		u, err := tx.User(r.Context(), login)
		if err != nil {
			return err
		}
		before := u
		if req.Name != nil {
			u.Name = *req.Name
		}
		if req.Role != nil {
			u.Role = *req.Role
		}
		if req.UAI != nil {
			u.UAI = *req.UAI
		}
		if u.Role != string(auth.Chef) && req.Role != nil && req.UAI == nil {
			u.UAI = ""
		}
		if req.Scope != nil {
			u.Scope = *req.Scope
		}
		if u.Role != string(auth.Technicien) && req.Role != nil && req.Scope == nil {
			u.Scope = ""
		}
		if err := checkAccount(u.Role, u.UAI); err != nil {
			return err
		}
		if err := checkScope(u.Role, &u.Scope); err != nil {
			return err
		}
		if req.Disabled != nil {
			if *req.Disabled && u.ID == identity(r).UserID {
				return Errorf("validation", "on ne peut pas désactiver son propre compte")
			}
			u.Disabled = *req.Disabled
		}
		if req.Password != nil {
			pw := *req.Password
			if u.SSOSubject != "" {
				return auth.ErrSSOAccount
			}
			if pw == "generate" {
				pw = auth.GeneratePassword()
				out.Password = pw
			}
			if u.PasswordHash, err = auth.HashPassword(pw, auth.DefaultParams); err != nil {
				return Errorf("validation", "%v", err)
			}
			// Whoever set it knows it: its owner must choose their own.
			u.MustChangePassword = true
		}
		if err := tx.UpdateUser(r.Context(), u); err != nil {
			return err
		}
		// A changed role, scope, password or state ends the account's
		// sessions and revokes its API tokens.
		revoked := 0
		if u.Role != before.Role || u.UAI != before.UAI || u.Scope != before.Scope || u.Disabled != before.Disabled || u.PasswordHash != before.PasswordHash {
			if revoked, err = auth.RevokeCredentials(r.Context(), tx, u.ID); err != nil {
				return err
			}
		}
		out.User = u
		if err := s.audit(tx, r, "user.update", "user/"+u.Login, before, u); err != nil {
			return err
		}
		if revoked > 0 {
			return s.audit(tx, r, "token.revoke", "user/"+u.Login, nil, map[string]int{"tokens_revoked": revoked})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if out.Password != "" {
		return writeJSON(w, http.StatusOK, out)
	}
	return writeJSON(w, http.StatusOK, out.User)
}

// Audit records a sensitive read or an action done outside the store's
// own changes (an export, a download), in its own transaction. Handlers of
// other packages call it for every requisition export.
func (s *Server) Audit(r *http.Request, action, target string, before, after any) error {
	// Detached from the request: a client that hangs up must not keep
	// its action out of the audit log.
	r = r.WithContext(context.WithoutCancel(r.Context()))
	return s.st.Update(r.Context(), func(tx store.Tx) error {
		return s.audit(tx, r, action, target, before, after)
	})
}

// audit appends the entry for the request's actor inside tx.
func (s *Server) audit(tx store.Tx, r *http.Request, action, target string, before, after any) error {
	a := actor(r)
	e := &audit.Entry{Time: s.now(), Actor: a.Name, Role: a.Role, Action: action, Target: target, Remote: a.Remote}
	var err error
	if e.Before, err = rawJSON(before); err != nil {
		return err
	}
	if e.After, err = rawJSON(after); err != nil {
		return err
	}
	// The transaction decides whether the entry is written; the request's
	// end must not cancel the append on its own.
	return tx.AppendAudit(context.WithoutCancel(r.Context()), e)
}

func rawJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("api: audit: %w", err)
	}
	return b, nil
}
