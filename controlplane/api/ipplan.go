package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"vigie/controlplane/auth"
	"vigie/controlplane/ipplan"
	"vigie/controlplane/store"
	"vigie/rules/policy"
)

// IPProposalRequest is a technicien's proposed IP plan for one school: the
// whole list of its zones (prefixes, interfaces, profile of each) and why.
type IPProposalRequest struct {
	Zones   []policy.Zone `json:"zones"`
	Comment string        `json:"comment"`
}

// IPProposalValidate validates a proposal into the draft.
type IPProposalValidate struct {
	// Revision is the draft revision the RSSI read the diff at: when the
	// draft changed since, validation fails with 412 (0: no check).
	Revision int64 `json:"revision,omitempty"`
	// Comment is the RSSI's optional word, shown to the technicien.
	Comment string `json:"comment,omitempty"`
}

// IPProposalRefusal refuses a proposal; the reason is required (the
// technicien reads it).
type IPProposalRefusal struct {
	Reason string `json:"reason"`
}

// IPProposalView is a proposal as the API shows it, with its diff: against
// the draft's current plan of the school while pending, against the plan
// it replaced once decided.
type IPProposalView struct {
	store.IPProposal
	SchoolName string              `json:"school_name,omitempty"`
	Diff       []ipplan.ZoneChange `json:"diff"`
	// AgainstRevision is the draft revision a pending proposal's diff was
	// computed against (send it back when validating).
	AgainstRevision int64 `json:"against_revision,omitempty"`
}

// routesIPPlan: the département's technicians propose a school's IP plan,
// the RSSI validates it into the draft or refuses it (convention, 4-3:
// "le plan d'adressage IP validé conjointement").
func (s *Server) routesIPPlan(v1 string) {
	s.AddSchema("IPProposalRequest", IPProposalRequest{})
	s.AddSchema("IPProposalValidate", IPProposalValidate{})
	s.AddSchema("IPProposalRefusal", IPProposalRefusal{})
	s.AddSchema("IPProposal", IPProposalView{})
	s.AddSchema("IPProposalPage", Page[IPProposalView]{})
	techOnly := []auth.Role{auth.Technicien}
	s.Handle(Route{Method: "POST", Path: v1 + "/schools/{uai}/ip-proposals", Roles: techOnly, Summary: "Proposer un plan d'adressage pour un établissement de son périmètre (validé ou refusé par le RSSI)", Tag: "schools", Request: "IPProposalRequest", Response: "IPProposal", Status: 201}, s.proposeIPPlan)
	s.Handle(Route{Method: "GET", Path: v1 + "/ip-proposals", Roles: staff, Summary: "Propositions de plan d'adressage (celles de son périmètre pour un technicien)", Tag: "schools", Response: "IPProposalPage",
		Query: map[string]string{"limit": "taille de la page (défaut 100, max 1000)", "cursor": "curseur renvoyé par la page précédente (next)", "status": "pending, validated ou refused", "uai": "filtrer par établissement"}}, s.listIPProposals)
	s.Handle(Route{Method: "GET", Path: v1 + "/ip-proposals/{id}", Roles: staff, Summary: "Une proposition de plan d'adressage et ses différences", Tag: "schools", Response: "IPProposal"}, s.getIPProposal)
	s.Handle(Route{Method: "POST", Path: v1 + "/ip-proposals/{id}/validate", Roles: rssiOnly, Summary: "Valider une proposition : le plan entre dans le brouillon (publié par la publication)", Tag: "schools", Request: "IPProposalValidate", Response: "IPProposal"}, s.validateIPProposal)
	s.Handle(Route{Method: "POST", Path: v1 + "/ip-proposals/{id}/refuse", Roles: rssiOnly, Summary: "Refuser une proposition, avec sa raison", Tag: "schools", Request: "IPProposalRefusal", Response: "IPProposal"}, s.refuseIPProposal)
}

// proposalProblem is a refused proposal: 422 with each problem on its field.
func proposalProblem(detail string, ps []ipplan.Problem) *Problem {
	p := Errorf("validation", "%s", detail)
	p.Errors = ipplan.Strings(ps)
	return p
}

// checkProposal checks zones as school uai's plan in the draft d (left
// as it was) and returns the school's index in it. Problems of the whole policy
// (the safety net after ipplan.Check) are renamed from the policy's paths
// (schools[3].zones[1]) to the proposal's (zones[1]).
func checkProposal(ctx context.Context, rd store.Reader, d *store.Draft, uai string, zones []policy.Zone, comment string, visible func(string) bool) (int, error) {
	i := slices.IndexFunc(d.Policy.Schools, func(x policy.School) bool { return x.UAI == uai })
	if i < 0 {
		return -1, Errorf("not-found", "pas d'établissement %s dans le brouillon", uai)
	}
	if ps := ipplan.Check(&d.Policy, uai, zones, comment, visible); len(ps) > 0 {
		return i, proposalProblem("le plan d’adressage proposé est refusé", ps)
	}
	cur := d.Policy.Schools[i].Zones
	d.Policy.Schools[i].Zones = zones
	err := validateWithLists(ctx, rd, &d.Policy)
	d.Policy.Schools[i].Zones = cur
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			prefix := "schools[" + strconv.Itoa(i) + "]."
			for k, e := range p.Errors {
				p.Errors[k] = strings.TrimPrefix(e, prefix)
			}
		}
		return i, err
	}
	return i, nil
}

func (s *Server) proposeIPPlan(w http.ResponseWriter, r *http.Request) error {
	uai := r.PathValue("uai")
	if err := s.schoolScope(r, uai); err != nil {
		return err
	}
	var req IPProposalRequest
	if err := decodeBody(w, r, 1<<20, &req); err != nil {
		return err
	}
	zones := ipplan.Normalize(req.Zones)
	comment := strings.TrimSpace(req.Comment)
	id := identity(r)
	ctx := r.Context()
	var out IPProposalView
	err := s.st.Update(ctx, func(tx store.Tx) error {
		d, err := tx.Draft(ctx)
		if err != nil {
			return err
		}
		i, err := checkProposal(ctx, tx, &d, uai, zones, comment, id.CanSeeSchool)
		if err != nil {
			return err
		}
		sc := d.Policy.Schools[i]
		if ipplan.Same(sc.Zones, zones) {
			return proposalProblem("rien à proposer", []ipplan.Problem{{Field: "zones", Text: "ce plan est celui du brouillon : changez une plage ou un profil"}})
		}
		p := store.IPProposal{UAI: uai, Zones: zones, Base: sc.Zones, Comment: comment, ProposedBy: actor(r).Name,
			ProposedAt: s.now().UTC(), Status: store.ProposalPending}
		if p.ID, err = tx.CreateIPProposal(ctx, p); err != nil {
			return err
		}
		out = IPProposalView{IPProposal: p, SchoolName: sc.Name, Diff: ipplan.Diff(sc.Zones, zones), AgainstRevision: d.Revision}
		return s.audit(tx, r, "ipplan.propose", "school/"+uai, map[string]any{"zones": sc.Zones},
			map[string]any{"proposal": p.ID, "zones": zones, "comment": comment})
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

// proposalView adds its diff and its school's name to a proposal.
func proposalView(d *store.Draft, p store.IPProposal) IPProposalView {
	v := IPProposalView{IPProposal: p}
	i := slices.IndexFunc(d.Policy.Schools, func(x policy.School) bool { return x.UAI == p.UAI })
	if i >= 0 {
		v.SchoolName = d.Policy.Schools[i].Name
	}
	base := p.Base
	if p.Status == store.ProposalPending && i >= 0 {
		base, v.AgainstRevision = d.Policy.Schools[i].Zones, d.Revision
	}
	v.Diff = ipplan.Diff(base, p.Zones)
	if v.Diff == nil {
		v.Diff = []ipplan.ZoneChange{}
	}
	return v
}

func (s *Server) listIPProposals(w http.ResponseWriter, r *http.Request) error {
	pg, err := pageParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.IPProposalFilter{Status: q.Get("status"), UAI: q.Get("uai")}
	switch f.Status {
	case "", store.ProposalPending, store.ProposalValidated, store.ProposalRefused:
	default:
		return Errorf("bad-request", "status vaut pending, validated ou refused")
	}
	if f.UAI != "" {
		if err := s.schoolScope(r, f.UAI); err != nil {
			return err
		}
	}
	if id := identity(r); id.Role == auth.Technicien && id.Scoped() {
		for _, p := range strings.Split(id.Scope, ",") {
			if p = strings.ToUpper(strings.TrimSpace(p)); p != "" {
				f.Scope = append(f.Scope, p)
			}
		}
	}
	ps, err := s.st.IPProposals(r.Context(), f, store.Page{After: pg.After, Limit: pg.Limit + 1})
	if err != nil {
		return err
	}
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	views := make([]IPProposalView, len(ps))
	for i, p := range ps {
		views[i] = proposalView(&d, p)
	}
	return writeJSON(w, http.StatusOK, pageOf(views, pg, func(v IPProposalView) string { return strconv.FormatInt(v.ID, 10) }))
}

// proposal reads the proposal of the path, refusing (and auditing) a
// caller whose scope does not hold its school.
func (s *Server) proposal(r *http.Request) (store.IPProposal, error) {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || n <= 0 {
		return store.IPProposal{}, Errorf("bad-request", "id doit être un entier positif")
	}
	p, err := s.st.IPProposal(r.Context(), n)
	if err != nil {
		return p, err
	}
	return p, s.schoolScope(r, p.UAI)
}

func (s *Server) getIPProposal(w http.ResponseWriter, r *http.Request) error {
	p, err := s.proposal(r)
	if err != nil {
		return err
	}
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, proposalView(&d, p))
}

var statusFR = map[string]string{store.ProposalValidated: "validée", store.ProposalRefused: "refusée", store.ProposalPending: "en attente"}

// decide runs fn on a pending proposal inside one write transaction.
func (s *Server) decide(r *http.Request, fn func(tx store.Tx, p *store.IPProposal, d *store.Draft) error) (IPProposalView, error) {
	first, err := s.proposal(r)
	if err != nil {
		return IPProposalView{}, err
	}
	ctx := r.Context()
	var out IPProposalView
	err = s.st.Update(ctx, func(tx store.Tx) error {
		p, err := tx.IPProposal(ctx, first.ID)
		if err != nil {
			return err
		}
		if p.Status != store.ProposalPending {
			return Errorf("conflict", "la proposition %d est déjà %s (par %s)", p.ID, statusFR[p.Status], p.DecidedBy)
		}
		d, err := tx.Draft(ctx)
		if err != nil {
			return err
		}
		p.DecidedBy, p.DecidedAt = actor(r).Name, s.now().UTC()
		if err := fn(tx, &p, &d); err != nil {
			return err
		}
		if err := tx.DecideIPProposal(ctx, p); err != nil {
			return err
		}
		out = proposalView(&d, p)
		return nil
	})
	return out, err
}

func (s *Server) validateIPProposal(w http.ResponseWriter, r *http.Request) error {
	var req IPProposalValidate
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	req.Comment = strings.TrimSpace(req.Comment)
	if utf8.RuneCountInString(req.Comment) > ipplan.MaxComment {
		return proposalProblem("commentaire trop long", []ipplan.Problem{{Field: "comment", Text: "2000 caractères au plus"}})
	}
	ctx := r.Context()
	v, err := s.decide(r, func(tx store.Tx, p *store.IPProposal, d *store.Draft) error {
		if req.Revision > 0 && req.Revision != d.Revision {
			return Errorf("precondition-failed", "le brouillon est à la révision %d, les différences lues étaient celles de la %d : relisez-les", d.Revision, req.Revision)
		}
		// The draft may have changed since the proposal (another school
		// took a prefix, a profile went): check it again as it stands.
		i, err := checkProposal(ctx, tx, d, p.UAI, p.Zones, p.Comment, nil)
		if err != nil {
			var pr *Problem
			if errors.As(err, &pr) && pr.Status == http.StatusUnprocessableEntity {
				pr.Detail = "la proposition ne s’applique plus au brouillon tel qu’il est : refusez-la ou demandez-en une nouvelle"
			}
			return err
		}
		before := d.Policy.Schools[i].Zones
		d.Policy.Schools[i].Zones = p.Zones
		d.UpdatedAt, d.UpdatedBy = s.now(), p.DecidedBy
		if d.Revision, err = tx.PutDraft(ctx, *d, d.Revision); err != nil {
			return err
		}
		p.Status, p.Reason, p.Base, p.DraftRevision = store.ProposalValidated, req.Comment, before, d.Revision
		// Both names: who proposed the plan, who put it in the draft.
		return s.audit(tx, r, "ipplan.validate", "school/"+p.UAI, map[string]any{"zones": before},
			map[string]any{"proposal": p.ID, "proposed_by": p.ProposedBy, "validated_by": p.DecidedBy, "zones": p.Zones,
				"comment": p.Comment, "reason": req.Comment})
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) refuseIPProposal(w http.ResponseWriter, r *http.Request) error {
	var req IPProposalRefusal
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	reason := strings.TrimSpace(req.Reason)
	switch {
	case reason == "":
		return proposalProblem("raison absente", []ipplan.Problem{{Field: "reason", Text: "dites pourquoi le plan est refusé : le technicien le lira"}})
	case utf8.RuneCountInString(reason) > ipplan.MaxComment:
		return proposalProblem("raison trop longue", []ipplan.Problem{{Field: "reason", Text: "2000 caractères au plus"}})
	}
	v, err := s.decide(r, func(tx store.Tx, p *store.IPProposal, d *store.Draft) error {
		p.Status, p.Reason = store.ProposalRefused, reason
		return s.audit(tx, r, "ipplan.refuse", "school/"+p.UAI, nil,
			map[string]any{"proposal": p.ID, "proposed_by": p.ProposedBy, "refused_by": p.DecidedBy, "reason": reason})
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
