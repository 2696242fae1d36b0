package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"vigie/controlplane/auth"
)

// Config is the sso section of controlplane.yaml.
type Config struct {
	// Issuer is the identity provider's issuer URL (its discovery document
	// is ISSUER/.well-known/openid-configuration).
	Issuer string `yaml:"issuer"`
	// ClientID and ClientSecretFile are Vigie's client registration at
	// the provider (the secret in a file of mode 0600).
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// RedirectURL is https://VIGIE/connexion/academique/retour, as
	// registered at the provider.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes requested besides openid (default profile, email).
	Scopes []string `yaml:"scopes,omitempty"`
	// BreakGlass, when set, is the only local account allowed to sign in
	// with a password (it must be an RSSI); empty keeps every local
	// account.
	BreakGlass string `yaml:"break_glass,omitempty"`
	Mapping    `yaml:",inline"`
}

// Check validates the section, naming the faulty field.
func (c Config) Check() error {
	for _, f := range []struct{ name, v string }{{"issuer", c.Issuer}, {"client_id", c.ClientID}, {"client_secret_file", c.ClientSecretFile}, {"redirect_url", c.RedirectURL}} {
		if f.v == "" {
			return fmt.Errorf("sso.%s is required", f.name)
		}
	}
	for _, f := range []struct{ name, v string }{{"issuer", c.Issuer}, {"redirect_url", c.RedirectURL}} {
		u, err := url.Parse(f.v)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
			return fmt.Errorf("sso.%s %q: an https URL is required (http only on loopback)", f.name, f.v)
		}
	}
	if err := c.Mapping.Check(); err != nil {
		return fmt.Errorf("sso.%w", err)
	}
	return nil
}

func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// Flow runs the sign-in with the identity provider.
type Flow struct {
	cfg    Config
	secret string
	auth   *auth.Service
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
	pending  map[string]pending
}

// pending is a sign-in under way, between the redirect to the provider
// and its return: kept here rather than in a cookie, so that the PKCE
// verifier never leaves the server.
type pending struct {
	nonce, verifier, next string
	until                 time.Time
}

// stateCookie binds the return to the browser that left: a callback with
// someone else's state is refused (login CSRF).
const stateCookie = "vigie_sso_state"

const (
	pendingTTL = 10 * time.Minute
	maxPending = 10000
)

// New prepares the flow. The provider is discovered on first use, so that
// the control plane starts (and its break-glass account works) while the
// provider is down.
func New(cfg Config, a *auth.Service, client *http.Client, now func() time.Time) (*Flow, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(cfg.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("sso.client_secret_file: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &Flow{cfg: cfg, secret: strings.TrimSpace(string(b)), auth: a, client: client, now: now, pending: map[string]pending{}}, nil
}

func (f *Flow) discover(ctx context.Context) (*oidc.Provider, error) {
	f.mu.Lock()
	p := f.provider
	f.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, f.client), f.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sso: discover %s: %w", f.cfg.Issuer, err)
	}
	f.mu.Lock()
	f.provider = p
	f.mu.Unlock()
	return p, nil
}

func (f *Flow) oauth(p *oidc.Provider) *oauth2.Config {
	scopes := []string{oidc.ScopeOpenID}
	if f.cfg.Scopes == nil {
		scopes = append(scopes, "profile", "email")
	}
	for _, s := range f.cfg.Scopes {
		if s != oidc.ScopeOpenID {
			scopes = append(scopes, s)
		}
	}
	return &oauth2.Config{ClientID: f.cfg.ClientID, ClientSecret: f.secret, Endpoint: p.Endpoint(), RedirectURL: f.cfg.RedirectURL, Scopes: scopes}
}

// Start sends the browser to the provider, to come back to next.
func (f *Flow) Start(w http.ResponseWriter, r *http.Request, next string) error {
	p, err := f.discover(r.Context())
	if err != nil {
		return err
	}
	st := pending{nonce: rand.Text(), verifier: oauth2.GenerateVerifier(), next: next, until: f.now().Add(pendingTTL)}
	state := rand.Text()
	f.mu.Lock()
	if len(f.pending) >= maxPending {
		now := f.now()
		for k, v := range f.pending {
			if now.After(v.until) {
				delete(f.pending, k)
			}
		}
		if len(f.pending) >= maxPending {
			f.mu.Unlock()
			return &auth.RateLimitedError{RetryAfter: time.Minute, Busy: true}
		}
	}
	f.pending[state] = st
	f.mu.Unlock()
	secure := strings.HasPrefix(f.cfg.RedirectURL, "https:")
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/connexion/academique", MaxAge: int(pendingTTL.Seconds()),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	u := f.oauth(p).AuthCodeURL(state, oidc.Nonce(st.nonce), oauth2.S256ChallengeOption(st.verifier))
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

// ErrState refuses a return that does not match a sign-in this browser
// started (expired, replayed, or forged).
var ErrState = errors.New("sso: unknown or expired sign-in (state)")

// Finish handles the provider's return: checks the state against the
// browser's cookie, exchanges the code with the PKCE verifier, verifies the
// ID token (signature, issuer, audience, expiry, nonce), maps the claims
// and opens a session. It returns the page to go to. A person the mapping
// refuses gets a *Refusal; a disabled or conflicting account an
// *auth.SSORefusedError.
func (f *Flow) Finish(w http.ResponseWriter, r *http.Request, remote string) (*auth.Session, string, error) {
	ctx := r.Context()
	q := r.URL.Query()
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: "/connexion/academique", MaxAge: -1, HttpOnly: true})
	state := q.Get("state")
	c, err := r.Cookie(stateCookie)
	if state == "" || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return nil, "", ErrState
	}
	f.mu.Lock()
	st, ok := f.pending[state]
	delete(f.pending, state)
	f.mu.Unlock()
	if !ok || f.now().After(st.until) {
		return nil, "", ErrState
	}
	if e := q.Get("error"); e != "" {
		return nil, "", fmt.Errorf("sso: the provider answered %s: %s", bounded(e, 100), bounded(q.Get("error_description"), 300))
	}
	p, err := f.discover(ctx)
	if err != nil {
		return nil, "", err
	}
	cctx := oidc.ClientContext(ctx, f.client)
	oc := f.oauth(p)
	tok, err := oc.Exchange(cctx, q.Get("code"), oauth2.VerifierOption(st.verifier))
	if err != nil {
		return nil, "", fmt.Errorf("sso: exchange the code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return nil, "", errors.New("sso: no id_token in the token response")
	}
	idt, err := p.VerifierContext(cctx, &oidc.Config{ClientID: f.cfg.ClientID, Now: f.now}).Verify(cctx, raw)
	if err != nil {
		return nil, "", fmt.Errorf("sso: ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.nonce)) != 1 {
		return nil, "", errors.New("sso: ID token: nonce does not match")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, "", fmt.Errorf("sso: ID token claims: %w", err)
	}
	// Directories often release groups and functions only at the
	// userinfo endpoint: merge them, the ID token's own claims first.
	if ui, err := p.UserInfo(cctx, oauth2.StaticTokenSource(tok)); err == nil && ui.Subject == idt.Subject {
		more := map[string]any{}
		if ui.Claims(&more) == nil {
			for k, v := range more {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	acc, err := f.cfg.Mapping.Map(claims)
	if err != nil {
		return nil, "", err
	}
	_, sess, err := f.auth.SSOLogin(ctx, auth.SSOAccount{Subject: idt.Issuer + " " + idt.Subject, Login: acc.Login, Name: acc.Name,
		Role: acc.Role, UAI: acc.UAI}, remote)
	if err != nil {
		return nil, "", err
	}
	return sess, st.next, nil
}
