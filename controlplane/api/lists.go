package api

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"

	"vigie/controlplane/store"
	"vigie/rules/normalize"
	"vigie/rules/policy"
)

// ListCreate creates a custom list. With School, the list applies to that
// school only: an exception when its category is white, a block when black.
type ListCreate struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	School   string `json:"school,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// ListPatch changes a list; absent fields stay.
type ListPatch struct {
	Category *string `json:"category,omitempty"`
	School   *string `json:"school,omitempty"`
	Comment  *string `json:"comment,omitempty"`
}

// EntriesChange adds or removes entries. Domains and URLs are normalized
// (case, trailing dot, IDN to punycode) before they are stored.
type EntriesChange struct {
	Domains     []string `json:"domains,omitempty"`
	URLs        []string `json:"urls,omitempty"`
	Expressions []string `json:"expressions,omitempty"`
	// Comment says why (kept with each added entry).
	Comment string `json:"comment,omitempty"`
}

// EntriesResult says what actually changed (already present or absent
// values are not counted).
type EntriesResult struct {
	Changed int           `json:"changed"`
	Entries []store.Entry `json:"entries"`
}

// maxEntriesPerRequest bounds one change (the body bound comes first).
const maxEntriesPerRequest = 200000

// checkList validates a list's category and school against the draft and
// the published categories.
func (s *Server) checkList(r *http.Request, category, school string) error {
	if !policy.ValidID(category) && category != "" {
		return Errorf("validation", "catégorie %q invalide", category)
	}
	if category == "" {
		return Errorf("validation", "category est requise")
	}
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	if school != "" && !slices.ContainsFunc(d.Policy.Schools, func(x policy.School) bool { return x.UAI == school }) {
		return Errorf("validation", "établissement %q absent du brouillon", school)
	}
	known := map[string]bool{}
	for _, c := range d.Policy.Categories {
		known[c.ID] = true
	}
	cats, err := s.publishedCategories(r.Context())
	if err != nil {
		return err
	}
	for _, c := range cats {
		known[c.ID] = true
		for _, a := range c.Alias {
			known[a] = true
		}
	}
	// Before the first publication the imported categories are unknown
	// here; the compiler checks them at publication.
	if len(cats) > 0 && !known[category] {
		return Errorf("validation", "catégorie %q inconnue (ni importée ni déclarée dans le brouillon)", category)
	}
	return nil
}

func (s *Server) listLists(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	ls, err := s.st.Lists(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, paginate(ls, p, func(l store.List) string { return l.ID }))
}

func (s *Server) createList(w http.ResponseWriter, r *http.Request) error {
	var req ListCreate
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	if !policy.ValidID(req.ID) {
		return Errorf("validation", "identifiant de liste %q invalide (a-z, 0-9, _ . - ; 64 caractères au plus)", req.ID)
	}
	if err := s.checkList(r, req.Category, req.School); err != nil {
		return err
	}
	l := store.List{ID: req.ID, Category: req.Category, School: req.School, Comment: req.Comment, CreatedBy: actor(r).Name, CreatedAt: s.now()}
	err := s.st.Update(r.Context(), func(tx store.Tx) error {
		if err := tx.CreateList(r.Context(), l); err != nil {
			return err
		}
		return s.audit(tx, r, "list.create", "list/"+l.ID, nil, l)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, l)
}

func (s *Server) getList(w http.ResponseWriter, r *http.Request) error {
	l, err := s.st.List(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, l)
}

func (s *Server) patchList(w http.ResponseWriter, r *http.Request) error {
	var req ListPatch
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	l, err := s.st.List(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	before := l
	if req.Category != nil {
		l.Category = *req.Category
	}
	if req.School != nil {
		l.School = *req.School
	}
	if req.Comment != nil {
		l.Comment = *req.Comment
	}
	if err := s.checkList(r, l.Category, l.School); err != nil {
		return err
	}
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		if err := tx.UpdateList(r.Context(), l); err != nil {
			return err
		}
		return s.audit(tx, r, "list.update", "list/"+l.ID, before, l)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, l)
}

func (s *Server) deleteList(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	err := s.st.Update(r.Context(), func(tx store.Tx) error {
		l, err := tx.List(r.Context(), id)
		if err != nil {
			return err
		}
		if err := tx.DeleteList(r.Context(), id); err != nil {
			return err
		}
		return s.audit(tx, r, "list.delete", "list/"+id, l, nil)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listEntries(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.st.List(r.Context(), id); err != nil {
		return err
	}
	q := p
	q.Limit++
	es, err := s.st.Entries(r.Context(), id, q)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pageOf(es, p, func(e store.Entry) string { return string(e.Kind) + "\x00" + e.Value }))
}

// normalizeEntries checks and canonicalizes the values of a change; every
// bad value is reported with its place.
func normalizeEntries(req EntriesChange) (map[store.EntryKind][]string, error) {
	out := map[store.EntryKind][]string{}
	var errs []string
	n := 0
	for i, d := range req.Domains {
		h, err := normalize.Host(d)
		if err != nil {
			errs = append(errs, fmt.Sprintf("domains[%d]: %q: %v", i, d, err))
			continue
		}
		out[store.KindDomain] = append(out[store.KindDomain], h)
	}
	for i, u := range req.URLs {
		h, rest, err := normalize.URL(u)
		if err != nil {
			errs = append(errs, fmt.Sprintf("urls[%d]: %q: %v", i, u, err))
			continue
		}
		out[store.KindURL] = append(out[store.KindURL], h+rest)
	}
	for i, x := range req.Expressions {
		if len(x) > 4096 {
			errs = append(errs, fmt.Sprintf("expressions[%d]: longer than 4096 bytes", i))
			continue
		}
		if _, err := regexp.Compile(x); err != nil {
			errs = append(errs, fmt.Sprintf("expressions[%d]: %v", i, err))
			continue
		}
		out[store.KindExpression] = append(out[store.KindExpression], x)
	}
	for k, vs := range out {
		slices.Sort(vs)
		out[k] = slices.Compact(vs)
		n += len(out[k])
	}
	if len(errs) > 0 {
		p := Errorf("validation", "%d valeur(s) refusée(s)", len(errs))
		if len(errs) > 100 {
			errs = append(errs[:100], fmt.Sprintf("… et %d autres", len(errs)-100))
		}
		p.Errors = errs
		return nil, p
	}
	if n == 0 {
		return nil, Errorf("validation", "aucune entrée (domains, urls ou expressions)")
	}
	if n > maxEntriesPerRequest {
		return nil, Errorf("validation", "au plus %d entrées par requête", maxEntriesPerRequest)
	}
	return out, nil
}

// shown bounds the entries echoed in responses and audit entries' bodies
// stay complete: the audit must say exactly what changed.
const shown = 1000

func (s *Server) addEntries(w http.ResponseWriter, r *http.Request) error {
	var req EntriesChange
	if err := decodeBody(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	vals, err := normalizeEntries(req)
	if err != nil {
		return err
	}
	if len(req.Comment) > 1000 {
		return Errorf("validation", "commentaire de plus de 1000 octets")
	}
	id := r.PathValue("id")
	now := s.now()
	who := actor(r).Name
	var added []store.Entry
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		if _, err := tx.List(r.Context(), id); err != nil {
			return err
		}
		if added, err = tx.AddEntries(r.Context(), newEntries(id, vals, req.Comment, who, now)); err != nil {
			return err
		}
		if len(added) == 0 {
			return nil
		}
		return s.audit(tx, r, "list.entries.add", "list/"+id, nil, entriesAudit(added, req.Comment))
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, entriesResult(added))
}

func (s *Server) removeEntries(w http.ResponseWriter, r *http.Request) error {
	var req EntriesChange
	if err := decodeBody(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	vals, err := normalizeEntries(req)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	var removed []store.Entry
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		if _, err := tx.List(r.Context(), id); err != nil {
			return err
		}
		for _, kind := range []store.EntryKind{store.KindDomain, store.KindURL, store.KindExpression} {
			rm, err := tx.RemoveEntries(r.Context(), id, kind, vals[kind])
			if err != nil {
				return err
			}
			removed = append(removed, rm...)
		}
		if len(removed) == 0 {
			return nil
		}
		return s.audit(tx, r, "list.entries.remove", "list/"+id, entriesAudit(removed, ""), map[string]string{"comment": req.Comment})
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, entriesResult(removed))
}

// newEntries are the rows of a list's new values, by kind.
func newEntries(list string, vals map[store.EntryKind][]string, comment, author string, at time.Time) []store.Entry {
	var es []store.Entry
	for _, kind := range []store.EntryKind{store.KindDomain, store.KindURL, store.KindExpression} {
		for _, v := range vals[kind] {
			es = append(es, store.Entry{List: list, Kind: kind, Value: v, Comment: comment, Author: author, Added: at})
		}
	}
	return es
}

func entriesAudit(es []store.Entry, comment string) map[string]any {
	byKind := map[string][]string{}
	for _, e := range es {
		byKind[string(e.Kind)+"s"] = append(byKind[string(e.Kind)+"s"], e.Value)
	}
	m := map[string]any{"entries": byKind}
	if comment != "" {
		m["comment"] = comment
	}
	return m
}

func entriesResult(es []store.Entry) EntriesResult {
	out := EntriesResult{Changed: len(es), Entries: es}
	if out.Entries == nil {
		out.Entries = []store.Entry{}
	}
	if len(out.Entries) > shown {
		out.Entries = out.Entries[:shown]
	}
	return out
}
