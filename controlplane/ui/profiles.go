package ui

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/auth"
	"vigie/rules"
	"vigie/rules/catlabel"
	"vigie/rules/policy"
)

// profilesView is the Profils et zones page: the matrix of profiles ×
// categories, each profile's settings and time windows, and the zones of
// every school with the profile they get.
type profilesView struct {
	Profiles []policy.Profile
	Groups   []matrixGroup
	Schools  []policy.School
	Revision int64
	Editable bool
	Switch   versionSwitch
	Errors   []string
	// Windows says each profile's time windows in sentences.
	Windows map[string][]string
}

type matrixGroup struct {
	Title string
	// White groups exception categories: their cells allow.
	White bool
	Rows  []matrixRow
}

type matrixRow struct {
	ID, Name string
	Cells    []matrixCell
}

type matrixCell struct {
	Profile, Field string
	// State is block, allow, window or none.
	State   string
	Checked bool
	// Disabled for unfiltered profiles: nothing to tick there.
	Disabled bool
	Label    string
}

// Choices of the profile settings, in the order shown.
var profileChoices = map[string][]string{
	"youtube":      {"strict", "moderate"},
	"https":        {"sni", "intercept"},
	"no_sni":       {"refuse", "allow"},
	"block_answer": {"nxdomain", "blockpage", "null"},
}

func (h *Handler) profiles(rq *request) error {
	v, err := h.profilesData(rq)
	if err != nil {
		return err
	}
	return rq.render(200, "profiles", "profiles.title", v)
}

func (h *Handler) profilesData(rq *request) (*profilesView, error) {
	profiles, err := rq.api().Profiles(rq.ctx())
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
	v := &profilesView{Profiles: profiles, Schools: schools, Editable: rq.is(auth.RSSI), Switch: rq.viewSwitch()}
	if v.Switch.Published {
		// What the schools apply: the published policy, read-only.
		pol, err := h.publishedPolicy(rq.r.Context())
		if err != nil {
			return nil, err
		}
		v.Profiles, v.Schools, v.Editable, profiles = pol.Profiles, pol.Schools, false, pol.Profiles
	}
	if v.Editable {
		d, err := rq.api().Draft(rq.ctx())
		if err != nil {
			return nil, err
		}
		v.Revision = d.Revision
	}
	v.Groups = matrix(cats, profiles)
	v.Windows = map[string][]string{}
	for _, p := range profiles {
		for _, w := range p.Windows {
			v.Windows[p.ID] = append(v.Windows[p.ID], windowSentence(w, cats))
		}
	}
	return v, nil
}

// matrix lays the categories out against the profiles: blocking
// categories first (a cell blocks), then exceptions (a cell allows).
func matrix(cats []rules.CategoryInfo, profiles []policy.Profile) []matrixGroup {
	black := matrixGroup{Title: T("profiles.group.block")}
	white := matrixGroup{Title: T("profiles.group.allow"), White: true}
	sorted := slices.Clone(cats)
	slices.SortFunc(sorted, func(a, b rules.CategoryInfo) int { return strings.Compare(fold(catName(a)), fold(catName(b))) })
	for _, c := range sorted {
		names := append([]string{c.ID}, c.Alias...)
		in := func(ids []string) bool {
			return slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(names, id) })
		}
		row := matrixRow{ID: c.ID, Name: catName(c)}
		isWhite := c.Usage == "white"
		for _, p := range profiles {
			cell := matrixCell{Profile: p.ID, State: "none", Disabled: p.Unfiltered}
			windowed := slices.ContainsFunc(p.Windows, func(w policy.Window) bool { return in(w.Categories) })
			if isWhite {
				cell.Field = "a." + p.ID + "." + c.ID
				cell.Checked = in(p.Allow)
				cell.Label = T("profiles.cell.allow", row.Name, profileLabel(p))
				if cell.Checked {
					cell.State = "allow"
				}
			} else {
				cell.Field = "b." + p.ID + "." + c.ID
				cell.Checked = in(p.Block)
				cell.Label = T("profiles.cell.block", row.Name, profileLabel(p))
				if cell.Checked {
					cell.State = "block"
				}
			}
			if windowed {
				cell.State = "window"
			}
			if p.Unfiltered {
				cell.State, cell.Checked = "none", false
			}
			row.Cells = append(row.Cells, cell)
		}
		if isWhite {
			white.Rows = append(white.Rows, row)
		} else {
			black.Rows = append(black.Rows, row)
		}
	}
	return []matrixGroup{black, white}
}

// catName is a category's French name: the name its author gave in the
// policy, else the curated label of a UT1 category (UT1's own names have
// typos or are missing), else its identifier.
func catName(c rules.CategoryInfo) string {
	if c.NameFR != "" && (c.Source == "policy" || c.Source == "brouillon") {
		return typo(c.NameFR)
	}
	return typo(catlabel.Name(c.ID, c.NameFR))
}

// catDesc is a category's French description, chosen as catName is.
func catDesc(c rules.CategoryInfo) string {
	if c.DescFR != "" && (c.Source == "policy" || c.Source == "brouillon") {
		return typo(c.DescFR)
	}
	return typo(catlabel.Desc(c.ID, c.DescFR))
}

// catNameOf names category id of a ruleset (its French name, see
// catName), or id when the ruleset does not know it.
func catNameOf(rs *rules.Ruleset, id string) string {
	if rs != nil {
		if c, ok := rs.Category(id); ok {
			return catName(c)
		}
	}
	return catlabel.Name(id, "")
}

// profilesSave applies the matrix and the settings: each profile that
// changed is written through the API (one audited change per profile),
// after checking that nobody changed the draft since the page was read.
func (h *Handler) profilesSave(rq *request) error {
	rev, err := strconv.ParseInt(rq.form("revision"), 10, 64)
	if err != nil {
		return &pageError{status: 400, title: "error.api.title", text: "error.api.text", detail: T("form.revision")}
	}
	d, err := rq.api().Draft(rq.ctx())
	if err != nil {
		return err
	}
	v, err := h.profilesData(rq)
	if err != nil {
		return err
	}
	if d.Revision != rev {
		v.Errors = []string{T("form.stale", d.UpdatedBy, formatDateTime(parseRFC3339(d.UpdatedAt)))}
		return rq.render(409, "profiles", "profiles.title", v)
	}
	cats, err := allCategories(rq)
	if err != nil {
		return err
	}
	form := rq.r.PostForm
	changed := 0
	for _, p := range d.Policy.Profiles {
		np, err := applyProfileForm(p, cats, form)
		if err != nil {
			v.Errors = append(v.Errors, err.Error())
			continue
		}
		if profileEqual(p, np) {
			continue
		}
		if _, err := rq.api().PutProfile(rq.ctx(), np); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == 422 {
				v.Errors = append(v.Errors, apiProblems(ae)...)
				continue
			}
			return err
		}
		changed++
	}
	if len(v.Errors) > 0 {
		// Show the draft as it now is (some profiles may have been
		// saved) with what was refused.
		errs := v.Errors
		if v, err = h.profilesData(rq); err != nil {
			return err
		}
		v.Errors = errs
		return rq.render(422, "profiles", "profiles.title", v)
	}
	return rq.redirect("/profils?n="+strconv.Itoa(changed), "profilessaved")
}

// applyProfileForm returns p as the form sets it: the matrix cells of
// the categories shown and the settings. Categories the page does not
// show (unknown or imported later) keep their place in Block and Allow.
func applyProfileForm(p policy.Profile, cats []rules.CategoryInfo, form url.Values) (policy.Profile, error) {
	np := p
	np.Block, np.Allow = slices.Clone(p.Block), slices.Clone(p.Allow)
	if p.Unfiltered {
		return np, nil
	}
	for _, c := range cats {
		names := append([]string{c.ID}, c.Alias...)
		field, list := "b."+p.ID+"."+c.ID, &np.Block
		if c.Usage == "white" {
			field, list = "a."+p.ID+"."+c.ID, &np.Allow
		}
		on := form.Get(field) != ""
		has := slices.ContainsFunc(*list, func(id string) bool { return slices.Contains(names, id) })
		switch {
		case on && !has:
			*list = append(*list, c.ID)
		case !on && has:
			*list = slices.DeleteFunc(*list, func(id string) bool { return slices.Contains(names, id) })
		}
	}
	np.SafeSearch = form.Get("s."+p.ID+".safesearch") == "on"
	np.HTTPSBlockPage = form.Get("s."+p.ID+".https_block_page") == "on"
	if key := "s." + p.ID + ".connect_ports"; form.Has(key) {
		ports, err := connectPorts(form.Get(key))
		if err != nil {
			return p, fmt.Errorf("%s", T("profiles.err.ports", profileLabel(p), err.Error()))
		}
		np.ConnectPorts = ports
	}
	for field, choices := range profileChoices {
		val := form.Get("s." + p.ID + "." + field)
		if val == "" {
			continue
		}
		if !slices.Contains(choices, val) {
			return p, fmt.Errorf("%s", T("profiles.badchoice", profileLabel(p), field, val))
		}
		switch field {
		case "youtube":
			np.YouTube = val
		case "https":
			np.HTTPS = val
		case "no_sni":
			np.NoSNI = val
		case "block_answer":
			np.BlockAnswer = val
		}
	}
	return np, nil
}

// connectPorts reads the ports a CONNECT may reach, as typed ("443,
// 8443 8000-8100"): each a port or a range, checked as the policy
// checks them. The error is the refused value, for a French message.
func connectPorts(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' }) {
		if _, _, err := policy.PortSpan(f); err != nil {
			return nil, errors.New(f)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func profileEqual(a, b policy.Profile) bool {
	sa, sb := slices.Clone(a.Block), slices.Clone(b.Block)
	slices.Sort(sa)
	slices.Sort(sb)
	aa, ab := slices.Clone(a.Allow), slices.Clone(b.Allow)
	slices.Sort(aa)
	slices.Sort(ab)
	return slices.Equal(sa, sb) && slices.Equal(aa, ab) && a.SafeSearch == b.SafeSearch && a.YouTube == b.YouTube &&
		a.HTTPS == b.HTTPS && a.NoSNI == b.NoSNI && a.BlockAnswer == b.BlockAnswer &&
		a.HTTPSBlockPage == b.HTTPSBlockPage && slices.Equal(a.ConnectPorts, b.ConnectPorts)
}

// settingValue is one setting of a profile as the page shows it, with
// the rules engine's default when the policy leaves it out.
func settingValue(p policy.Profile, field string) string {
	switch field {
	case "youtube":
		return orDefault(p.YouTube, "strict")
	case "https":
		return orDefault(p.HTTPS, "sni")
	case "no_sni":
		return orDefault(p.NoSNI, "refuse")
	case "block_answer":
		return orDefault(p.BlockAnswer, "nxdomain")
	}
	return ""
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// parseRFC3339 reads the API's timestamps (zero when unreadable).
func parseRFC3339(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}
