package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
)

// Errors the API turns into problem documents.
var (
	ErrUnauthenticated = errors.New("auth: not authenticated")
	ErrCSRF            = errors.New("auth: missing or wrong CSRF token")
)

// RateLimitedError says a login was refused before checking the password.
type RateLimitedError struct {
	RetryAfter time.Duration
	// Busy says the server is hashing as many passwords as it allows at
	// once, rather than that this caller failed too often.
	Busy bool
}

func (e *RateLimitedError) Error() string {
	if e.Busy {
		return fmt.Sprintf("auth: too many sign-ins at once, retry in %s", e.RetryAfter.Round(time.Second))
	}
	return fmt.Sprintf("auth: too many failed logins, retry in %s", e.RetryAfter.Round(time.Second))
}

// Directory says who a person is. LocalDirectory reads the store's accounts;
// an OIDC directory would map an académie SSO's claims onto the same
// Identity and accounts.
type Directory interface {
	// Authenticate checks a login and password.
	Authenticate(ctx context.Context, login, password string) (*Identity, error)
	// Lookup returns an account's current identity. Sessions and tokens
	// resolve through it on every request, so a role change or a
	// disabled account takes effect at once.
	Lookup(ctx context.Context, userID int64) (*Identity, error)
}

// LocalDirectory authenticates the store's accounts by argon2id hash.
type LocalDirectory struct{ Store store.Reader }

var _ Directory = LocalDirectory{}

func identityOf(u store.User) *Identity {
	return &Identity{UserID: u.ID, Login: u.Login, Name: u.Name, Role: Role(u.Role), UAI: u.UAI, Scope: u.Scope,
		MustChangePassword: u.MustChangePassword, SSO: u.SSOSubject != ""}
}

// Authenticate checks the password of login.
func (d LocalDirectory) Authenticate(ctx context.Context, login, password string) (*Identity, error) {
	u, err := d.Store.User(ctx, login)
	if errors.Is(err, store.ErrNotFound) {
		CheckPassword(dummyHash(), password) // same cost as a wrong password
		return nil, ErrPassword
	}
	if err != nil {
		return nil, err
	}
	if u.PasswordHash == "" {
		CheckPassword(dummyHash(), password)
		return nil, ErrPassword
	}
	if err := CheckPassword(u.PasswordHash, password); err != nil {
		if errors.Is(err, ErrPassword) {
			return nil, ErrPassword
		}
		return nil, fmt.Errorf("auth: account %q: %w", login, err)
	}
	if u.Disabled {
		return nil, fmt.Errorf("%w (account disabled)", ErrPassword)
	}
	return identityOf(u), nil
}

// Lookup returns the account's identity, refusing disabled accounts.
func (d LocalDirectory) Lookup(ctx context.Context, userID int64) (*Identity, error) {
	u, err := d.Store.UserByID(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, ErrUnauthenticated
	}
	return identityOf(u), nil
}

// Config tunes the service. Zero values take the defaults shown.
type Config struct {
	// SessionTTL is a session's lifetime (8h: a working day).
	SessionTTL time.Duration
	// SecureCookies sets the Secure flag: on everywhere but the loopback demo.
	SecureCookies bool
	// LoginAttempts failed logins of one login from one client address
	// are free (5); after them each attempt waits twice as long as the
	// previous one, from LoginBackoff (15 s) up to LoginWindow (15 min).
	// A login gets four times as many across addresses before the same
	// back-off applies to it from addresses it has not signed in from
	// lately; a client address gets four times as many across logins
	// within LoginWindow, then waits for the window to pass.
	LoginAttempts int
	LoginBackoff  time.Duration
	LoginWindow   time.Duration
	// MaxHashing bounds the password verifications running at once (half
	// the cores, at least one): each takes 19 MiB and a core, so a flood
	// of logins costs at most MaxHashing × 19 MiB and leaves the other
	// cores to the rest; beyond it a login is answered 429 unhashed.
	MaxHashing int
	// FailedLoginAudit is how often failed sign-ins are written to the
	// audit log, aggregated (1 min).
	FailedLoginAudit time.Duration
	// BreakGlass, when set, is the only local account that may sign in
	// with a password, and only as an RSSI: everyone else signs in with
	// the académie's identity provider.
	BreakGlass string
	Log        *slog.Logger
}

// CookieName is the session cookie's name.
const CookieName = "vigie_session"

// Service authenticates requests and manages sessions and API tokens.
type Service struct {
	st  store.Store
	dir Directory
	now func() time.Time
	cfg Config
	// byPair throttles one login from one address, byLogin a login
	// across addresses (not from its known addresses), byAddr an address
	// across logins.
	byPair  *throttle
	byLogin *throttle
	byAddr  *limiter
	// fails is where the three count failures: the store's, shared by
	// the replicas. The addresses a login is known from and the hashing
	// slots stay per process (a slot is this process's CPU).
	fails   failureLog
	known   knownAddrs
	hashing chan struct{}
	failed  failedLogins
	edges   edgeCache
}

// edgeCache remembers recently seen edge tokens: after a publication every
// edge makes several requests within a second, and each would otherwise
// cost a database read. Entries live EdgeTokenTTL; deleting or rotating an
// edge in this process forgets it at once (another replica within the TTL).
type edgeCache struct {
	mu sync.Mutex
	m  map[string]cachedEdge
}

type cachedEdge struct {
	id, uai string
	until   time.Time
}

// EdgeTokenTTL bounds how long a revoked edge token may still work on a
// replica that did not revoke it.
const EdgeTokenTTL = 30 * time.Second

func (c *edgeCache) get(hash string, now time.Time) (cachedEdge, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || now.After(e.until) {
		return cachedEdge{}, false
	}
	return e, true
}

func (c *edgeCache) put(hash string, e cachedEdge, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedEdge{}
	}
	if len(c.m) >= 100000 {
		for k, v := range c.m {
			if now.After(v.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= 100000 {
			clear(c.m)
		}
	}
	c.m[hash] = e
}

// ForgetEdge drops an edge's cached token (deleted or rotated).
func (s *Service) ForgetEdge(id string) {
	s.edges.mu.Lock()
	defer s.edges.mu.Unlock()
	for k, v := range s.edges.m {
		if v.id == id {
			delete(s.edges.m, k)
		}
	}
}

// New returns a service over st. dir defaults to the store's local accounts
// and now to time.Now.
func New(st store.Store, dir Directory, cfg Config, now func() time.Time) *Service {
	if dir == nil {
		dir = LocalDirectory{Store: st}
	}
	if now == nil {
		now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.LoginAttempts <= 0 {
		cfg.LoginAttempts = 5
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = 15 * time.Minute
	}
	if cfg.LoginBackoff <= 0 {
		cfg.LoginBackoff = 15 * time.Second
	}
	if cfg.MaxHashing <= 0 {
		// Half the cores: a login flood never takes the CPU the other
		// requests (edges, pages, health checks) need.
		cfg.MaxHashing = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if cfg.FailedLoginAudit <= 0 {
		cfg.FailedLoginAudit = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	fails, ok := st.(store.LoginFailures)
	if !ok {
		fails = newMemFailures()
	}
	return &Service{st: st, dir: dir, now: now, cfg: cfg, fails: fails,
		byPair:  newThrottle(pairKind, cfg.LoginAttempts, cfg.LoginBackoff, cfg.LoginWindow, cfg.LoginWindow),
		byLogin: newThrottle(loginKind, 4*cfg.LoginAttempts, cfg.LoginBackoff, cfg.LoginWindow, cfg.LoginWindow),
		byAddr:  newLimiter(addrKind, 4*cfg.LoginAttempts, cfg.LoginWindow),
		known:   knownAddrs{ttl: 30 * 24 * time.Hour, cap: 10000},
		hashing: make(chan struct{}, cfg.MaxHashing)}
}

// Session is what a successful login hands back.
type Session struct {
	Token     string
	CSRF      string
	ExpiresAt time.Time
}

func auditEntry(now time.Time, actor, action, target string, before, after any, remote string) *audit.Entry {
	e := &audit.Entry{Time: now, Actor: actor, Action: action, Target: target, Remote: remote}
	if before != nil {
		e.Before = auditJSON(before)
	}
	if after != nil {
		e.After = auditJSON(after)
	}
	return e
}

func auditJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// Login checks credentials and opens a session. Before any password is
// hashed it checks, in order: the client address's failures across logins,
// the back-off of this login from this address, the back-off of this login
// across addresses (skipped from addresses it recently signed in from), and
// a free hashing slot. Failures are audited in aggregate (FlushFailedLogins),
// successes one by one.
func (s *Service) Login(ctx context.Context, login, password, remote string) (*Identity, *Session, error) {
	now := s.now()
	login = strings.TrimSpace(login)
	addr, host := addrKey(remote), hostOf(remote)
	if s.cfg.BreakGlass != "" && login != s.cfg.BreakGlass {
		s.failed.add(login, host, "refused: password sign-in disabled", now)
		return nil, nil, ErrPasswordLoginDisabled
	}
	if err := s.admit(ctx, login, addr, host, now); err != nil {
		return nil, nil, err
	}
	id, err := s.dir.Authenticate(ctx, login, password)
	<-s.hashing
	if err == nil && s.cfg.BreakGlass != "" && id.Role != RSSI {
		err = ErrPasswordLoginDisabled
	}
	if err != nil {
		s.loginFailed(ctx, login, addr, now)
		reason := "wrong login or password"
		if errors.Is(err, ErrPasswordLoginDisabled) {
			reason = "refused: break-glass account is not an RSSI"
		} else if !errors.Is(err, ErrPassword) {
			reason = "error"
		} else if strings.Contains(err.Error(), "disabled") {
			reason = "account disabled"
		}
		s.failed.add(login, host, reason, now)
		return nil, nil, err
	}
	if err := s.fails.ClearLoginFailures(ctx, pairKind+pairKey(login, addr)); err != nil {
		s.cfg.Log.Warn("auth: cannot clear the failed logins of a successful one", "err", err)
	}
	s.known.add(login, addr, now)
	sess, err := s.openSession(ctx, id, "login", remote, now, nil)
	if err != nil {
		return nil, nil, err
	}
	return id, sess, nil
}

// admit applies the limits of Login and takes a hashing slot; the caller
// gives it back once the password is checked.
func (s *Service) admit(ctx context.Context, login, addr, host string, now time.Time) error {
	refuse := func(wait time.Duration, busy bool, reason string) error {
		s.failed.add(login, host, reason, now)
		return &RateLimitedError{RetryAfter: wait, Busy: busy}
	}
	type check struct {
		lim         limit
		key, reason string
	}
	checks := []check{{s.byAddr, addr, "refused: address limit"}, {s.byPair, pairKey(login, addr), "refused: back-off"}}
	if !s.known.has(login, addr, now) {
		checks = append(checks, check{s.byLogin, loginKey(login), "refused: login back-off"})
	}
	for _, c := range checks {
		wait, err := c.lim.wait(ctx, s.fails, c.key, now)
		if err != nil {
			return err
		}
		if wait > 0 {
			return refuse(wait, false, c.reason)
		}
	}
	select {
	case s.hashing <- struct{}{}:
		return nil
	default:
	}
	// Hold the caller a little before refusing: a slot often frees within
	// one hash, and a flood answered at once only comes back sooner,
	// taking the CPU that other requests need.
	t := time.NewTimer(busyWait)
	defer t.Stop()
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	return refuse(time.Second, true, "refused: busy")
}

// busyWait is how long a login waits for a hashing slot before its 429.
const busyWait = 100 * time.Millisecond

// loginFailed counts a failure against the three limits. The login has
// failed whatever happens here: a failure that cannot be stored is logged.
func (s *Service) loginFailed(ctx context.Context, login, addr string, now time.Time) {
	for _, key := range []string{pairKind + pairKey(login, addr), loginKind + loginKey(login), addrKind + addr} {
		if err := s.fails.AddLoginFailure(ctx, key, now); err != nil {
			s.cfg.Log.Error("auth: cannot count a failed login", "err", err)
		}
	}
}

// openSession creates a session for id, audited as action, in one
// transaction with whatever more does (nil for nothing).
func (s *Service) openSession(ctx context.Context, id *Identity, action, remote string, now time.Time, more func(store.Tx) error) (*Session, error) {
	sess := &Session{Token: rand.Text(), CSRF: rand.Text(), ExpiresAt: now.Add(s.cfg.SessionTTL)}
	err := s.st.Update(ctx, func(tx store.Tx) error {
		if more != nil {
			if err := more(tx); err != nil {
				return err
			}
		}
		if err := tx.CreateSession(ctx, store.Session{IDHash: HashToken(sess.Token), UserID: id.UserID, CSRF: sess.CSRF,
			CreatedAt: now, ExpiresAt: sess.ExpiresAt, Remote: remote}); err != nil {
			return err
		}
		if _, err := tx.DeleteExpiredSessions(ctx, now); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &audit.Entry{Time: now, Actor: id.Login, Role: string(id.Role), Action: action,
			Target: "user/" + id.Login, Remote: remote})
	})
	if err != nil {
		return nil, fmt.Errorf("auth: open session: %w", err)
	}
	id.Via, id.sessionHash, id.csrf = ViaSession, HashToken(sess.Token), sess.CSRF
	return sess, nil
}

// Logout ends the session id came with.
func (s *Service) Logout(ctx context.Context, id *Identity, remote string) error {
	if id.Via != ViaSession {
		return nil
	}
	return s.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.DeleteSession(ctx, id.sessionHash); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &audit.Entry{Time: s.now(), Actor: id.Login, Role: string(id.Role), Action: "logout",
			Target: "user/" + id.Login, Remote: remote})
	})
}

// Authenticate resolves a request's identity from its bearer token or
// session cookie. It returns nil, nil for an anonymous request and
// ErrUnauthenticated for credentials that do not resolve. A session's
// unsafe requests must also pass the CSRF check.
func (s *Service) Authenticate(r *http.Request) (*Identity, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := bearer(h)
		if !ok {
			return nil, ErrUnauthenticated
		}
		switch {
		case strings.HasPrefix(tok, EdgeTokenPrefix):
			hash, now := HashToken(tok), s.now()
			if c, ok := s.edges.get(hash, now); ok {
				return &Identity{Role: Edge, EdgeID: c.id, UAI: c.uai, Via: ViaEdge}, nil
			}
			e, err := s.st.EdgeByToken(ctx, hash)
			if err != nil {
				return nil, unauth(err)
			}
			s.edges.put(hash, cachedEdge{id: e.ID, uai: e.UAI, until: now.Add(EdgeTokenTTL)}, now)
			return &Identity{Role: Edge, EdgeID: e.ID, UAI: e.UAI, Via: ViaEdge}, nil
		case strings.HasPrefix(tok, APITokenPrefix):
			t, err := s.st.APIToken(ctx, HashToken(tok))
			if err != nil {
				return nil, unauth(err)
			}
			now := s.now()
			if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
				return nil, ErrUnauthenticated
			}
			id, err := s.dir.Lookup(ctx, t.UserID)
			if err != nil {
				return nil, err
			}
			id.Via, id.TokenID = ViaToken, t.ID
			// Last use is kept to the minute: enough to spot a dead token
			// without a write per request.
			if now.Sub(t.LastUsed) > time.Minute {
				s.st.Update(ctx, func(tx store.Tx) error { return tx.TouchAPIToken(ctx, t.ID, now) })
			}
			return id, nil
		}
		return nil, ErrUnauthenticated
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	sess, err := s.st.Session(ctx, HashToken(c.Value))
	if err != nil {
		return nil, unauth(err)
	}
	if !s.now().Before(sess.ExpiresAt) {
		return nil, ErrUnauthenticated
	}
	id, err := s.dir.Lookup(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	id.Via, id.sessionHash, id.csrf = ViaSession, sess.IDHash, sess.CSRF
	if err := checkCSRF(r, id); err != nil {
		return nil, err
	}
	return id, nil
}

func unauth(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnauthenticated
	}
	return err
}

// checkCSRF protects cookie-authenticated unsafe requests: they must carry
// the session's token (header X-CSRF-Token, or form field csrf_token for
// plain HTML forms) and, when the browser says where it comes from, come
// from this host. Bearer requests need neither: browsers never add them.
func checkCSRF(r *http.Request, id *Identity) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return ErrCSRF
		}
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		ct := r.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") {
			tok = r.PostFormValue("csrf_token")
		}
	}
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(id.csrf)) != 1 {
		return ErrCSRF
	}
	return nil
}

// SetSessionCookie hands the session to the browser.
func (s *Service) SetSessionCookie(w http.ResponseWriter, sess *Session) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sess.Token, Path: "/", Expires: sess.ExpiresAt,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// ClearSessionCookie removes it.
func (s *Service) ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// CreateAPIToken issues a bearer token acting as id's account. The token
// is shown once; the store keeps its hash.
func (s *Service) CreateAPIToken(ctx context.Context, id *Identity, name string, ttl time.Duration, remote string) (string, store.APIToken, error) {
	if id.UserID == 0 {
		return "", store.APIToken{}, fmt.Errorf("auth: only accounts hold API tokens")
	}
	tok, hash := NewToken(APITokenPrefix)
	now := s.now()
	t := store.APIToken{UserID: id.UserID, Name: name, TokenHash: hash, CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if t.ID, err = tx.CreateAPIToken(ctx, t); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &audit.Entry{Time: now, Actor: id.Actor(), Role: string(id.Role), Action: "token.create",
			Target: fmt.Sprintf("token/%d", t.ID), After: auditJSON(t), Remote: remote})
	})
	if err != nil {
		return "", store.APIToken{}, err
	}
	return tok, t, nil
}

// RevokeAPIToken deletes one of id's tokens.
func (s *Service) RevokeAPIToken(ctx context.Context, id *Identity, tokenID int64, remote string) error {
	return s.RevokeUserAPIToken(ctx, id, id.UserID, id.Login, tokenID, remote)
}

// RevokeUserAPIToken deletes token tokenID of account ownerID, on behalf
// of id (the owner, or the RSSI revoking anyone's).
func (s *Service) RevokeUserAPIToken(ctx context.Context, id *Identity, ownerID int64, owner string, tokenID int64, remote string) error {
	return s.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.DeleteAPIToken(ctx, ownerID, tokenID); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &audit.Entry{Time: s.now(), Actor: id.Actor(), Role: string(id.Role), Action: "token.revoke",
			Target: fmt.Sprintf("token/%d", tokenID), After: auditJSON(map[string]string{"owner": owner}), Remote: remote})
	})
}

// RevokeCredentials ends every session and revokes every API token of an
// account, inside tx: its password, role, school or state changed, so what
// was granted under the old ones must not outlive them. Re-enabling an
// account therefore brings nothing back. It returns how many tokens went.
func RevokeCredentials(ctx context.Context, tx store.Tx, userID int64) (int, error) {
	if err := tx.DeleteUserSessions(ctx, userID); err != nil {
		return 0, err
	}
	return tx.DeleteUserAPITokens(ctx, userID)
}

// ErrSSOAccount refuses a password operation on an account that signs in
// with the académie's identity provider.
var ErrSSOAccount = errors.New("auth: this account signs in with the académie's identity provider")

// ChangePassword replaces the password of id's account after checking the
// current one (with the limits of Login: a stolen session cannot try
// passwords faster than the login form). Every session and API token of the
// account ends; the caller gets a new session in place of theirs.
func (s *Service) ChangePassword(ctx context.Context, id *Identity, current, next, remote string) (*Session, error) {
	now := s.now()
	addr, host := addrKey(remote), hostOf(remote)
	if current == next {
		return nil, fmt.Errorf("%w: the new password must differ from the current one", ErrWeakPassword)
	}
	if err := s.admit(ctx, id.Login, addr, host, now); err != nil {
		return nil, err
	}
	u, err := s.st.UserByID(ctx, id.UserID)
	if err != nil {
		<-s.hashing
		return nil, err
	}
	if u.SSOSubject != "" || u.PasswordHash == "" {
		<-s.hashing
		return nil, ErrSSOAccount
	}
	if err := CheckPassword(u.PasswordHash, current); err != nil {
		<-s.hashing
		if errors.Is(err, ErrPassword) {
			s.loginFailed(ctx, id.Login, addr, now)
			s.failed.add(id.Login, host, "password change: wrong current password", now)
		}
		return nil, err
	}
	hash, err := HashPassword(next, DefaultParams)
	<-s.hashing
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWeakPassword, err)
	}
	before := u
	u.PasswordHash, u.MustChangePassword = hash, false
	id.MustChangePassword = false
	return s.openSession(ctx, id, "login", remote, now, func(tx store.Tx) error {
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		n, err := RevokeCredentials(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &audit.Entry{Time: now, Actor: id.Login, Role: string(id.Role), Action: "user.password",
			Target: "user/" + u.Login, Before: auditJSON(map[string]bool{"must_change_password": before.MustChangePassword}),
			After: auditJSON(map[string]any{"tokens_revoked": n, "sessions_ended": true}), Remote: remote})
	})
}

// ErrWeakPassword refuses a new password (too short, too long, unchanged).
var ErrWeakPassword = errors.New("auth: unacceptable new password")
