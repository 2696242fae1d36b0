package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
	"vigie/rules/policy"
)

// Source is the complete editable state a version was published from: the
// draft document and its custom lists with every entry's author, date and
// comment. A version keeps it so that a rollback restores the draft exactly.
type Source struct {
	Policy  policy.Policy `json:"policy"`
	Lists   []store.List  `json:"lists"`
	Entries []store.Entry `json:"entries"`
}

// ReadSource reads the draft and its lists.
func ReadSource(ctx context.Context, r store.Reader) (*Source, int64, error) {
	d, err := r.Draft(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("publish: %w", err)
	}
	lists, err := r.Lists(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("publish: %w", err)
	}
	entries, err := r.AllEntries(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("publish: %w", err)
	}
	d.Policy.Lists = nil
	return &Source{Policy: d.Policy, Lists: lists, Entries: entries}, d.Revision, nil
}

// Assemble returns the policy a Source stands for: the draft document with
// the custom lists filled in from their rows, entries sorted so that the
// same content always compiles to the same bundle.
func (s *Source) Assemble(dir string) *policy.Policy {
	p := s.Policy
	p.Dir = dir
	p.Lists = nil
	byID := map[string]*policy.List{}
	for _, l := range s.Lists {
		p.Lists = append(p.Lists, policy.List{ID: l.ID, Category: l.Category, School: l.School, Comment: l.Comment})
	}
	for i := range p.Lists {
		byID[p.Lists[i].ID] = &p.Lists[i]
	}
	for _, e := range s.Entries {
		l := byID[e.List]
		if l == nil {
			continue
		}
		switch e.Kind {
		case store.KindDomain:
			l.Domains = append(l.Domains, e.Value)
		case store.KindURL:
			l.URLs = append(l.URLs, e.Value)
		case store.KindExpression:
			l.Expressions = append(l.Expressions, e.Value)
		}
	}
	for i := range p.Lists {
		slices.Sort(p.Lists[i].Domains)
		slices.Sort(p.Lists[i].URLs)
		slices.Sort(p.Lists[i].Expressions)
	}
	return &p
}

// sourceOf decodes a version's stored source.
func sourceOf(v store.Version) (*Source, error) {
	var s Source
	if err := json.Unmarshal(v.Policy, &s); err != nil {
		return nil, fmt.Errorf("publish: version %d: stored source: %w", v.Serial, err)
	}
	return &s, nil
}

// SourceFromPolicy splits a policy document into a Source: the document
// without its lists, and one row per custom list and entry, attributed to
// author at now.
func SourceFromPolicy(p *policy.Policy, author string, now time.Time) *Source {
	s := &Source{Policy: *p}
	s.Policy.Lists, s.Policy.Dir = nil, ""
	for _, l := range p.Lists {
		s.Lists = append(s.Lists, store.List{ID: l.ID, Category: l.Category, School: l.School, Comment: l.Comment,
			CreatedBy: author, CreatedAt: now})
		add := func(kind store.EntryKind, values []string) {
			for _, v := range values {
				s.Entries = append(s.Entries, store.Entry{List: l.ID, Kind: kind, Value: v, Author: author, Added: now})
			}
		}
		add(store.KindDomain, l.Domains)
		add(store.KindURL, l.URLs)
		add(store.KindExpression, l.Expressions)
	}
	return s
}

// ReplaceDraft makes p the whole draft (document and custom lists), for
// seeding a new control plane or importing a policy file, with its audit
// entry.
func ReplaceDraft(ctx context.Context, st store.Store, p *policy.Policy, who Actor, now time.Time) error {
	if err := p.Validate(); err != nil {
		return validation(err)
	}
	src := SourceFromPolicy(p, who.Name, now)
	return st.Update(ctx, func(tx store.Tx) error {
		if err := restoreDraft(ctx, tx, src, who, now); err != nil {
			return err
		}
		after, _ := json.Marshal(map[string]any{"lists": len(src.Lists), "entries": len(src.Entries),
			"schools": len(src.Policy.Schools), "profiles": len(src.Policy.Profiles)})
		return tx.AppendAudit(ctx, &audit.Entry{Time: now, Actor: who.Name, Role: who.Role, Action: "draft.replace",
			Target: "draft", After: after, Remote: who.Remote})
	})
}
