package ui

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/rules/policy"
)

// schoolsView is the Établissements page.
type schoolsView struct {
	Rows    []schoolRow
	CanEdit bool
}

type schoolRow struct {
	policy.School
	Edges, UpToDate int
}

func (h *Handler) schools(rq *request) error {
	schools, err := allSchools(rq)
	if err != nil {
		return err
	}
	v := schoolsView{CanEdit: rq.is(auth.RSSI)}
	var edges []api.EdgeHealth
	if rq.is(staff...) {
		if edges, err = rq.api().Edges(rq.ctx(), ""); err != nil {
			return err
		}
	}
	for _, s := range schools {
		row := schoolRow{School: s}
		if rq.id.Role == auth.Chef {
			if st, err := rq.api().SchoolStatus(rq.ctx(), s.UAI); err == nil {
				edges = st.Edges
			}
		}
		for _, e := range edges {
			if e.UAI == s.UAI {
				row.Edges++
				if e.UpToDate {
					row.UpToDate++
				}
			}
		}
		v.Rows = append(v.Rows, row)
	}
	return rq.render(200, "schools", "schools.title", v)
}

// subject names the school: "Collège Jean Monnet (0671234X)".
func (v schoolView) subject() string {
	if v.New || v.School.UAI == "" {
		return ""
	}
	return schoolTitle(v.School.Name, v.School.UAI)
}

// schoolView is one school: contacts, IP plan, edges, and for the RSSI
// the forms editing them.
type schoolView struct {
	School   policy.School
	New      bool
	Status   api.SchoolStatus
	Profiles []policy.Profile
	// Rows are the zone rows of the form: the zones and blank rows.
	Rows    []policy.Zone
	CanEdit bool
	// CanEdges is enrolling edges and renewing their tokens: the RSSI and
	// the technicians (the API keeps them to their scope).
	CanEdges bool
	Errors   formErrors
	Secret   *secretView
	// Chart is the school's activity (RSSI and its chef).
	Chart   *chartView
	NoChart string
}

// schoolFields maps the policy's school fields to the form's inputs; a
// zone's index in the policy is its row's (blank rows come last).
var schoolFields = map[string]string{"schools[*].uai": "s-uai", "schools[*].name": "s-name",
	"schools[*].zones[*].name": "z-%d-name", "schools[*].zones[*].cidrs": "z-%d-cidrs",
	"schools[*].zones[*].interfaces": "z-%d-interfaces", "schools[*].zones[*].profile": "z-%d-profile",
	"schools[*].zones[*]": "z-%d-cidrs"}

// secretView shows a token or a password once.
type secretView struct {
	ID, Title, Text, Value string
}

// blankZones is how many empty zone rows the form offers.
const blankZones = 2

func (h *Handler) schoolShow(rq *request) error {
	uai := rq.r.PathValue("uai")
	// A chef's own school only: the API refuses the others too, this
	// answers the same refusal without asking it.
	if !rq.id.CanSeeSchool(uai) {
		return forbidden()
	}
	v, err := h.schoolData(rq, uai)
	if err != nil {
		return err
	}
	return rq.render(200, "school", "school.title", v)
}

func (h *Handler) schoolData(rq *request, uai string) (*schoolView, error) {
	v := &schoolView{CanEdit: rq.is(auth.RSSI), CanEdges: rq.is(auth.RSSI, auth.Technicien)}
	var err error
	if v.School, err = rq.api().School(rq.ctx(), uai); err != nil {
		return nil, err
	}
	if v.Status, err = rq.api().SchoolStatus(rq.ctx(), uai); err != nil {
		return nil, err
	}
	if v.CanEdit {
		var err error
		if v.Profiles, err = rq.api().Profiles(rq.ctx()); err != nil {
			return nil, err
		}
		v.Rows = append(slices.Clone(v.School.Zones), make([]policy.Zone, blankZones)...)
	}
	if rq.is(auth.RSSI, auth.Chef) {
		var err error
		if v.Chart, v.NoChart, err = h.chart(rq, []policy.School{v.School}); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (h *Handler) schoolNew(rq *request) error {
	profiles, err := rq.api().Profiles(rq.ctx())
	if err != nil {
		return err
	}
	v := &schoolView{New: true, CanEdit: true, Profiles: profiles, Rows: make([]policy.Zone, 4)}
	for i, z := range zoneOrder[:4] {
		v.Rows[i].Name = z
	}
	return rq.render(200, "school", "school.new.title", v)
}

// schoolSave creates or replaces a school (its IP plan included) through
// the API, which validates the whole policy with it.
func (h *Handler) schoolSave(rq *request) error {
	uai := rq.r.PathValue("uai")
	isNew := uai == ""
	if isNew {
		uai = strings.ToUpper(rq.form("uai"))
	}
	s, rows := schoolFromForm(rq.r.PostForm, uai)
	var errs formErrors
	if isNew {
		if !policy.ValidUAI(uai) {
			errs = append(errs, on("s-uai", T("school.baduai", uai)))
		} else if _, err := rq.api().School(rq.ctx(), uai); err == nil {
			errs = append(errs, on("s-uai", T("school.exists", uai)))
		}
	}
	if len(errs) == 0 {
		_, err := rq.api().PutSchool(rq.ctx(), s)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Status == 422:
			errs = problems(ae, schoolFields)
		case err != nil:
			return err
		default:
			return rq.redirect("/etablissements/"+url.PathEscape(uai), "schoolsaved")
		}
	}
	profiles, err := rq.api().Profiles(rq.ctx())
	if err != nil {
		return err
	}
	v := &schoolView{School: s, New: isNew, CanEdit: true, CanEdges: true, Profiles: profiles, Rows: rows, Errors: errs}
	if !isNew {
		if v.Status, err = rq.api().SchoolStatus(rq.ctx(), uai); err != nil {
			return err
		}
	}
	title := "school.title"
	if isNew {
		title = "school.new.title"
	}
	return rq.render(422, "school", title, v)
}

// schoolFromForm reads the school form; rows keep every zone row as typed
// (blank rows included) to show the form again.
func schoolFromForm(f url.Values, uai string) (policy.School, []policy.Zone) {
	s := policy.School{UAI: uai, Name: strings.TrimSpace(f.Get("name")), Commune: strings.TrimSpace(f.Get("commune")),
		Departement: strings.TrimSpace(f.Get("departement")), Contact: strings.TrimSpace(f.Get("contact"))}
	var rows []policy.Zone
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
		s.Zones = append(s.Zones, z)
	}
	return s, rows
}

// splitList reads "10.10.0.0/24, 10.11.0.0/24" or one per line.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// edgeCreate registers an edge of the school and shows its token once.
func (h *Handler) edgeCreate(rq *request) error {
	uai := rq.r.PathValue("uai")
	created, err := rq.api().CreateEdge(rq.ctx(), api.EdgeCreate{UAI: uai, ID: rq.form("id"), Name: rq.form("name")})
	v, err2 := h.schoolData(rq, uai)
	if err2 != nil {
		return err2
	}
	var ae *apiError
	switch {
	case errors.As(err, &ae) && (ae.Status == 422 || ae.Status == 409):
		v.Errors = problems(ae, map[string]string{"id": "e-id", "name": "e-name"})
		return rq.render(422, "school", "school.title", v)
	case err != nil:
		return err
	}
	v.Secret = &secretView{ID: "edge", Title: T("school.edge.created", created.Edge.ID), Text: T("school.edge.token.text"), Value: created.Token}
	return rq.render(201, "school", "school.title", v)
}

// edgeToken renews an edge's token and shows it once.
func (h *Handler) edgeToken(rq *request) error {
	id := rq.r.PathValue("id")
	created, err := rq.api().RotateEdgeToken(rq.ctx(), id)
	if err != nil {
		return err
	}
	v, err := h.schoolData(rq, created.Edge.UAI)
	if err != nil {
		return err
	}
	v.Secret = &secretView{ID: "edge", Title: T("school.edge.renewed", id), Text: T("school.edge.token.text"), Value: created.Token}
	return rq.render(201, "school", "school.title", v)
}

// edgeDelete removes an edge: its token stops working at once.
func (h *Handler) edgeDelete(rq *request) error {
	id := rq.r.PathValue("id")
	uai := rq.form("uai")
	if err := rq.api().DeleteEdge(rq.ctx(), id); err != nil {
		return err
	}
	return rq.redirect("/etablissements/"+url.PathEscape(uai)+"?n="+url.QueryEscape(id), "edgedeleted")
}
