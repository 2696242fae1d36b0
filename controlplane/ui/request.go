package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"vigie/controlplane/auth"
)

// maxForm bounds a form body: a pasted list of 100,000 domains fits.
const maxForm = 8 << 20

// request is one page request of a signed-in person.
type request struct {
	h     *Handler
	w     http.ResponseWriter
	r     *http.Request
	id    *auth.Identity
	csrf  string
	route route
}

// page wraps a route: it signs the caller in from the session cookie
// (checking the CSRF token of every form sent), sends the anonymous and
// the expired to the login form, refuses the roles the page is not for,
// and turns the handler's error into a French page.
func (h *Handler) page(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		id, err := h.auth.Authenticate(r)
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, auth.ErrCSRF):
			h.bare(w, r, http.StatusForbidden, "error.csrf.title", "error.csrf.text")
			return
		case errors.Is(err, auth.ErrUnauthenticated):
			// The session ended (expired, logged out elsewhere, account
			// changed): say so on the login form, then come back here.
			h.auth.ClearSessionCookie(w)
			h.toLogin(w, r, "expiree")
			return
		case errors.As(err, &mbe):
			h.bare(w, r, http.StatusRequestEntityTooLarge, "error.toolarge.title", "error.toolarge.text")
			return
		case err != nil:
			h.log.Error("ui: authenticate", "path", r.URL.Path, "err", err)
			h.bare(w, r, http.StatusInternalServerError, "error.internal.title", "error.internal.text")
			return
		case id == nil:
			h.toLogin(w, r, "")
			return
		case id.Via != auth.ViaSession:
			// Pages are for browsers: API tokens have the API.
			h.bare(w, r, http.StatusUnauthorized, "error.session.title", "error.session.text")
			return
		}
		if id.MustChangePassword && rt.path != "/compte/mot-de-passe" && rt.path != "/deconnexion" {
			// A generated password: nothing else until it is changed.
			http.Redirect(w, r, "/compte/mot-de-passe", http.StatusSeeOther)
			return
		}
		r = r.WithContext(auth.WithIdentity(r.Context(), id))
		rq := &request{h: h, w: w, r: r, id: id, csrf: auth.CSRFToken(r.Context()), route: rt}
		if !allowed(rt.roles, id.Role) {
			rq.fail(forbidden())
			return
		}
		if err := rt.h(rq); err != nil {
			rq.fail(err)
		}
	})
}

// notFoundPage answers an unknown address: inside the layout, with the
// menu, for someone signed in; bare (with the way to the login form) for
// anyone else.
func (h *Handler) notFoundPage(w http.ResponseWriter, r *http.Request) {
	if id, err := h.auth.Authenticate(r); err == nil && id != nil && id.Via == auth.ViaSession {
		r = r.WithContext(auth.WithIdentity(r.Context(), id))
		rq := &request{h: h, w: w, r: r, id: id, csrf: auth.CSRFToken(r.Context())}
		rq.fail(notFound())
		return
	}
	h.bare(w, r, http.StatusNotFound, "error.notfound.title", "error.notfound.text")
}

// toLogin redirects to the login form, remembering the page asked for.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, motif string) {
	q := url.Values{}
	if motif != "" {
		q.Set("motif", motif)
	}
	if r.Method == http.MethodGet && r.URL.Path != "/" && !strings.HasPrefix(r.URL.Path, "/fragments/") {
		q.Set("suite", r.URL.RequestURI())
	}
	target := "/connexion"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	if strings.HasPrefix(r.URL.Path, "/fragments/") {
		// A fragment fetched by script: let the script reload the page.
		w.Header().Set("X-Vigie-Login", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// pageError is a failure with its status and French message keys.
type pageError struct {
	status      int
	title, text string
	detail      string
}

func (e *pageError) Error() string { return e.title + ": " + e.detail }

func forbidden() error {
	return &pageError{status: http.StatusForbidden, title: "error.forbidden.title", text: "error.forbidden.text"}
}

func notFound() error {
	return &pageError{status: http.StatusNotFound, title: "error.notfound.title", text: "error.notfound.text"}
}

// fail shows err as a page. Refusals of the API become the same pages as
// the UI's own refusals; anything unexpected is logged and shown without
// internals.
func (rq *request) fail(err error) {
	var pe *pageError
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusUnauthorized:
			rq.h.auth.ClearSessionCookie(rq.w)
			rq.h.toLogin(rq.w, rq.r, "expiree")
			return
		case http.StatusForbidden:
			pe = forbidden().(*pageError)
			pe.detail = ae.Detail
		case http.StatusNotFound:
			pe = notFound().(*pageError)
		default:
			pe = &pageError{status: ae.Status, title: "error.api.title", text: "error.api.text", detail: apiMessage(ae)}
			if ae.Status >= 500 {
				rq.h.log.Error("ui: API call failed", "path", rq.r.URL.Path, "err", err)
				pe.detail = ""
			}
		}
	case errors.As(err, &mbe):
		pe = &pageError{status: http.StatusRequestEntityTooLarge, title: "error.toolarge.title", text: "error.toolarge.text"}
	default:
		rq.h.log.Error("ui: page failed", "path", rq.r.URL.Path, "err", err)
		pe = &pageError{status: http.StatusInternalServerError, title: "error.internal.title", text: "error.internal.text"}
	}
	rq.render(pe.status, "error", pe.title, errorView{Text: pe.text, Detail: pe.detail})
}

// errorView is what the error template shows.
type errorView struct {
	Text, Detail string
}

// form returns a trimmed form value.
func (rq *request) form(name string) string { return strings.TrimSpace(rq.r.PostFormValue(name)) }

// query returns a trimmed query value.
func (rq *request) query(name string) string { return strings.TrimSpace(rq.r.URL.Query().Get(name)) }

// redirect answers a form with the page to show next (post, redirect, get:
// reloading the page never sends the form again).
func (rq *request) redirect(target string, flash string) error {
	if flash != "" {
		path, frag, _ := strings.Cut(target, "#")
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		target = path + sep + "ok=" + url.QueryEscape(flash)
		if frag != "" {
			target += "#" + frag
		}
	}
	http.Redirect(rq.w, rq.r, target, http.StatusSeeOther)
	return nil
}

// is reports whether the caller has one of roles.
func (rq *request) is(roles ...auth.Role) bool { return allowed(roles, rq.id.Role) }

// now is the handler's clock.
func (rq *request) now() time.Time { return rq.h.now() }
