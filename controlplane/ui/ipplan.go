package ui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/ipplan"
	"vigie/controlplane/store"
	"vigie/rules/policy"
)

// IP plans proposed by the Collectivités: a technicien of the département
// proposes a school's zones (prefixes and the profile of each) with a
// comment; the RSSI reads the proposal as a diff against the draft and
// validates it into the draft, or refuses it with a reason the technicien
// reads. Every step is an API call (POST /schools/{uai}/ip-proposals,
// /ip-proposals/{id}/validate and /refuse): its checks, scope and audit
// entries apply to a click as to a script.

// ipplanProposers may propose a plan: the technicians (the API keeps each
// to the schools of their scope).
var ipplanProposers = []auth.Role{auth.Technicien}

// ipplansView is the Plans d'adressage page.
type ipplansView struct {
	Pending, Done []api.IPProposalView
	// Schools are the technicien's schools, for the form's school choice.
	Schools    []policy.School
	CanPropose bool
	CanDecide  bool
}

func (h *Handler) ipplans(rq *request) error {
	all, err := rq.api().IPProposals(rq.ctx(), "", "")
	if err != nil {
		return err
	}
	v := ipplansView{CanPropose: rq.is(auth.Technicien), CanDecide: rq.is(auth.RSSI)}
	for _, p := range all {
		if p.Status == store.ProposalPending {
			v.Pending = append(v.Pending, p)
		} else {
			v.Done = append(v.Done, p)
		}
	}
	// Oldest pending first: they wait the longest.
	slices.Reverse(v.Pending)
	if v.CanPropose {
		if v.Schools, err = allSchools(rq); err != nil {
			return err
		}
	}
	return rq.render(200, "ipplans", "ipplan.title", v)
}

// proposeView is the proposal form of one school.
type proposeView struct {
	School   policy.School
	Profiles []policy.Profile
	// Rows are the form's zone rows: the plan and blank rows.
	Rows    []policy.Zone
	Comment string
	Errors  formErrors
}

// proposeFields maps the proposal's field paths to the form's inputs; %d
// is the row (see proposalFromForm for blank rows).
var proposeFields = map[string]string{"zones[*].name": "p-%d-name", "zones[*].cidrs": "p-%d-cidrs",
	"zones[*].interfaces": "p-%d-interfaces", "zones[*].profile": "p-%d-profile", "zones[*]": "p-%d-cidrs",
	"comment": "p-comment"}

func (h *Handler) proposeForm(rq *request) error {
	uai := strings.ToUpper(rq.query("uai"))
	if uai == "" {
		return rq.redirect("/plans-adressage", "")
	}
	v := &proposeView{}
	var err error
	if v.School, err = rq.api().School(rq.ctx(), uai); err != nil {
		return err
	}
	if v.Profiles, err = rq.api().Profiles(rq.ctx()); err != nil {
		return err
	}
	v.Rows = append(slices.Clone(v.School.Zones), make([]policy.Zone, blankZones)...)
	return rq.render(200, "ipplanform", "ipplan.form.title", v)
}

// proposalFromForm reads the zone rows of the form. rowOf gives the form
// row of each zone sent: blank rows are skipped, so a zone's index in the
// proposal is not always its row's.
func proposalFromForm(f url.Values) (zones, rows []policy.Zone, rowOf []int) {
	for i := 0; i < 64; i++ {
		p := fmt.Sprintf("zone.%d.", i)
		if _, ok := f[p+"name"]; !ok {
			break
		}
		z := policy.Zone{Name: strings.TrimSpace(f.Get(p + "name")), Profile: strings.TrimSpace(f.Get(p + "profile")),
			CIDRs: splitList(f.Get(p + "cidrs")), Interfaces: splitList(f.Get(p + "interfaces"))}
		rows = append(rows, z)
		if z.Name == "" && len(z.CIDRs) == 0 && len(z.Interfaces) == 0 {
			continue
		}
		zones = append(zones, z)
		rowOf = append(rowOf, i)
	}
	return zones, rows, rowOf
}

var zoneIndex = regexp.MustCompile(`^zones\[(\d+)\]`)

// toRows renames the API's zones[k] to the form row that zone came from.
func toRows(ae *apiError, rowOf []int) {
	for i, e := range ae.Errors {
		ae.Errors[i] = zoneIndex.ReplaceAllStringFunc(e, func(m string) string {
			k, _ := strconv.Atoi(zoneIndex.FindStringSubmatch(m)[1])
			if k < len(rowOf) {
				k = rowOf[k]
			}
			return "zones[" + strconv.Itoa(k) + "]"
		})
	}
}

func (h *Handler) proposeSubmit(rq *request) error {
	uai := strings.ToUpper(rq.form("uai"))
	zones, rows, rowOf := proposalFromForm(rq.r.PostForm)
	req := api.IPProposalRequest{Zones: zones, Comment: rq.form("comment")}
	created, err := rq.api().ProposeIPPlan(rq.ctx(), uai, req)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
	case err != nil:
		return err
	default:
		return rq.redirect("/plans-adressage/"+strconv.FormatInt(created.ID, 10), "ipproposed")
	}
	toRows(ae, rowOf)
	v := &proposeView{Rows: rows, Comment: req.Comment, Errors: problems(ae, proposeFields)}
	if v.School, err = rq.api().School(rq.ctx(), uai); err != nil {
		return err
	}
	if v.Profiles, err = rq.api().Profiles(rq.ctx()); err != nil {
		return err
	}
	return rq.render(http.StatusUnprocessableEntity, "ipplanform", "ipplan.form.title", v)
}

// ipplanView is one proposal: its diff, its state, and for the RSSI while
// it waits the forms deciding it.
type ipplanView struct {
	P         api.IPProposalView
	CanDecide bool
	Reason    string
	Errors    formErrors
}

func (h *Handler) ipplanData(rq *request) (*ipplanView, error) {
	id, err := strconv.ParseInt(rq.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, notFound()
	}
	v := &ipplanView{}
	if v.P, err = rq.api().IPProposal(rq.ctx(), id); err != nil {
		return nil, err
	}
	v.CanDecide = rq.is(auth.RSSI) && v.P.Status == store.ProposalPending
	return v, nil
}

func (h *Handler) ipplanShow(rq *request) error {
	v, err := h.ipplanData(rq)
	if err != nil {
		return err
	}
	return rq.render(200, "ipplan", "ipplan.show.title", v)
}

// ipplanDecide validates or refuses a proposal, then shows it with the
// outcome; a refusal of the API (a stale diff, a plan that no longer fits
// the draft, a missing reason) shows on the same page.
func (h *Handler) ipplanDecide(rq *request, action string) error {
	v, err := h.ipplanData(rq)
	if err != nil {
		return err
	}
	if action == "validate" {
		rev, _ := strconv.ParseInt(rq.form("revision"), 10, 64)
		_, err = rq.api().ValidateIPProposal(rq.ctx(), v.P.ID, api.IPProposalValidate{Revision: rev, Comment: rq.form("comment")})
	} else {
		v.Reason = rq.form("reason")
		_, err = rq.api().RefuseIPProposal(rq.ctx(), v.P.ID, v.Reason)
	}
	var ae *apiError
	switch {
	case err == nil:
		flash := "ipvalidated"
		if action == "refuse" {
			flash = "iprefused"
		}
		return rq.redirect("/plans-adressage/"+strconv.FormatInt(v.P.ID, 10), flash)
	case errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed:
		v.Errors = msgs(T("ipplan.err.stale"))
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		v.Errors = msgs(apiMessage(ae))
	case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity && action == "refuse":
		v.Errors = problems(ae, map[string]string{"reason": "r-reason"})
	case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
		// The plan no longer fits the draft: each problem names its zone.
		v.Errors = msgs(apiMessage(ae))
		for _, e := range ae.Errors {
			path, text := splitField(e)
			if m := zoneIndex.FindStringSubmatch(path); m != nil {
				if k, _ := strconv.Atoi(m[1]); k < len(v.P.Zones) {
					v.Errors = append(v.Errors, fieldError{Text: T("ipplan.err.zone", v.P.Zones[k].Name, frenchDetail(text))})
					continue
				}
			}
			v.Errors = append(v.Errors, fieldError{Text: frenchDetail(text)})
		}
	default:
		return err
	}
	// Read it again: the diff against the draft as it is now.
	nv, err := h.ipplanData(rq)
	if err != nil {
		return err
	}
	nv.Reason, nv.Errors = v.Reason, v.Errors
	return rq.render(http.StatusUnprocessableEntity, "ipplan", "ipplan.show.title", nv)
}

func (h *Handler) ipplanValidate(rq *request) error { return h.ipplanDecide(rq, "validate") }
func (h *Handler) ipplanRefuse(rq *request) error   { return h.ipplanDecide(rq, "refuse") }

// proposalState names a proposal's state in French.
func proposalState(status string) string { return T("ipplan.state." + status) }

// zoneChange names a zone's change in French.
func zoneChange(change string) string { return T("ipplan.change." + change) }

func init() {
	funcs["proposalState"] = proposalState
	funcs["zoneChange"] = zoneChange
	funcs["isPupils"] = ipplan.IsPupils
}
