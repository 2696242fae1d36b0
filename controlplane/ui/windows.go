package ui

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"vigie/controlplane/auth"
	"vigie/rules"
	"vigie/rules/policy"
)

func (v windowsView) subject() string { return T("title.profile", v.Label) }

// windowsView is the Plages horaires page of one profile: its windows in
// sentences, each with its edit link and removal button, and the form
// that adds a window or edits the one chosen.
type windowsView struct {
	Profile  policy.Profile
	Label    string
	Rows     []windowRow
	Editable bool
	// Editing is the index of the window the form edits, -1 to add one;
	// Key is that window's content as the page read it.
	Editing int
	Key     string
	Form    windowForm
	Cats    []windowChoice
	Days    []windowChoice
	Errors  []string
	// Field holds the error shown next to each field (categories,
	// action, days, from, to).
	Field map[string]string
}

type windowRow struct {
	Index    int
	Sentence string
	Key      string
}

// windowChoice is one checkbox of the form.
type windowChoice struct {
	Value, Label string
	Checked      bool
}

// windowForm is what the form holds: the policy's window with the
// times as the time inputs show them.
type windowForm struct {
	Categories []string
	Action     string
	Days       []string
	From, To   string
}

// weekDays are the policy's day names in the order of a French week.
var weekDays = []string{"lun", "mar", "mer", "jeu", "ven", "sam", "dim"}

// maxWindows bounds the windows of one profile: far above a real
// timetable, far below what would slow the rules engine.
const maxWindows = 64

func (h *Handler) windowsPage(rq *request) error {
	p, cats, err := h.windowsProfile(rq)
	if err != nil {
		return err
	}
	v := newWindowsView(rq, p, cats)
	if s := rq.query("modifier"); s != "" && v.Editable {
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 || i >= len(p.Windows) {
			return notFound()
		}
		v.Editing, v.Key, v.Form = i, windowKey(p.Windows[i]), formOf(p.Windows[i])
		v.fillChoices(cats)
	}
	return rq.render(200, "windows", "windows.title", v)
}

// windowsProfile reads the profile named by the path and the categories
// a window may name.
func (h *Handler) windowsProfile(rq *request) (policy.Profile, []rules.CategoryInfo, error) {
	id := rq.r.PathValue("id")
	profiles, err := rq.api().Profiles(rq.ctx())
	if err != nil {
		return policy.Profile{}, nil, err
	}
	i := slices.IndexFunc(profiles, func(p policy.Profile) bool { return p.ID == id })
	if i < 0 {
		return policy.Profile{}, nil, notFound()
	}
	cats, err := allCategories(rq)
	if err != nil {
		return policy.Profile{}, nil, err
	}
	slices.SortFunc(cats, func(a, b rules.CategoryInfo) int { return strings.Compare(fold(catName(a)), fold(catName(b))) })
	return profiles[i], cats, nil
}

func newWindowsView(rq *request, p policy.Profile, cats []rules.CategoryInfo) *windowsView {
	v := &windowsView{Profile: p, Label: profileLabel(p), Editable: rq.is(auth.RSSI) && !p.Unfiltered,
		Editing: -1, Form: windowForm{Action: "allow"}, Field: map[string]string{}}
	for i, w := range p.Windows {
		v.Rows = append(v.Rows, windowRow{Index: i, Sentence: windowSentence(w, cats), Key: windowKey(w)})
	}
	v.fillChoices(cats)
	return v
}

// fillChoices ticks the form's categories and days.
func (v *windowsView) fillChoices(cats []rules.CategoryInfo) {
	v.Cats = v.Cats[:0]
	for _, c := range cats {
		names := append([]string{c.ID}, c.Alias...)
		on := slices.ContainsFunc(v.Form.Categories, func(id string) bool { return slices.Contains(names, id) })
		v.Cats = append(v.Cats, windowChoice{Value: c.ID, Label: catName(c), Checked: on})
	}
	v.Days = v.Days[:0]
	for _, d := range weekDays {
		v.Days = append(v.Days, windowChoice{Value: d, Label: T("day.full." + d), Checked: slices.Contains(v.Form.Days, d)})
	}
}

// windowSentence says a window in French, with the categories' names.
func windowSentence(w policy.Window, cats []rules.CategoryInfo) string {
	var names []string
	for _, id := range w.Categories {
		name := id
		if i := slices.IndexFunc(cats, func(c rules.CategoryInfo) bool { return c.ID == id || slices.Contains(c.Alias, id) }); i >= 0 {
			name = catName(cats[i])
		}
		names = append(names, name)
	}
	return Tn("profiles.window."+orDefault(w.Action, "allow"), int64(len(names)), strings.Join(names, ", "), dayNames(w.Days), w.From, w.To)
}

// windowKey identifies a window's content, so that an edit or a removal
// applies to the window that was shown even if another one was removed
// meanwhile.
func windowKey(w policy.Window) string {
	return strings.Join([]string{strings.Join(w.Categories, ","), w.Action, strings.Join(w.Days, ","), w.From, w.To}, "|")
}

// formOf is a stored window as the form shows it: French day names in
// week order, midnight as the end of the day written 00:00 (a time input
// cannot show 24:00).
func formOf(w policy.Window) windowForm {
	f := windowForm{Categories: slices.Clone(w.Categories), Action: orDefault(w.Action, "allow"), From: w.From, To: w.To}
	for _, d := range weekDays {
		n := policy.Days[d]
		if slices.ContainsFunc(w.Days, func(x string) bool { m, ok := policy.Days[strings.ToLower(x)]; return ok && m == n }) {
			f.Days = append(f.Days, d)
		}
	}
	if f.To == "24:00" {
		f.To = "00:00"
	}
	return f
}

// readWindowForm reads the posted form. Only the policy's day names in
// week order are kept: the order and spelling people see.
func readWindowForm(rq *request) windowForm {
	form := rq.r.PostForm
	f := windowForm{Action: rq.form("action"), From: timeValue(rq.form("from")), To: timeValue(rq.form("to"))}
	for _, c := range form["categories"] {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(f.Categories, c) && len(f.Categories) < 1000 {
			f.Categories = append(f.Categories, c)
		}
	}
	for _, d := range weekDays {
		if slices.Contains(form["days"], d) {
			f.Days = append(f.Days, d)
		}
	}
	// A day name the form does not offer is kept so that it is refused
	// by name rather than silently dropped.
	for _, d := range form["days"] {
		if !slices.Contains(weekDays, d) && len(f.Days) < 14 {
			f.Days = append(f.Days, shorten(d, 20))
		}
	}
	return f
}

// timeValue trims the seconds a time input may send ("12:00:00").
func timeValue(s string) string {
	if len(s) == 8 && strings.HasSuffix(s, ":00") {
		return s[:5]
	}
	return s
}

// window is the policy's window the form describes: 00:00 as the end is
// midnight at the end of the day (24:00 in the policy).
func (f windowForm) window() policy.Window {
	w := policy.Window{Categories: f.Categories, Action: f.Action, Days: f.Days, From: f.From, To: f.To}
	if w.To == "00:00" {
		w.To = "24:00"
	}
	return w
}

// checkWindow returns, per form field, why the window would be refused:
// the policy validator's own checks (Window.Minutes, policy.Days, the
// actions) said in French, plus the categories the policy knows. Whatever
// the validator refuses that no field explains is returned in other.
func checkWindow(w policy.Window, cats []rules.CategoryInfo) (field map[string]string, other []string) {
	field = map[string]string{}
	if len(w.Categories) == 0 {
		field["categories"] = T("windows.err.categories")
	}
	for _, c := range w.Categories {
		if !slices.ContainsFunc(cats, func(ci rules.CategoryInfo) bool { return ci.ID == c || slices.Contains(ci.Alias, c) }) {
			field["categories"] = T("windows.err.category", shorten(c, 64))
			break
		}
	}
	if w.Action != "allow" && w.Action != "block" {
		field["action"] = T("windows.err.action")
	}
	for _, d := range w.Days {
		if _, ok := policy.Days[strings.ToLower(d)]; !ok {
			field["days"] = T("windows.err.day", d)
			break
		}
	}
	// Each bound alone against the widest other bound, then the order.
	if _, _, err := (policy.Window{From: w.From, To: "24:00"}).Minutes(); err != nil || w.From == "24:00" {
		field["from"] = T("windows.err.from")
	}
	if _, _, err := (policy.Window{From: "00:00", To: w.To}).Minutes(); err != nil {
		field["to"] = T("windows.err.to")
	}
	if field["from"] == "" && field["to"] == "" {
		if _, _, err := w.Minutes(); err != nil {
			field["to"] = T("windows.err.order")
		}
	}
	// The validator itself, on the window alone: a rule it gains later
	// is still enforced here, in its own words, until it has its field.
	one := policy.Policy{Version: 1, Profiles: []policy.Profile{{ID: "p", Windows: []policy.Window{w}}}}
	if err := one.Validate(); err != nil && len(field) == 0 {
		other = policy.Problems(err)
	}
	return field, other
}

// windowSave adds a window (index -1) or replaces the one shown, and
// saves the profile through the API like the profiles page does: one
// audited change of the profile in the draft.
func (h *Handler) windowSave(rq *request) error {
	idx, err := strconv.Atoi(rq.form("index"))
	if err != nil || idx < -1 {
		return &pageError{status: 400, title: "error.api.title", text: "error.api.text", detail: T("windows.badindex")}
	}
	p, cats, err := h.windowsProfile(rq)
	if err != nil {
		return err
	}
	if p.Unfiltered {
		return &pageError{status: 400, title: "error.api.title", text: "error.api.text", detail: T("windows.unfiltered")}
	}
	f := readWindowForm(rq)
	refuse := func(status int, v *windowsView) error {
		v.Editing, v.Form = idx, f
		if idx >= 0 && idx < len(p.Windows) {
			v.Key = windowKey(p.Windows[idx])
		}
		v.fillChoices(cats)
		return rq.render(status, "windows", "windows.title", v)
	}
	if idx >= 0 && (idx >= len(p.Windows) || windowKey(p.Windows[idx]) != rq.form("key")) {
		v := newWindowsView(rq, p, cats)
		v.Errors = []string{T("windows.stale")}
		// The window shown is gone: what was typed can still be added.
		idx = -1
		return refuse(409, v)
	}
	if idx < 0 && len(p.Windows) >= maxWindows {
		v := newWindowsView(rq, p, cats)
		v.Errors = []string{T("windows.toomany", maxWindows)}
		return refuse(422, v)
	}
	w := f.window()
	field, other := checkWindow(w, cats)
	if len(field) > 0 || len(other) > 0 {
		v := newWindowsView(rq, p, cats)
		v.Field = field
		v.Errors = other
		for _, k := range []string{"categories", "action", "days", "from", "to"} {
			if field[k] != "" {
				v.Errors = append(v.Errors, T("windows.field."+k)+" : "+field[k])
			}
		}
		return refuse(422, v)
	}
	np := p
	np.Windows = slices.Clone(p.Windows)
	flash := "windowadded"
	if idx >= 0 {
		w.Categories = keepUnshown(p.Windows[idx].Categories, w.Categories, cats)
		np.Windows[idx] = w
		flash = "windowsaved"
	} else {
		np.Windows = append(np.Windows, w)
	}
	if _, err := rq.api().PutProfile(rq.ctx(), np); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 422 {
			v := newWindowsView(rq, p, cats)
			v.Errors = apiProblems(ae)
			return refuse(422, v)
		}
		return err
	}
	return rq.redirect("/profils/"+url.PathEscape(p.ID)+"/plages#plages", flash)
}

// keepUnshown keeps, in an edited window, the names the form could not
// show (an alias stays as written when its category stays ticked).
func keepUnshown(before, ticked []string, cats []rules.CategoryInfo) []string {
	var out []string
	covered := map[string]bool{}
	for _, id := range before {
		i := slices.IndexFunc(cats, func(c rules.CategoryInfo) bool { return c.ID == id || slices.Contains(c.Alias, id) })
		if i < 0 {
			continue // unknown: checkWindow refused it already if ticked
		}
		if slices.Contains(ticked, cats[i].ID) && !covered[cats[i].ID] {
			out = append(out, id)
			covered[cats[i].ID] = true
		}
	}
	for _, id := range ticked {
		if !covered[id] {
			out = append(out, id)
			covered[id] = true
		}
	}
	return out
}

// windowRemove removes a window, named by index, if it is still the
// window the page showed.
func (h *Handler) windowRemove(rq *request) error {
	idx, err := strconv.Atoi(rq.form("index"))
	if err != nil {
		return &pageError{status: 400, title: "error.api.title", text: "error.api.text", detail: T("windows.badindex")}
	}
	p, cats, err := h.windowsProfile(rq)
	if err != nil {
		return err
	}
	if idx < 0 || idx >= len(p.Windows) || windowKey(p.Windows[idx]) != rq.form("key") {
		v := newWindowsView(rq, p, cats)
		v.Errors = []string{T("windows.stale")}
		return rq.render(409, "windows", "windows.title", v)
	}
	np := p
	np.Windows = slices.Delete(slices.Clone(p.Windows), idx, idx+1)
	if _, err := rq.api().PutProfile(rq.ctx(), np); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 422 {
			v := newWindowsView(rq, p, cats)
			v.Errors = apiProblems(ae)
			return rq.render(422, "windows", "windows.title", v)
		}
		return err
	}
	return rq.redirect("/profils/"+url.PathEscape(p.ID)+"/plages#plages", "windowremoved")
}
