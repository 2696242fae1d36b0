package ui

import (
	"slices"
	"strings"

	"vigie/rules"
	"vigie/rules/policy"
)

// categoriesView is the Catégories page: what each category is, how big
// it is in the version in force, and which profiles block or allow it.
type categoriesView struct {
	Query     string
	Rows      []categoryRow
	Total     int
	Published uint64
	Profiles  []policy.Profile
	Switch    versionSwitch
	// Groups split the rows so that no table is a screen of 6000 px:
	// what some profile blocks, the exceptions, what no profile blocks.
	Groups []categoryGroup
}

type categoryGroup struct {
	ID, Title string
	Rows      []categoryRow
}

type categoryRow struct {
	ID, Name, Desc, Usage, Source string
	Aliases                       []string
	Domains, URLs                 int
	Lists                         []string
	BlockedBy, AllowedBy          []string
	// Windowed names profiles whose time windows change the category.
	Windowed []string
	Draft    bool
}

func (h *Handler) categories(rq *request) error {
	cats, err := allCategories(rq)
	if err != nil {
		return err
	}
	profiles, err := rq.api().Profiles(rq.ctx())
	if err != nil {
		return err
	}
	rs, serial, err := h.publishedRules(rq.r.Context())
	if err != nil {
		return err
	}
	v := categoriesView{Query: rq.query("q"), Published: serial, Profiles: profiles, Switch: rq.viewSwitch()}
	if v.Switch.Published && rs != nil {
		// What the schools apply: the published categories and profiles.
		pol, err := h.publishedPolicy(rq.r.Context())
		if err != nil {
			return err
		}
		cats, profiles = rs.Categories(), pol.Profiles
		v.Profiles = profiles
	}
	v.Rows = categoryRows(cats, profiles, rs)
	v.Total = len(v.Rows)
	if v.Query != "" {
		q := fold(v.Query)
		v.Rows = slices.DeleteFunc(v.Rows, func(r categoryRow) bool {
			return !strings.Contains(fold(r.ID+" "+r.Name+" "+r.Desc+" "+strings.Join(r.Aliases, " ")), q)
		})
	}
	blocked := categoryGroup{ID: "bloquees", Title: T("categories.group.blocked")}
	white := categoryGroup{ID: "exceptions", Title: T("categories.group.white")}
	other := categoryGroup{ID: "autres", Title: T("categories.group.other")}
	for _, r := range v.Rows {
		switch {
		case r.Usage == "white":
			white.Rows = append(white.Rows, r)
		case len(r.BlockedBy) > 0:
			blocked.Rows = append(blocked.Rows, r)
		default:
			other.Rows = append(other.Rows, r)
		}
	}
	for _, g := range []categoryGroup{blocked, white, other} {
		if len(g.Rows) > 0 {
			v.Groups = append(v.Groups, g)
		}
	}
	return rq.render(200, "categories", "categories.title", v)
}

// categoryRows joins the categories with the sizes of their lists in the
// version in force and with the draft's profiles.
func categoryRows(cats []rules.CategoryInfo, profiles []policy.Profile, rs *rules.Ruleset) []categoryRow {
	var rows []categoryRow
	for _, c := range cats {
		r := categoryRow{ID: c.ID, Name: catName(c), Desc: catDesc(c), Usage: c.Usage, Source: c.Source, Aliases: c.Alias,
			Draft: c.Source == "brouillon"}
		if rs != nil {
			for _, l := range rs.Lists() {
				if l.Category == c.ID {
					r.Domains += l.Domains
					r.URLs += l.URLs
					r.Lists = append(r.Lists, l.ID)
				}
			}
		}
		names := append([]string{c.ID}, c.Alias...)
		mentions := func(ids []string) bool {
			return slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(names, id) })
		}
		for _, p := range profiles {
			label := profileLabel(p)
			if mentions(p.Block) {
				r.BlockedBy = append(r.BlockedBy, label)
			}
			if mentions(p.Allow) {
				r.AllowedBy = append(r.AllowedBy, label)
			}
			for _, w := range p.Windows {
				if mentions(w.Categories) && !slices.Contains(r.Windowed, label) {
					r.Windowed = append(r.Windowed, label)
				}
			}
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b categoryRow) int { return strings.Compare(fold(a.Name), fold(b.Name)) })
	return rows
}

func profileLabel(p policy.Profile) string {
	if p.Name != "" {
		return p.Name
	}
	return p.ID
}

// fold lowers case and drops the accents of French letters, for search
// and sorting ("Élèves" sorts with "eleves").
func fold(s string) string {
	return accentFolder.Replace(strings.ToLower(s))
}

var accentFolder = strings.NewReplacer(
	"à", "a", "â", "a", "ä", "a", "á", "a", "ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
	"î", "i", "ï", "i", "í", "i", "ô", "o", "ö", "o", "ó", "o", "ù", "u", "û", "u", "ü", "u", "ú", "u",
	"ÿ", "y", "œ", "oe", "æ", "ae",
)
