package ui

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/rules/policy"
)

// usersView is the Utilisateurs page (RSSI): the accounts and the form
// creating one.
type usersView struct {
	Users   []store.User
	Schools []policy.School
	Roles   []auth.Role
	New     api.UserRequest
	Errors  formErrors
	Secret  *secretView
}

func (h *Handler) users(rq *request) error {
	v, err := h.usersData(rq)
	if err != nil {
		return err
	}
	return rq.render(200, "users", "users.title", v)
}

func (h *Handler) usersData(rq *request) (*usersView, error) {
	us, err := rq.api().Users(rq.ctx())
	if err != nil {
		return nil, err
	}
	schools, err := allSchools(rq)
	if err != nil {
		return nil, err
	}
	return &usersView{Users: us, Schools: schools, Roles: auth.Roles}, nil
}

// userCreate creates an account; a generated password is shown once.
func (h *Handler) userCreate(rq *request) error {
	req := api.UserRequest{Login: rq.form("login"), Name: rq.form("name"), Role: rq.form("role"), UAI: rq.form("uai"), Scope: rq.form("scope")}
	if req.Role != string(auth.Technicien) {
		req.Scope = ""
	}
	if req.Role != string(auth.Chef) {
		// The school only scopes a chef; the form keeps the field for
		// every role, the API refuses it for the others.
		req.UAI = ""
	}
	created, err := rq.api().CreateUser(rq.ctx(), req)
	v, err2 := h.usersData(rq)
	if err2 != nil {
		return err2
	}
	var ae *apiError
	switch {
	case errors.As(err, &ae) && (ae.Status == 422 || ae.Status == 409):
		v.New, v.Errors = req, userProblems(ae)
		if ae.Kind() == "conflict" {
			v.Errors = formErrors{on("u-login", T("users.exists", req.Login))}
		}
		return rq.render(422, "users", "users.title", v)
	case err != nil:
		return err
	}
	v.Secret = &secretView{ID: "password", Title: T("users.created", created.User.Login),
		Text: T("users.password.once"), Value: created.Password}
	return rq.render(201, "users", "users.title", v)
}

func (v userView) subject() string { return v.User.Login }

// userView is one account with the form changing it.
type userView struct {
	User    store.User
	Schools []policy.School
	Roles   []auth.Role
	Self    bool
	Errors  []string
	Secret  *secretView
}

func (h *Handler) userShow(rq *request) error {
	v, err := h.userData(rq, rq.r.PathValue("login"))
	if err != nil {
		return err
	}
	return rq.render(200, "user", "user.title", v)
}

func (h *Handler) userData(rq *request, login string) (*userView, error) {
	us, err := rq.api().Users(rq.ctx())
	if err != nil {
		return nil, err
	}
	v := &userView{Roles: auth.Roles}
	found := false
	for _, u := range us {
		if u.Login == login {
			v.User, found = u, true
		}
	}
	if !found {
		return nil, notFound()
	}
	v.Self = v.User.ID == rq.id.UserID
	if v.Schools, err = allSchools(rq); err != nil {
		return nil, err
	}
	return v, nil
}

// userUpdate changes role, school, name, state, or resets the password.
func (h *Handler) userUpdate(rq *request) error {
	login := rq.r.PathValue("login")
	var patch api.UserPatch
	switch rq.form("action") {
	case "save":
		name, role, uai := rq.form("name"), rq.form("role"), rq.form("uai")
		if role != string(auth.Chef) {
			uai = ""
		}
		scope := rq.form("scope")
		if role != string(auth.Technicien) {
			scope = ""
		}
		patch = api.UserPatch{Name: &name, Role: &role, UAI: &uai, Scope: &scope}
	case "disable", "enable":
		off := rq.form("action") == "disable"
		patch.Disabled = &off
	case "password":
		gen := "generate"
		patch.Password = &gen
	default:
		return &pageError{status: 400, title: "error.api.title", text: "error.api.text", detail: T("users.badaction")}
	}
	out, err := rq.api().PatchUser(rq.ctx(), login, patch)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == 422 {
		v, err := h.userData(rq, login)
		if err != nil {
			return err
		}
		v.Errors = apiProblems(ae)
		return rq.render(422, "user", "user.title", v)
	}
	if err != nil {
		return err
	}
	if patch.Password != nil {
		// The API answers {user, password} when it generated one.
		v, err := h.userData(rq, login)
		if err != nil {
			return err
		}
		v.Secret = &secretView{ID: "password", Title: T("users.password.reset", login), Text: T("users.password.once"), Value: out.Password}
		return rq.render(200, "user", "user.title", v)
	}
	return rq.redirect("/utilisateurs/"+url.PathEscape(login), "usersaved")
}

// accountView is Mon compte: who I am and my API tokens.
type accountView struct {
	Tokens []store.APIToken
	Errors []string
	Secret *secretView
	Name   string
	Days   string
}

func (h *Handler) account(rq *request) error {
	v, err := h.accountData(rq)
	if err != nil {
		return err
	}
	return rq.render(200, "account", "account.title", v)
}

func (h *Handler) accountData(rq *request) (*accountView, error) {
	ts, err := rq.api().Tokens(rq.ctx())
	if err != nil {
		return nil, err
	}
	return &accountView{Tokens: ts}, nil
}

// tokenCreate creates an API token and shows it once.
func (h *Handler) tokenCreate(rq *request) error {
	name, days := rq.form("name"), rq.form("days")
	req := api.TokenRequest{Name: name}
	var errs []string
	if days != "" {
		n, err := strconv.Atoi(days)
		if err != nil {
			errs = append(errs, T("account.token.baddays"))
		}
		req.ExpiresInDays = n
	}
	var created api.TokenCreated
	if len(errs) == 0 {
		var err error
		created, err = rq.api().CreateToken(rq.ctx(), req)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Status == 422:
			errs = apiProblems(ae)
		case err != nil:
			return err
		}
	}
	v, err := h.accountData(rq)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		v.Errors, v.Name, v.Days = errs, name, days
		return rq.render(422, "account", "account.title", v)
	}
	v.Secret = &secretView{ID: "token", Title: T("account.token.created", created.Info.Name), Text: T("account.token.once"), Value: created.Token}
	return rq.render(201, "account", "account.title", v)
}

func (h *Handler) tokenRevoke(rq *request) error {
	id := rq.r.PathValue("id")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return notFound()
	}
	if err := rq.api().RevokeToken(rq.ctx(), id); err != nil {
		return err
	}
	return rq.redirect("/compte", "tokenrevoked")
}

// userProblems puts the API's refusals of a new account on the form's
// fields, in the console's words (no role identifiers).
func userProblems(ae *apiError) formErrors {
	d := ae.Detail
	switch {
	case strings.HasPrefix(d, "login "):
		return formErrors{on("u-login", T("users.err.login"))}
	case strings.Contains(d, "doit avoir un uai"):
		return formErrors{on("u-uai", T("users.err.uai"))}
	case strings.Contains(d, "seul un chef"):
		return formErrors{on("u-uai", T("users.err.uaionly"))}
	case strings.HasPrefix(d, "champ scope"):
		return formErrors{on("u-scope", T("users.err.scope"))}
	}
	return problems(ae, map[string]string{"login": "u-login", "name": "u-name", "uai": "u-uai"})
}
