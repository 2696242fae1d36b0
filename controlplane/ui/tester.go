package ui

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"vigie/controlplane/auth"
	"vigie/rules"
	"vigie/rules/normalize"
	"vigie/rules/policy"
)

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
	host, full, err := lookupHost(v.Address)
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
	var rs *rules.Ruleset
	res := &testResult{Host: host, At: at}
	if v.Version == "brouillon" && v.CanDraft {
		select {
		case h.compiling <- struct{}{}:
		default:
			v.Errors = append(v.Errors, T("tester.busy"))
			return rq.render(503, "tester", "tester.title", v)
		}
		start := time.Now()
		c, err := h.pub.Compile(rq.r.Context())
		<-h.compiling
		if err != nil {
			v.Errors = append(v.Errors, T("tester.draftinvalid"))
			v.Errors = append(v.Errors, splitProblems(err)...)
			return rq.render(422, "tester", "tester.title", v)
		}
		rs, res.Source, res.CompileTime = c.Rules, T("tester.source.draft"), time.Since(start)
	} else {
		var serial uint64
		if rs, serial, err = h.publishedRules(rq.r.Context()); err != nil {
			return err
		}
		if rs == nil {
			v.Errors = append(v.Errors, T("tester.nothing"))
			return rq.render(422, "tester", "tester.title", v)
		}
		res.Source = T("tester.source.published", serial)
	}
	school, ok := rs.School(uai)
	if !ok {
		v.Errors = append(v.Errors, T("tester.notinversion", uai))
		return rq.render(422, "tester", "tester.title", v)
	}
	res.School = school.Name
	var id rules.ProfileID
	if addr.IsValid() {
		z, pid := rs.Zone(uai, addr)
		id, zone = pid, z
		if z == "" {
			res.Notes = append(res.Notes, T("tester.ipnozone", addr.String()))
		} else {
			res.Notes = append(res.Notes, T("tester.ipzone", addr.String(), zoneLabel(z)))
		}
	} else {
		pid, ok := rs.ZoneProfile(uai, zone)
		if !ok {
			v.Errors = append(v.Errors, T("tester.nozone", zoneLabel(zone), school.Name))
			return rq.render(422, "tester", "tester.title", v)
		}
		id = pid
	}
	res.Zone = zoneLabel(zone)
	settings := rs.ProfileSettings(id)
	res.Profile = profileLabel(*settings)
	ex := rs.Explain(id, rules.Query{Host: host, URL: full, Time: at})
	explain(res, rs, ex, settings, full)
	v.Result = res
	return rq.render(200, "tester", "tester.title", v)
}

// explain writes the verdict as a sentence and the matches as rows.
func explain(res *testResult, rs *rules.Ruleset, ex rules.Explanation, settings *policy.Profile, full string) {
	vd := ex.Verdict
	res.Block = vd.Action == rules.Block
	catName := func(id string) string { return catNameOf(rs, id) }
	subject := res.Host
	if full != "" {
		subject = full
	}
	switch {
	case vd.Kind == rules.MatchUnfiltered:
		res.Sentence = T("tester.why.unfiltered", subject, res.Profile)
	case vd.Kind == rules.MatchInvalid:
		res.Sentence = T("tester.why.invalid", subject)
	case vd.Kind == rules.MatchNone:
		res.Sentence = T("tester.why.none", subject, res.Profile)
	case res.Block:
		res.Sentence = T("tester.why.block."+vd.Kind.String(), subject, vd.Entry, vd.List, catName(vd.Category), res.Profile)
	default:
		res.Sentence = T("tester.why.allow."+vd.Kind.String(), subject, vd.Entry, vd.List, catName(vd.Category))
	}
	for _, m := range ex.Matches {
		res.Matches = append(res.Matches, testMatch{Match: m, CategoryName: catName(m.Category), Effect: T("effect." + string(m.Effect))})
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
	}
}
