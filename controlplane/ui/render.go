package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/rules/policy"
)

// paris is where every time shown is read: schools and the académie live
// in it (the rules package embeds the zone database).
var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return time.UTC
	}
	return l
}()

// view is what every page template receives.
type view struct {
	Title    string
	Me       *auth.Identity
	CSRF     string
	Nav      []navItem
	Academie string
	// Flash is the confirmation of the action just done.
	Flash string
	Path  string
	Data  any
	// Now is the request's time, for "il y a 3 min".
	Now time.Time
	// Draft is the RSSI's reminder of unpublished changes.
	Draft *draftBanner
	// PublishedAt is when the version in force was published (zero
	// before the first): anything changed later is a draft.
	PublishedAt time.Time
}

type navItem struct {
	Path, Label string
	Current     bool
}

// parseTemplates parses every page with the layout and the shared parts.
// A template error is a build error of the binary: New refuses to start.
func (h *Handler) parseTemplates() error {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/parts_*.html")
	if err != nil {
		return fmt.Errorf("ui: templates: %w", err)
	}
	if partials, _ := fs.Glob(templateFS, "templates/partials/*.html"); len(partials) > 0 {
		if base, err = base.ParseFS(templateFS, partials...); err != nil {
			return fmt.Errorf("ui: partials: %w", err)
		}
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("ui: templates: %w", err)
	}
	h.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "parts" || strings.HasPrefix(name, "parts_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return fmt.Errorf("ui: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	return nil
}

// render writes a whole page. The page is rendered into a buffer first, so
// a template failure becomes an error page rather than half a page.
func (rq *request) render(status int, name, titleKey string, data any) error {
	title := pageTitle(status, name, T(titleKey), data)
	v := &view{Title: title, Me: rq.id, CSRF: rq.csrf, Path: rq.r.URL.Path, Data: data,
		Academie: rq.h.academie(rq.r), Now: rq.now(), Draft: rq.banner(),
		PublishedAt: rq.h.pub.Head().Created}
	for _, rt := range rq.h.routes {
		if rt.nav != "" && allowed(rt.roles, rq.id.Role) {
			p := strings.TrimSuffix(rt.path, "{$}")
			cur := p == rq.r.URL.Path || (p != "/" && strings.HasPrefix(rq.r.URL.Path, p+"/"))
			v.Nav = append(v.Nav, navItem{Path: p, Label: T(rt.nav), Current: cur})
		}
	}
	if ok := rq.r.URL.Query().Get("ok"); ok != "" && Has("flash."+ok+".one") {
		// A flash with a count says it with the right plural.
		q := rq.r.URL.Query()
		n, _ := strconv.ParseInt(q.Get("n"), 10, 64)
		v.Flash = Tn("flash."+ok, n, shorten(q.Get("d"), 12))
	} else if ok != "" && Has("flash."+ok) {
		v.Flash = T("flash." + ok)
		if strings.Contains(v.Flash, "%") {
			// Flash texts name their arguments (%[1]s, %[2]s): the
			// subject of the action and a second count.
			q := rq.r.URL.Query()
			v.Flash = T("flash."+ok, shorten(q.Get("n"), 80), shorten(q.Get("d"), 12))
		}
	}
	return rq.h.write(rq.w, status, name, "layout", v)
}

// subjecter is a page's data that names what the page is about (a
// school, an account, a list): the title says it first (RGAA 8.6).
type subjecter interface{ subject() string }

// pageTitle is the document's title: the object of the page before the
// page's name, and "Erreur : " first when a form comes back refused, so
// that a screen reader hears at once that the sending failed.
func pageTitle(status int, name, title string, data any) string {
	if s, ok := data.(subjecter); ok && s.subject() != "" {
		title = T("title.object", title, s.subject())
	}
	if status >= 400 && name != "error" {
		title = T("title.error", title)
	}
	return title
}

// fragment writes one named template of a page alone, with data as its
// dot (the dashboard's fleet table, refreshed by script).
func (rq *request) fragment(name, tmpl string, data any) error {
	return rq.h.write(rq.w, http.StatusOK, name, tmpl, data)
}

func (h *Handler) write(w http.ResponseWriter, status int, name, tmpl string, v any) error {
	t := h.pages[name]
	if t == nil {
		return fmt.Errorf("ui: no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, v); err != nil {
		return fmt.Errorf("ui: render %s: %w", name, err)
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// bare writes a page for someone not signed in (login, refusals before a
// session is known).
func (h *Handler) bare(w http.ResponseWriter, r *http.Request, status int, titleKey, textKey string) {
	v := &view{Title: T(titleKey), Path: r.URL.Path, Data: errorView{Text: textKey}, Academie: h.academie(r), Now: h.now()}
	if err := h.write(w, status, "error", "layout", v); err != nil {
		h.log.Error("ui: render error page", "err", err)
		http.Error(w, T(titleKey), status)
	}
}

// academie names the académie in the header (from the draft: the
// académie's name does not wait for a publication).
func (h *Handler) academie(r *http.Request) string {
	d, err := h.st.Draft(r.Context())
	if err != nil {
		return ""
	}
	return d.Policy.Academie
}

// funcs are the helpers templates use. All text goes through t.
var funcs = template.FuncMap{
	"t":        T,
	"tn":       func(key string, n any, args ...any) string { return Tn(key, toInt64(n), args...) },
	"errItems": errItems,
	"invalid":  invalidAttrs,
	"ferr":     fieldErrorHTML,
	"role":     func(r any) string { return T("role." + fmt.Sprint(r)) },
	"date":     formatDate,
	"datetime": formatDateTime,
	"ago":      agoText,
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":      formatInt,
	"bytes":    formatBytes,
	"short":    func(s string, n int) string { return shorten(s, n) },
	"claimed":  claimedSerial,
	"join":     strings.Join,
	"add":      func(a, b int) int { return a + b },
	"add64":    func(a, b int64) int64 { return a + b },
	"has": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
	"plural": func(n int, one, many string) string {
		if n == 0 || n == 1 || n == -1 {
			return T(one, formatInt(n))
		}
		return T(many, formatInt(n))
	},
	"setting":  settingValue,
	"action":   actionLabel,
	"schoolOf": schoolName,
	"neg":      func(n int) int { return -n },
	"int": func(v any) int {
		switch x := v.(type) {
		case uint64:
			return int(x)
		case int64:
			return int(x)
		case int:
			return x
		}
		return 0
	},
	"setDiffs": func(d *publish.Diff) map[string]publish.SetDiff {
		return map[string]publish.SetDiff{"categories": d.Categories, "profiles": d.Profiles, "schools": d.Schools}
	},
	"list": func(s ...string) []string { return s },
	"pair": func(a, b any) []any { return []any{a, b} },
	// unpublished reports a change made after the version in force.
	"unpublished": func(t, published time.Time) bool { return published.IsZero() || t.After(published) },
	"days":        dayNames,
	"zone":        zoneLabel,
	"flowKey":     flowKey,
	"flowSections": func(fw policy.Firewall) map[string][]policy.Flow {
		return map[string][]policy.Flow{"flows": fw.Flows, "internet": fw.Internet, "management": fw.Management}
	},
	"choices": func(field string) []string { return profileChoices[field] },
	"isRole": func(id *auth.Identity, roles ...string) bool {
		if id == nil {
			return false
		}
		for _, r := range roles {
			if string(id.Role) == r {
				return true
			}
		}
		return false
	},
}

// toInt64 reads a template's count.
func toInt64(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	case uint64:
		return int64(x)
	}
	return 0
}

// formatDate is "28/11/2026" in Paris time.
func formatDate(t time.Time) string {
	if t.IsZero() {
		return T("common.never")
	}
	return t.In(paris).Format("02/01/2006")
}

// formatDateTime is "28/11/2026 à 19:12" in Paris time.
func formatDateTime(t time.Time) string {
	if t.IsZero() {
		return T("common.never")
	}
	lt := t.In(paris)
	return T("common.datetime", lt.Format("02/01/2006"), lt.Format("15:04"))
}

// agoText is "il y a 3 min", relative to now.
func agoText(now, t time.Time) string {
	if t.IsZero() {
		return T("common.never")
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return T("ago.now")
	case d < 10*time.Second:
		return T("ago.now")
	case d < time.Minute:
		return T("ago.seconds", int(d.Seconds()))
	case d < time.Hour:
		return T("ago.minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return T("ago.hours", int(d.Hours()))
	}
	return T("ago.days", int(d.Hours()/24))
}

// formatInt groups digits the French way, with a narrow no-break space.
func formatInt(v any) string {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		n = int64(x)
	default:
		return fmt.Sprint(v)
	}
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatBytes is "1,2 Mo".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return T("unit.bytes", formatInt(n))
	}
	units := []string{"unit.kb", "unit.mb", "unit.gb"}
	f := float64(n) / unit
	i := 0
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	return T(units[i], strings.Replace(strconv.FormatFloat(f, 'f', 1, 64), ".", ",", 1))
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// zoneLabel names a zone of the IP plan in French ("pédagogique"); a zone
// the catalogue does not know keeps its identifier.
func zoneLabel(name string) string {
	if Has("zone.label." + name) {
		return T("zone.label." + name)
	}
	return name
}

// dayNames writes the days of a time window ("lun., mar., jeu."), every
// day when empty.
func dayNames(days []string) string {
	if len(days) == 0 {
		return T("day.every")
	}
	var out []string
	for _, d := range days {
		if Has("day." + d) {
			out = append(out, T("day."+d))
		} else {
			out = append(out, d)
		}
	}
	return strings.Join(out, ", ")
}
