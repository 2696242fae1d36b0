package ui

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"vigie/controlplane/auth"
)

// loginView is the login form.
type loginView struct {
	Login   string
	Next    string
	Notice  string
	Error   string
	Expired bool
	// SSO offers the académie's identity provider.
	SSO bool
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	if id, err := h.auth.Authenticate(r); err == nil && id != nil && id.Via == auth.ViaSession {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("suite")), http.StatusSeeOther)
		return
	}
	lv := loginView{Next: safeNext(r.URL.Query().Get("suite")), SSO: h.sso != nil}
	switch r.URL.Query().Get("motif") {
	case "expiree":
		lv.Notice, lv.Expired = T("login.expired"), true
	case "deconnecte":
		lv.Notice = T("login.loggedout")
	}
	h.loginPage(w, r, http.StatusOK, lv)
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, status int, lv loginView) {
	v := &view{Title: pageTitle(status, "login", T("login.title"), nil), Path: r.URL.Path, Data: lv, Academie: h.academie(r), Now: h.now()}
	if err := h.write(w, status, "login", "layout", v); err != nil {
		h.log.Error("ui: render login", "err", err)
	}
}

// loginSubmit checks the credentials with the auth service (rate-limited
// and audited there) and opens the same session the API would.
func (h *Handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	// A login form posted from another site would sign the victim into
	// the attacker's account: refuse foreign origins.
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			h.bare(w, r, http.StatusForbidden, "error.csrf.title", "error.csrf.text")
			return
		}
	}
	login := strings.TrimSpace(r.PostFormValue("login"))
	password := r.PostFormValue("password")
	lv := loginView{Login: login, Next: safeNext(r.PostFormValue("suite")), SSO: h.sso != nil}
	if login == "" || password == "" {
		lv.Error = T("login.missing")
		h.loginPage(w, r, http.StatusUnprocessableEntity, lv)
		return
	}
	_, sess, err := h.auth.Login(r.Context(), login, password, clientAddr(r))
	var rl *auth.RateLimitedError
	switch {
	case errors.Is(err, auth.ErrPasswordLoginDisabled):
		lv.Error = T("login.breakglass")
		h.loginPage(w, r, http.StatusForbidden, lv)
		return
	case errors.As(err, &rl) && rl.Busy:
		lv.Error = T("login.busy")
		h.loginPage(w, r, http.StatusTooManyRequests, lv)
		return
	case errors.As(err, &rl):
		lv.Error = T("login.ratelimited", int(rl.RetryAfter.Round(time.Minute)/time.Minute)+1)
		h.loginPage(w, r, http.StatusTooManyRequests, lv)
		return
	case errors.Is(err, auth.ErrPassword):
		lv.Error = T("login.wrong")
		h.loginPage(w, r, http.StatusUnauthorized, lv)
		return
	case err != nil:
		h.log.Error("ui: login", "err", err)
		lv.Error = T("error.internal.text")
		h.loginPage(w, r, http.StatusInternalServerError, lv)
		return
	}
	h.auth.SetSessionCookie(w, sess)
	http.Redirect(w, r, lv.Next, http.StatusSeeOther)
}

func (h *Handler) logout(rq *request) error {
	if err := h.auth.Logout(rq.r.Context(), rq.id, clientAddr(rq.r)); err != nil {
		return err
	}
	h.auth.ClearSessionCookie(rq.w)
	http.Redirect(rq.w, rq.r, "/connexion?motif=deconnecte", http.StatusSeeOther)
	return nil
}

// safeNext keeps a post-login destination on this site: a path, never a
// URL to elsewhere ("//evil.example", "https://...", "/\evil").
func safeNext(s string) string {
	local := func(s string) bool {
		return strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") && !strings.HasPrefix(s, "/\\") &&
			!strings.HasPrefix(s, "/api/") && !strings.ContainsAny(s, "\r\n\t\\")
	}
	if !local(s) {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	// Check what is sent, not only what was received: "/%2f%2fx" parses
	// to the path "//x", which would leave the site once re-encoded.
	out := u.RequestURI()
	if !local(out) || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.Path, "/\\") {
		return "/"
	}
	return out
}

// clientAddr is the caller's address without the port: the login limiter
// counts failures per address, and every connection has a new port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
