package ui

import (
	"errors"
	"strings"
	"time"

	"vigie/controlplane/auth"
)

func (v refView) subject() string {
	if v.Found == nil {
		return ""
	}
	return v.Ref
}

// refView is the "Retrouver un refus" page: a block page's reference in,
// the refusal out (through the API, which scopes and audits the lookup).
type refView struct {
	Ref    string
	Errors []string
	Found  *refusal
	// Fixed is a chef's school: the lookup searches it and only it.
	Fixed string
}

// refusal is the API's answer (controlplane/logs.Refusal).
type refusal struct {
	Reference, UAI, Client, MAC, User, Proto, Method, Host, URL, Verdict, Category, Zone string
	Time                                                                                 time.Time
	Status                                                                               int
	Serial, Seq                                                                          uint64
	Entry                                                                                *struct{ Kind, List, Category, Entry string }
}

func (h *Handler) refLookup(rq *request) error {
	v := &refView{Ref: strings.TrimSpace(rq.r.URL.Query().Get("ref"))}
	if rq.id.Role == auth.Chef {
		v.Fixed = rq.id.UAI
	}
	if v.Ref == "" {
		return rq.render(200, "reference", "ref.title", v)
	}
	var r refusal
	err := rq.api().Refusal(rq.ctx(), v.Ref, &r)
	var ae *apiError
	switch {
	case err == nil:
		v.Found = &r
	case errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 422 || ae.Status == 400):
		v.Errors = []string{apiMessage(ae)}
		return rq.render(ae.Status, "reference", "ref.title", v)
	default:
		return err
	}
	return rq.render(200, "reference", "ref.title", v)
}
