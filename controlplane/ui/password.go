package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"vigie/controlplane/auth"
	"vigie/controlplane/store"
)

// passwordView is the form changing one's own password.
type passwordView struct {
	Required bool
	SSO      bool
	Errors   []string
}

func (h *Handler) passwordForm(rq *request) error {
	return rq.render(200, "password", "password.title", passwordView{Required: rq.id.MustChangePassword, SSO: rq.id.SSO})
}

// passwordSubmit changes the password through the auth service, like the
// login form (the new session's cookie must reach the browser): every
// other session and every API token of the account end.
func (h *Handler) passwordSubmit(rq *request) error {
	v := passwordView{Required: rq.id.MustChangePassword, SSO: rq.id.SSO}
	cur, next, again := rq.r.PostFormValue("current"), rq.r.PostFormValue("new"), rq.r.PostFormValue("again")
	switch {
	case cur == "" || next == "":
		v.Errors = []string{T("password.missing")}
	case next != again:
		v.Errors = []string{T("password.mismatch")}
	}
	if v.Errors != nil {
		return rq.render(422, "password", "password.title", v)
	}
	sess, err := h.auth.ChangePassword(rq.r.Context(), rq.id, cur, next, clientAddr(rq.r))
	var rl *auth.RateLimitedError
	switch {
	case errors.As(err, &rl):
		v.Errors = []string{T("login.ratelimited", int(rl.RetryAfter.Minutes())+1)}
		return rq.render(http.StatusTooManyRequests, "password", "password.title", v)
	case errors.Is(err, auth.ErrPassword):
		v.Errors = []string{T("password.wrong")}
		return rq.render(422, "password", "password.title", v)
	case errors.Is(err, auth.ErrWeakPassword):
		v.Errors = []string{T("password.weak", auth.MinPasswordLen)}
		return rq.render(422, "password", "password.title", v)
	case errors.Is(err, auth.ErrSSOAccount):
		v.Errors = []string{T("password.sso")}
		return rq.render(409, "password", "password.title", v)
	case err != nil:
		return err
	}
	h.auth.SetSessionCookie(rq.w, sess)
	return rq.redirect("/compte", "passwordchanged")
}

func (v userTokensView) subject() string { return v.Login }

// userTokensView lists one account's API tokens for the RSSI.
type userTokensView struct {
	Login  string
	Tokens []store.APIToken
}

func (h *Handler) userTokens(rq *request) error {
	login := rq.r.PathValue("login")
	ts, err := rq.api().UserTokens(rq.ctx(), login)
	if err != nil {
		return err
	}
	return rq.render(200, "usertokens", "usertokens.title", userTokensView{Login: login, Tokens: ts})
}

func (h *Handler) userTokenRevoke(rq *request) error {
	login, id := rq.r.PathValue("login"), rq.r.PathValue("id")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return notFound()
	}
	if err := rq.api().RevokeUserToken(rq.ctx(), login, id); err != nil {
		return err
	}
	return rq.redirect("/utilisateurs/"+url.PathEscape(login)+"/jetons", "tokenrevoked")
}
