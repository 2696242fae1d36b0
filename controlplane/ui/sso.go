package ui

import (
	"errors"
	"net/http"

	"vigie/controlplane/auth"
	"vigie/controlplane/auth/sso"
)

// ssoStart sends the browser to the académie's identity provider.
func (h *Handler) ssoStart(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("suite"))
	if h.sso == nil {
		h.bare(w, r, http.StatusNotFound, "error.notfound.title", "error.notfound.text")
		return
	}
	if err := h.sso.Start(w, r, next); err != nil {
		h.log.Error("ui: SSO start", "err", err)
		h.loginPage(w, r, http.StatusBadGateway, loginView{Next: next, Error: T("sso.unreachable"), SSO: true})
	}
}

// ssoRefusedView explains why an académie identity gets no access.
type ssoRefusedView struct {
	Login, Reason string
}

// ssoReturn is where the provider sends the browser back.
func (h *Handler) ssoReturn(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if h.sso == nil {
		h.bare(w, r, http.StatusNotFound, "error.notfound.title", "error.notfound.text")
		return
	}
	sess, next, err := h.sso.Finish(w, r, clientAddr(r))
	var refusal *sso.Refusal
	var refused *auth.SSORefusedError
	switch {
	case errors.As(err, &refusal):
		h.auth.RecordRefusedSSO(refusal.Login, clientAddr(r), "sso: no role")
		h.ssoRefused(w, r, ssoRefusedView{Login: refusal.Login, Reason: refusal.Reason})
		return
	case errors.As(err, &refused):
		h.ssoRefused(w, r, ssoRefusedView{Reason: refused.Reason})
		return
	case errors.Is(err, sso.ErrState):
		h.loginPage(w, r, http.StatusBadRequest, loginView{Next: "/", Error: T("sso.state"), SSO: true})
		return
	case err != nil:
		h.log.Error("ui: SSO return", "err", err)
		h.loginPage(w, r, http.StatusBadGateway, loginView{Next: "/", Error: T("sso.failed"), SSO: true})
		return
	}
	h.auth.SetSessionCookie(w, sess)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

func (h *Handler) ssoRefused(w http.ResponseWriter, r *http.Request, v ssoRefusedView) {
	pv := &view{Title: T("sso.refused.title"), Path: r.URL.Path, Data: v, Academie: h.academie(r), Now: h.now()}
	if err := h.write(w, http.StatusForbidden, "ssorefused", "layout", pv); err != nil {
		h.log.Error("ui: render SSO refusal", "err", err)
	}
}
