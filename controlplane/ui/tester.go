package ui

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/rules"
	"vigie/rules/normalize"
	"vigie/rules/policy"
)

// subject is the address tested, once there is a verdict.
func (v testerView) subject() string {
	if v.Result == nil {
		return ""
	}
	return shorten(v.Address, 80)
}

// testerView is the Tester une adresse page: a URL or a domain, a school
// and a zone (or a device's address), a moment; the verdict and why.
type testerView struct {
	Address, Place, IP, When, Version string
	Schools                           []policy.School
	CanDraft                          bool
	Result                            *testResult
	Errors                            []string
}

// testResult is a verdict with its explanation, in sentences.
type testResult struct {
	Host        string
	Block       bool
	Sentence    string
	Matches     []testMatch
	Notes       []string
	School      string
	Zone        string
	Profile     string
	Source      string
	At          time.Time
	CompileTime time.Duration
}

type testMatch struct {
	rules.Match
	CategoryName string
	Effect       string
}

func (h *Handler) tester(rq *request) error {
	schools, err := allSchools(rq)
	if err != nil {
		return err
	}
	v := &testerView{Address: rq.query("adresse"), Place: rq.query("lieu"), IP: rq.query("ip"), When: rq.query("quand"),
		Version: rq.query("version"), Schools: schools, CanDraft: rq.is(auth.RSSI)}
	if v.Place == "" && len(schools) > 0 {
		// Start where the person works: a chef's own school, else the
		// first school's first zone.
		for _, s := range schools {
			if rq.id.CanSeeSchool(s.UAI) && len(s.Zones) > 0 {
				v.Place = s.UAI + "|" + s.Zones[0].Name
				break
			}
		}
	}
	if v.Address == "" {
		return rq.render(200, "tester", "tester.title", v)
	}
	uai, zone, _ := strings.Cut(v.Place, "|")
	if !rq.id.CanSeeSchool(uai) {
		return forbidden()
	}
	if i := slices.IndexFunc(schools, func(s policy.School) bool { return s.UAI == uai }); i < 0 {
		v.Errors = append(v.Errors, T("tester.noschool"))
	}
	_, full, err := lookupHost(v.Address)
	if err != nil {
		v.Errors = append(v.Errors, T("tester.badaddress", reason(err)))
	}
	at := rq.now()
	if v.When != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", v.When, paris)
		if err != nil {
			v.Errors = append(v.Errors, T("tester.badtime"))
		} else {
			at = t
		}
	}
	var addr netip.Addr
	if v.IP != "" {
		if addr, err = netip.ParseAddr(v.IP); err != nil {
			v.Errors = append(v.Errors, T("tester.badip", v.IP))
		}
	}
	if len(v.Errors) > 0 {
		return rq.render(422, "tester", "tester.title", v)
	}
	req := api.ExplainRequest{Address: v.Address, UAI: uai, Zone: zone, At: &at, Draft: v.Version == "brouillon" && v.CanDraft}
	if addr.IsValid() {
		req.IP, req.Zone = addr.String(), ""
	}
	// The same route as "vigie admin explain": one answer for both.
	ex, err := rq.api().Explain(rq.ctx(), req)
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			return err
		}
		switch ae.Kind() {
		case api.ExplainBusy:
			v.Errors = append(v.Errors, T("tester.busy"))
		case api.ExplainDraftInvalid:
			v.Errors = append(v.Errors, T("tester.draftinvalid"))
			v.Errors = append(v.Errors, ae.Errors...)
		case api.ExplainNothingPublished:
			v.Errors = append(v.Errors, T("tester.nothing"))
		case api.ExplainNoSchool:
			v.Errors = append(v.Errors, T("tester.notinversion", uai))
		case api.ExplainNoZone:
			name := uai
			if i := slices.IndexFunc(schools, func(s policy.School) bool { return s.UAI == uai }); i >= 0 {
				name = schools[i].Name
			}
			v.Errors = append(v.Errors, T("tester.nozone", zoneLabel(zone), name))
		default:
			return err
		}
		return rq.render(ae.Status, "tester", "tester.title", v)
	}
	res := &testResult{Host: ex.Host, At: ex.At, School: ex.SchoolName, CompileTime: ex.CompileTime}
	if ex.Source == "draft" {
		res.Source = T("tester.source.draft")
	} else {
		res.Source = T("tester.source.published", ex.Serial)
	}
	if addr.IsValid() {
		if ex.Zone == "" {
			res.Notes = append(res.Notes, T("tester.ipnozone", addr.String()))
		} else {
			res.Notes = append(res.Notes, T("tester.ipzone", addr.String(), zoneLabel(ex.Zone)))
		}
	}
	res.Zone = zoneLabel(ex.Zone)
	res.Profile = profileLabel(ex.Profile)
	explain(res, &ex, full)
	v.Result = res
	return rq.render(200, "tester", "tester.title", v)
}

// explain writes the verdict as a sentence and the matches as rows.
func explain(res *testResult, ex *api.ExplainResult, full string) {
	res.Block = ex.Block
	settings := &ex.Profile
	names := map[string]string{ex.Category: ex.CategoryName}
	for _, m := range ex.Matches {
		names[m.Category] = m.CategoryName
	}
	catName := func(id string) string {
		if n := names[id]; n != "" {
			return n
		}
		return id
	}
	subject := res.Host
	if full != "" {
		subject = full
	}
	switch {
	case ex.Kind == rules.MatchUnfiltered.String():
		res.Sentence = T("tester.why.unfiltered", subject, res.Profile)
	case ex.Kind == rules.MatchInvalid.String():
		res.Sentence = T("tester.why.invalid", subject)
	case ex.Kind == rules.MatchNone.String():
		res.Sentence = T("tester.why.none", subject, res.Profile)
	case res.Block:
		res.Sentence = T("tester.why.block."+ex.Kind, subject, ex.Entry, ex.List, catName(ex.Category), res.Profile)
	default:
		res.Sentence = T("tester.why.allow."+ex.Kind, subject, ex.Entry, ex.List, catName(ex.Category))
	}
	for _, m := range ex.Matches {
		res.Matches = append(res.Matches, testMatch{Match: m.Match, CategoryName: catName(m.Category), Effect: T("effect." + string(m.Effect))})
		if m.Effect == rules.EffectLifted {
			res.Notes = append(res.Notes, T("tester.note.lifted", catName(m.Category)))
		}
	}
	if settings.Unfiltered {
		return
	}
	if _, rest, err := normalize.URL(full); full != "" && err == nil && rest != "/" && orDefault(settings.HTTPS, "sni") == "sni" {
		res.Notes = append(res.Notes, T("tester.note.sni"))
	}
	if settings.SafeSearch {
		res.Notes = append(res.Notes, T("tester.note.safesearch", T("profiles.choice.youtube."+orDefault(settings.YouTube, "strict"))))
	}
	if res.Block {
		res.Notes = append(res.Notes, T("tester.note.answer."+orDefault(settings.BlockAnswer, "nxdomain")))
		// What the pupil sees over HTTPS, where most refusals happen.
		if settings.HTTPSBlockPage || settings.HTTPS == "intercept" {
			res.Notes = append(res.Notes, T("tester.note.https.page"))
		} else {
			res.Notes = append(res.Notes, T("tester.note.https.error"))
		}
	}
}
