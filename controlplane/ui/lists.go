package ui

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"vigie/controlplane/api"
	"vigie/controlplane/store"
	"vigie/rules"
	"vigie/rules/policy"
)

// listsView is the Listes page: the custom lists, the search across every
// list, and the form creating a list.
type listsView struct {
	Lists      []listRow
	Categories []rules.CategoryInfo
	Schools    []policy.School
	Find       *findResult
	New        api.ListCreate
	Errors     []string
}

type listRow struct {
	store.List
	CategoryName, SchoolName string
	White                    bool
}

// findResult answers "où se trouve ce domaine ?".
type findResult struct {
	Query, Host string
	Error       string
	// Custom are the draft's custom list entries covering the host.
	Custom []foundEntry
	// Published are the entries of the version in force (UT1 and the
	// other imported lists included) that concern it.
	Published []rules.Match
	Serial    uint64
}

type foundEntry struct {
	store.Entry
	ListLabel, CategoryName, SchoolName string
}

func (h *Handler) lists(rq *request) error {
	v, err := h.listsData(rq)
	if err != nil {
		return err
	}
	if q := rq.query("cherche"); q != "" {
		if v.Find, err = h.find(rq, q, v); err != nil {
			return err
		}
	}
	return rq.render(200, "lists", "lists.title", v)
}

func (h *Handler) listsData(rq *request) (*listsView, error) {
	ls, err := rq.api().Lists(rq.ctx())
	if err != nil {
		return nil, err
	}
	cats, err := allCategories(rq)
	if err != nil {
		return nil, err
	}
	schools, err := allSchools(rq)
	if err != nil {
		return nil, err
	}
	v := &listsView{Categories: cats, Schools: schools}
	for _, l := range ls {
		v.Lists = append(v.Lists, h.listRow(l, cats, schools))
	}
	return v, nil
}

func (h *Handler) listRow(l store.List, cats []rules.CategoryInfo, schools []policy.School) listRow {
	r := listRow{List: l, CategoryName: l.Category}
	if i := slices.IndexFunc(cats, func(c rules.CategoryInfo) bool { return c.ID == l.Category }); i >= 0 {
		r.CategoryName = catName(cats[i])
		r.White = cats[i].Usage == "white"
	}
	if l.School != "" {
		r.SchoolName = schoolName(schools, l.School)
	}
	return r
}

// find looks a domain or URL up in every custom list of the draft and in
// every list of the version in force.
func (h *Handler) find(rq *request, q string, v *listsView) (*findResult, error) {
	f := &findResult{Query: q}
	host, full, err := lookupHost(q)
	if err != nil {
		f.Error = T("lists.find.invalid", reason(err))
		return f, nil
	}
	f.Host = host
	// The RSSI reads every entry here (this page is theirs alone); the
	// store is read directly because the API pages entries list by list.
	entries, err := h.st.AllEntries(rq.r.Context())
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !entryCovers(e, host, full) {
			continue
		}
		fe := foundEntry{Entry: e, ListLabel: e.List}
		if i := slices.IndexFunc(v.Lists, func(l listRow) bool { return l.ID == e.List }); i >= 0 {
			fe.CategoryName, fe.SchoolName = v.Lists[i].CategoryName, v.Lists[i].SchoolName
		}
		f.Custom = append(f.Custom, fe)
	}
	rs, serial, err := h.publishedRules(rq.r.Context())
	if err != nil {
		return nil, err
	}
	if rs != nil {
		f.Serial = serial
		ex := rs.Explain(rs.DefaultProfile(), rules.Query{Host: host, URL: full, Time: rq.now()})
		for _, m := range ex.Matches {
			m.Category = catNameOf(rs, m.Category)
			f.Published = append(f.Published, m)
		}
	}
	return f, nil
}

// entryCovers reports whether a custom list entry concerns host (and the
// URL, when one was given): a domain covers its subdomains, a URL entry
// covers the URLs it prefixes.
func entryCovers(e store.Entry, host, full string) bool {
	switch e.Kind {
	case store.KindDomain:
		return host == e.Value || strings.HasSuffix(host, "."+e.Value)
	case store.KindURL:
		eh, _, _ := strings.Cut(e.Value, "/")
		if full == "" {
			return host == eh || strings.HasSuffix(host, "."+eh)
		}
		_, path, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(full, "http://"), "https://"), "/")
		return (host == eh || strings.HasSuffix(host, "."+eh)) && strings.HasPrefix(host+"/"+path, e.Value)
	case store.KindExpression:
		re, err := regexp.Compile(e.Value)
		return err == nil && (re.MatchString(host) || (full != "" && re.MatchString(full)))
	}
	return false
}

// listCreate creates a list through the API and opens it.
func (h *Handler) listCreate(rq *request) error {
	req := api.ListCreate{ID: rq.form("id"), Category: rq.form("category"), School: rq.form("school"), Comment: rq.form("comment")}
	l, err := rq.api().CreateList(rq.ctx(), req)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status < 500 && ae.Status != 401 && ae.Status != 403 {
		v, err := h.listsData(rq)
		if err != nil {
			return err
		}
		v.New, v.Errors = req, apiProblems(ae)
		if ae.Kind() == "conflict" {
			v.Errors = []string{T("lists.create.exists", req.ID)}
		}
		return rq.render(422, "lists", "lists.title", v)
	}
	if err != nil {
		return err
	}
	return rq.redirect("/listes/"+url.PathEscape(l.ID), "listcreated")
}

func (v listView) subject() string {
	if v.List.SchoolName != "" {
		return T("title.list.school", v.List.ID, v.List.SchoolName)
	}
	return v.List.ID
}

// listView is one list with a page of its entries.
type listView struct {
	List    listRow
	Entries []store.Entry
	Next    string
	Cursor  string
	// Paste and Comment refill the form after a partial addition.
	Paste, Comment string
	Added, Dupes   int
	Bad            []badLine
	Errors         []string
}

func (h *Handler) listShow(rq *request) error {
	v, err := h.listData(rq, rq.r.PathValue("id"), rq.query("apres"))
	if err != nil {
		return err
	}
	return rq.render(200, "list", "list.title", v)
}

func (h *Handler) listData(rq *request, id, cursor string) (*listView, error) {
	l, err := rq.api().List(rq.ctx(), id)
	if err != nil {
		return nil, err
	}
	cats, err := allCategories(rq)
	if err != nil {
		return nil, err
	}
	schools, err := allSchools(rq)
	if err != nil {
		return nil, err
	}
	p, err := rq.api().EntriesPage(rq.ctx(), id, cursor, 100)
	if err != nil {
		return nil, err
	}
	return &listView{List: h.listRow(l, cats, schools), Entries: p.Items, Next: p.Next, Cursor: cursor}, nil
}

// listAdd adds pasted domains and URLs. The valid lines are added; each
// invalid one is reported with its line number and left in the field to
// be corrected.
func (h *Handler) listAdd(rq *request) error {
	id := rq.r.PathValue("id")
	text := rq.r.PostFormValue("entries")
	comment := rq.form("comment")
	p := parseEntries(text)
	v, err := h.listData(rq, id, "")
	if err != nil {
		return err
	}
	v.Comment = comment
	if len(p.Domains)+len(p.URLs) > 0 {
		res, err := rq.api().AddEntries(rq.ctx(), id, api.EntriesChange{Domains: p.Domains, URLs: p.URLs, Comment: comment})
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 422 {
			v.Paste, v.Errors = text, apiProblems(ae)
			return rq.render(422, "list", "list.title", v)
		}
		if err != nil {
			return err
		}
		v.Added, v.Dupes = res.Changed, len(p.Domains)+len(p.URLs)-res.Changed
	}
	if len(p.Bad) == 0 {
		if p.Lines == 0 {
			v.Paste, v.Errors = text, []string{T("lists.add.empty")}
			return rq.render(422, "list", "list.title", v)
		}
		return rq.redirect("/listes/"+url.PathEscape(id)+"?n="+strconv.Itoa(v.Added)+"&d="+strconv.Itoa(v.Dupes), "entriesadded")
	}
	// Keep only the refused lines in the field, and show the list as it
	// is now (with what was just added).
	var keep []string
	for _, b := range p.Bad {
		keep = append(keep, lineOf(text, b.Line))
	}
	fresh, err := h.listData(rq, id, "")
	if err != nil {
		return err
	}
	fresh.Added, fresh.Dupes, fresh.Bad, fresh.Comment = v.Added, v.Dupes, p.Bad, comment
	fresh.Paste = strings.Join(keep, "\n")
	return rq.render(422, "list", "list.title", fresh)
}

// lineOf returns line n (1-based) of text.
func lineOf(text string, n int) string {
	for i := 1; ; i++ {
		line, rest, found := strings.Cut(text, "\n")
		if i == n {
			return strings.TrimSuffix(line, "\r")
		}
		if !found {
			return ""
		}
		text = rest
	}
}

// listRemove removes one entry.
func (h *Handler) listRemove(rq *request) error {
	id := rq.r.PathValue("id")
	kind, value := rq.form("kind"), rq.form("value")
	var ch api.EntriesChange
	switch store.EntryKind(kind) {
	case store.KindDomain:
		ch.Domains = []string{value}
	case store.KindURL:
		ch.URLs = []string{value}
	case store.KindExpression:
		ch.Expressions = []string{value}
	default:
		return &pageError{status: 400, title: "error.api.title", text: "error.api.text", detail: T("lists.remove.kind")}
	}
	if _, err := rq.api().RemoveEntries(rq.ctx(), id, ch); err != nil {
		return err
	}
	return rq.redirect("/listes/"+url.PathEscape(id)+"?n="+url.QueryEscape(value), "entryremoved")
}

// listDelete deletes a list and its entries.
func (h *Handler) listDelete(rq *request) error {
	id := rq.r.PathValue("id")
	if err := rq.api().DeleteList(rq.ctx(), id); err != nil {
		return err
	}
	return rq.redirect("/listes?n="+url.QueryEscape(id), "listdeleted")
}
