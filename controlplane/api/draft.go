package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"vigie/controlplane/store"
	"vigie/rules"
	"vigie/rules/bundle"
	"vigie/rules/policy"
)

// DraftPut replaces the draft document. Revision is the one read with GET
// /draft: if someone changed the draft since, the request fails with 412.
type DraftPut struct {
	Revision int64         `json:"revision"`
	Policy   policy.Policy `json:"policy"`
}

// validationProblem turns the joined errors of policy validation into one
// problem listing each.
func validationProblem(err error) *Problem {
	p := Errorf("validation", "la politique ne serait plus valide")
	p.Errors = policy.Problems(err)
	return p
}

// editDraft applies fn to the draft document inside one write transaction,
// checks that the result is still a valid policy (with the custom lists'
// identifiers and schools, so that references stay consistent), stores it
// and audits the change. rev < 0 skips the revision check.
func (s *Server) editDraft(r *http.Request, rev int64, action, target string, fn func(p *policy.Policy) (before, after any, err error)) (store.Draft, error) {
	ctx := r.Context()
	var out store.Draft
	err := s.st.Update(ctx, func(tx store.Tx) error {
		d, err := tx.Draft(ctx)
		if err != nil {
			return err
		}
		if rev >= 0 && rev != d.Revision {
			return Errorf("precondition-failed", "le brouillon est à la révision %d, la requête partait de la %d : relisez-le", d.Revision, rev)
		}
		before, after, err := fn(&d.Policy)
		if err != nil {
			return err
		}
		if err := validateWithLists(ctx, tx, &d.Policy); err != nil {
			return err
		}
		d.UpdatedAt, d.UpdatedBy = s.now(), actor(r).Name
		if d.Revision, err = tx.PutDraft(ctx, d, d.Revision); err != nil {
			return err
		}
		out = d
		return s.audit(tx, r, action, target, before, after)
	})
	return out, err
}

// The keys of the draft's keyed collections, as the API paths name them.
func categoryID(c policy.Category) string { return c.ID }
func profileID(p policy.Profile) string   { return p.ID }
func schoolUAI(s policy.School) string    { return s.UAI }

// pathID fills a body's empty identifier from the path, and refuses a body
// that names another object than the path does: the path is what the
// role checks and the audit trail see.
func pathID(body *string, path, what string) error {
	if *body == "" {
		*body = path
	}
	if *body != path {
		return Errorf("validation", "%s du corps (%q) diffère de celui du chemin (%q)", what, *body, path)
	}
	return nil
}

// upsert replaces the element of *list with v's key, or appends v. It
// returns the element replaced, for the audit's "before", or nil when v is
// new.
func upsert[T any](list *[]T, v T, key func(T) string) (before any) {
	k := key(v)
	i := slices.IndexFunc(*list, func(x T) bool { return key(x) == k })
	if i < 0 {
		*list = append(*list, v)
		return nil
	}
	before = (*list)[i]
	(*list)[i] = v
	return before
}

// remove deletes the element with key k from *list and returns it.
func remove[T any](list *[]T, k string, key func(T) string) (removed T, ok bool) {
	i := slices.IndexFunc(*list, func(x T) bool { return key(x) == k })
	if i < 0 {
		return removed, false
	}
	removed = (*list)[i]
	*list = slices.Delete(*list, i, i+1)
	return removed, true
}

func validateWithLists(ctx context.Context, rd store.Reader, p *policy.Policy) error {
	lists, err := rd.Lists(ctx)
	if err != nil {
		return err
	}
	check := *p
	check.Lists = nil
	for _, l := range lists {
		check.Lists = append(check.Lists, policy.List{ID: l.ID, Category: l.Category, School: l.School})
	}
	if err := check.Validate(); err != nil {
		return validationProblem(err)
	}
	return nil
}

// DraftView is the draft as the API shows it: the document with its
// custom lists summarized (entries are paged under /lists).
type DraftView struct {
	Revision  int64         `json:"revision"`
	UpdatedAt string        `json:"updated_at"`
	UpdatedBy string        `json:"updated_by"`
	Policy    policy.Policy `json:"policy"`
	Lists     []store.List  `json:"lists"`
}

func (s *Server) draftView(ctx context.Context, d store.Draft) (DraftView, error) {
	lists, err := s.st.Lists(ctx)
	if err != nil {
		return DraftView{}, err
	}
	if lists == nil {
		lists = []store.List{}
	}
	return DraftView{Revision: d.Revision, UpdatedAt: d.UpdatedAt.UTC().Format("2006-01-02T15:04:05Z07:00"), UpdatedBy: d.UpdatedBy,
		Policy: d.Policy, Lists: lists}, nil
}

func (s *Server) getDraft(w http.ResponseWriter, r *http.Request) error {
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	v, err := s.draftView(r.Context(), d)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) putDraft(w http.ResponseWriter, r *http.Request) error {
	var req DraftPut
	if err := decodeBody(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	if len(req.Policy.Lists) > 0 {
		return Errorf("validation", "les listes personnalisées se gèrent sous /api/v1/lists, pas dans le document")
	}
	d, err := s.editDraft(r, req.Revision, "draft.update", "draft", func(p *policy.Policy) (any, any, error) {
		before := *p
		*p = req.Policy
		return before, req.Policy, nil
	})
	if err != nil {
		return err
	}
	v, err := s.draftView(r.Context(), d)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) draftDiff(w http.ResponseWriter, r *http.Request) error {
	d, err := s.pub.Preview(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// ValidateResult is a compilation without publication.
type ValidateResult struct {
	Valid      bool     `json:"valid"`
	Domains    int      `json:"domains"`
	URLs       int      `json:"urls"`
	Rejected   int      `json:"rejected_lines"`
	Warnings   []string `json:"warnings,omitempty"`
	Categories int      `json:"categories"`
	Lists      int      `json:"lists"`
}

func (s *Server) validateDraft(w http.ResponseWriter, r *http.Request) error {
	c, err := s.pub.Compile(r.Context())
	if err != nil {
		return err
	}
	res := ValidateResult{Valid: true, Domains: c.Rules.Domains(), URLs: c.Report.URLs, Rejected: c.Report.Rejected,
		Categories: len(c.Rules.Categories()), Lists: len(c.Rules.Lists())}
	for i, w := range c.Report.Warnings {
		if i == 100 {
			break
		}
		res.Warnings = append(res.Warnings, w.Error())
	}
	return writeJSON(w, http.StatusOK, res)
}

// publishedCategories reads the categories of the version in force from
// its meta section.
func (s *Server) publishedCategories(ctx context.Context) ([]rules.CategoryInfo, error) {
	h := s.pub.Head()
	if h.Serial == 0 {
		return nil, nil
	}
	_, secs, err := bundle.ReadHeader(h.Manifest.Raw, nil)
	if err != nil {
		return nil, err
	}
	for _, sec := range secs {
		if sec.Name != "meta" {
			continue
		}
		b, err := s.pub.Section(ctx, sec.Hash)
		if err != nil {
			return nil, err
		}
		var m struct {
			Categories []rules.CategoryInfo `json:"categories"`
		}
		if err := json.Unmarshal(b.Raw, &m); err != nil {
			return nil, err
		}
		return m.Categories, nil
	}
	return nil, nil
}

func (s *Server) listCategories(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	cats, err := s.categories(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, paginate(cats, p, func(c rules.CategoryInfo) string { return c.ID }))
}

// categories are the published categories and those the draft declares,
// by id.
func (s *Server) categories(ctx context.Context) ([]rules.CategoryInfo, error) {
	cats, err := s.publishedCategories(ctx)
	if err != nil {
		return nil, err
	}
	// Categories declared in the draft but not published yet show too.
	d, err := s.st.Draft(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	for _, c := range d.Policy.Categories {
		if !slices.ContainsFunc(cats, func(ci rules.CategoryInfo) bool { return ci.ID == c.ID }) {
			usage := c.Usage
			if usage == "" {
				usage = "black"
			}
			cats = append(cats, rules.CategoryInfo{ID: c.ID, NameFR: c.NameFR, NameEN: c.NameEN, DescFR: c.DescFR, DescEN: c.DescEN, Usage: usage, Source: "brouillon"})
		}
	}
	slices.SortFunc(cats, func(a, b rules.CategoryInfo) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return cats, nil
}

func (s *Server) putCategory(w http.ResponseWriter, r *http.Request) error {
	var c policy.Category
	if err := decodeBody(w, r, 64<<10, &c); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := pathID(&c.ID, id, "l'identifiant"); err != nil {
		return err
	}
	_, err := s.editDraft(r, -1, "draft.category.put", "category/"+id, func(p *policy.Policy) (any, any, error) {
		return upsert(&p.Categories, c, categoryID), c, nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) listProfiles(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	ps := slices.Clone(d.Policy.Profiles)
	slices.SortFunc(ps, func(a, b policy.Profile) int { return cmpString(a.ID, b.ID) })
	return writeJSON(w, http.StatusOK, paginate(ps, p, func(x policy.Profile) string { return x.ID }))
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) error {
	var pr policy.Profile
	if err := decodeBody(w, r, 1<<20, &pr); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := pathID(&pr.ID, id, "l'identifiant"); err != nil {
		return err
	}
	_, err := s.editDraft(r, -1, "draft.profile.put", "profile/"+id, func(p *policy.Policy) (any, any, error) {
		return upsert(&p.Profiles, pr, profileID), pr, nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pr)
}

func (s *Server) deleteProfile(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	_, err := s.editDraft(r, -1, "draft.profile.delete", "profile/"+id, func(p *policy.Policy) (any, any, error) {
		before, ok := remove(&p.Profiles, id, profileID)
		if !ok {
			return nil, nil, Errorf("not-found", "pas de profil %q dans le brouillon", id)
		}
		return before, nil, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getFirewall(w http.ResponseWriter, r *http.Request) error {
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d.Policy.Firewall)
}

func (s *Server) putFirewall(w http.ResponseWriter, r *http.Request) error {
	var fw policy.Firewall
	if err := decodeBody(w, r, 1<<20, &fw); err != nil {
		return err
	}
	_, err := s.editDraft(r, -1, "draft.firewall.put", "firewall", func(p *policy.Policy) (any, any, error) {
		before := p.Firewall
		p.Firewall = fw
		return before, fw, nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, fw)
}

// ---- schools

func (s *Server) listSchools(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	id := identity(r)
	var out []policy.School
	for _, sc := range d.Policy.Schools {
		if id.CanSeeSchool(sc.UAI) {
			out = append(out, sc)
		}
	}
	slices.SortFunc(out, func(a, b policy.School) int { return cmpString(a.UAI, b.UAI) })
	return writeJSON(w, http.StatusOK, paginate(out, p, func(x policy.School) string { return x.UAI }))
}

// schoolScope refuses a caller scoped to another school, and writes the
// refusal in the audit log: a technicien probing another département's
// schools, or a chef another school, is what the log's readers look for.
func (s *Server) schoolScope(r *http.Request, uai string) error {
	id := identity(r)
	if id != nil && id.CanSeeSchool(uai) {
		return nil
	}
	if err := s.auditDenial(r, "school/"+uai); err != nil {
		s.log.Error("cannot audit a refused access", "uai", uai, "err", err)
	}
	return Errorf("forbidden", "établissement %s hors de votre périmètre", uai)
}

func (s *Server) getSchool(w http.ResponseWriter, r *http.Request) error {
	uai := r.PathValue("uai")
	if err := s.schoolScope(r, uai); err != nil {
		return err
	}
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	i := slices.IndexFunc(d.Policy.Schools, func(x policy.School) bool { return x.UAI == uai })
	if i < 0 {
		return Errorf("not-found", "pas d'établissement %s", uai)
	}
	return writeJSON(w, http.StatusOK, d.Policy.Schools[i])
}

func (s *Server) putSchool(w http.ResponseWriter, r *http.Request) error {
	var sc policy.School
	if err := decodeBody(w, r, 1<<20, &sc); err != nil {
		return err
	}
	uai := r.PathValue("uai")
	if err := pathID(&sc.UAI, uai, "l'UAI"); err != nil {
		return err
	}
	_, err := s.editDraft(r, -1, "draft.school.put", "school/"+uai, func(p *policy.Policy) (any, any, error) {
		return upsert(&p.Schools, sc, schoolUAI), sc, nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sc)
}

func (s *Server) deleteSchool(w http.ResponseWriter, r *http.Request) error {
	uai := r.PathValue("uai")
	_, err := s.editDraft(r, -1, "draft.school.delete", "school/"+uai, func(p *policy.Policy) (any, any, error) {
		before, ok := remove(&p.Schools, uai, schoolUAI)
		if !ok {
			return nil, nil, Errorf("not-found", "pas d'établissement %s", uai)
		}
		return before, nil, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// SchoolStatus says which version a school's edges run.
type SchoolStatus struct {
	UAI             string       `json:"uai"`
	Name            string       `json:"name"`
	PublishedSerial uint64       `json:"published_serial"`
	PublishedHash   string       `json:"published_hash,omitempty"`
	Edges           []EdgeHealth `json:"edges"`
	// UpToDate is true when every edge applied the published serial.
	UpToDate bool `json:"up_to_date"`
}

func (s *Server) schoolStatus(w http.ResponseWriter, r *http.Request) error {
	uai := r.PathValue("uai")
	if err := s.schoolScope(r, uai); err != nil {
		return err
	}
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	i := slices.IndexFunc(d.Policy.Schools, func(x policy.School) bool { return x.UAI == uai })
	if i < 0 {
		return Errorf("not-found", "pas d'établissement %s", uai)
	}
	h := s.pub.Head()
	st := SchoolStatus{UAI: uai, Name: d.Policy.Schools[i].Name, PublishedSerial: h.Serial, PublishedHash: h.Hash, Edges: []EdgeHealth{}, UpToDate: true}
	after := ""
	for {
		es, err := s.st.Edges(r.Context(), uai, store.Page{After: after, Limit: 1000})
		if err != nil {
			return err
		}
		for _, e := range es {
			eh := s.edgeHealth(e)
			st.UpToDate = st.UpToDate && eh.UpToDate
			st.Edges = append(st.Edges, eh)
		}
		if len(es) < 1000 {
			break
		}
		after = es[len(es)-1].ID
	}
	return writeJSON(w, http.StatusOK, st)
}
