package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"vigie/rules"
	"vigie/rules/policy"
)

// mon1230 is a Monday lunch time in Paris: the social window is open.
var (
	paris, _   = time.LoadLocation("Europe/Paris")
	mon1230    = time.Date(2026, 11, 30, 12, 30, 0, 0, paris)
	mon1000    = time.Date(2026, 11, 30, 10, 0, 0, 0, paris)
	wed1230    = time.Date(2026, 12, 2, 12, 30, 0, 0, paris)
	mon2100    = time.Date(2026, 11, 30, 21, 0, 0, 0, paris)
	testSchool = "0670001A"
)

func compileTest(t testing.TB) *rules.Ruleset {
	t.Helper()
	p, err := policy.Load("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, rep, err := rules.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rejected != 1 {
		t.Errorf("rejected lines = %d, want 1 (the bad hosts line)", rep.Rejected)
	}
	return rs
}

func TestDecide(t *testing.T) {
	rs := compileTest(t)
	zone := func(name string) rules.ProfileID {
		id, ok := rs.ZoneProfile(testSchool, name)
		if !ok {
			t.Fatalf("no zone %s", name)
		}
		return id
	}
	eleves, soir, serveurs := zone("pedagogique"), zone("labo"), zone("serveurs")
	other, _ := rs.ZoneProfile("0670002B", "pedagogique")
	cases := []struct {
		name    string
		id      rules.ProfileID
		q       rules.Query
		action  rules.Action
		kind    rules.MatchKind
		list    string
		entry   string
		categry string
	}{
		{"listed domain", eleves, rules.Query{Host: "bad.example", Time: mon1000}, rules.Block, rules.MatchDomain, "t", "bad.example", "malware"},
		{"subdomain of listed", eleves, rules.Query{Host: "a.b.bad.example", Time: mon1000}, rules.Block, rules.MatchDomain, "t", "bad.example", "malware"},
		{"case and trailing dot", eleves, rules.Query{Host: "WWW.Bad.Example.", Time: mon1000}, rules.Block, rules.MatchDomain, "t", "bad.example", "malware"},
		{"host with port", eleves, rules.Query{Host: "bad.example:8443", Time: mon1000}, rules.Block, rules.MatchDomain, "t", "bad.example", "malware"},
		{"parent not listed", eleves, rules.Query{Host: "example", Time: mon1000}, rules.Allow, rules.MatchNone, "", "", ""},
		{"look-alike not a subdomain", eleves, rules.Query{Host: "notbad.example", Time: mon1000}, rules.Allow, rules.MatchNone, "", "", ""},
		{"more specific exception wins", eleves, rules.Query{Host: "x.sub.bad.example", Time: mon1000}, rules.Allow, rules.MatchDomain, "ok", "sub.bad.example", "ok"},
		{"more specific block wins over exception", eleves, rules.Query{Host: "ads.partner.example", Time: mon1000}, rules.Block, rules.MatchDomain, "t", "ads.partner.example", "malware"},
		// Suffixes are probed in chunks of domainset.MaxBatch (8): the
		// deciding entry may lie in a later chunk, and a more specific one
		// in an earlier chunk must still win.
		{"listed parent beyond the first chunk", eleves, rules.Query{Host: "a.b.c.d.e.f.g.h.i.j.bad.example", Time: mon1000}, rules.Block, rules.MatchDomain, "t", "bad.example", "malware"},
		{"listed parent at the chunk boundary", eleves, rules.Query{Host: "a.b.c.d.e.f.g.bad.example", Time: mon1000}, rules.Block, rules.MatchDomain, "t", "bad.example", "malware"},
		{"exception in the first chunk beats block in the second", eleves, rules.Query{Host: "a.b.c.d.e.f.g.sub.bad.example", Time: mon1000}, rules.Allow, rules.MatchDomain, "ok", "sub.bad.example", "ok"},
		{"block in the first chunk beats exception in the second", eleves, rules.Query{Host: "a.b.c.d.e.f.g.ads.partner.example", Time: mon1000}, rules.Block, rules.MatchDomain, "t", "ads.partner.example", "malware"},
		{"long unlisted name", eleves, rules.Query{Host: "a.b.c.d.e.f.g.h.i.j.k.l.good.example", Time: mon1000}, rules.Allow, rules.MatchNone, "", "", ""},
		{"exception parent", eleves, rules.Query{Host: "www.partner.example", Time: mon1000}, rules.Allow, rules.MatchDomain, "ok", "partner.example", "ok"},
		{"hosts file entry", eleves, rules.Query{Host: "tracker.example", Time: mon1000}, rules.Block, rules.MatchDomain, "h", "tracker.example", "malware"},
		{"window closed", eleves, rules.Query{Host: "social.example", Time: mon1000}, rules.Block, rules.MatchDomain, "social", "social.example", "social"},
		{"window open", eleves, rules.Query{Host: "social.example", Time: mon1230}, rules.Allow, rules.MatchNone, "", "", ""},
		{"window not on wednesday", eleves, rules.Query{Host: "social.example", Time: wed1230}, rules.Block, rules.MatchDomain, "social", "social.example", "social"},
		{"url exception beats domain block", eleves, rules.Query{URL: "http://social.example/edu/page", Time: mon1000}, rules.Allow, rules.MatchURL, "ok", "social.example/edu", "ok"},
		{"url prefix on boundary", eleves, rules.Query{URL: "http://pages.example/sk?x=1", Time: mon1000}, rules.Block, rules.MatchURL, "urls", "pages.example/sk", "malware"},
		{"url prefix not mid-segment", eleves, rules.Query{URL: "http://pages.example/skate", Time: mon1000}, rules.Allow, rules.MatchNone, "", "", ""},
		{"url prefix with slash", eleves, rules.Query{URL: "https://www.pages.example/dir/x/../y", Time: mon1000}, rules.Block, rules.MatchURL, "urls", "pages.example/dir/", "malware"},
		{"url dot segments do not escape", eleves, rules.Query{URL: "http://pages.example/a/../sk", Time: mon1000}, rules.Block, rules.MatchURL, "urls", "pages.example/sk", "malware"},
		{"url with port", eleves, rules.Query{URL: "http://pages.example:8080/x/1", Time: mon1000}, rules.Block, rules.MatchURL, "urls", "pages.example:8080/x", "malware"},
		{"url default port dropped", eleves, rules.Query{URL: "http://pages.example:80/sk", Time: mon1000}, rules.Block, rules.MatchURL, "urls", "pages.example/sk", "malware"},
		{"expression", eleves, rules.Query{URL: "http://cdn.evil42.example/x", Time: mon1000}, rules.Block, rules.MatchExpression, "urls", `(^|[./])evil[0-9]+\.`, "malware"},
		{"expression needs a URL", eleves, rules.Query{Host: "cdn.evil42.example", Time: mon1000}, rules.Allow, rules.MatchNone, "", "", ""},
		{"school exception", eleves, rules.Query{Host: "games.example", Time: mon1000}, rules.Allow, rules.MatchDomain, "monnet-ok", "games.example", "school_ok"},
		{"other school keeps the block", other, rules.Query{Host: "games.example", Time: mon1000}, rules.Block, rules.MatchDomain, "games", "games.example", "games"},
		{"school block list", eleves, rules.Query{Host: "local-bad.example", Time: mon1000}, rules.Block, rules.MatchDomain, "monnet-block", "local-bad.example", "school_block"},
		{"school list not elsewhere", other, rules.Query{Host: "local-bad.example", Time: mon1000}, rules.Allow, rules.MatchNone, "", "", ""},
		{"block window closed", soir, rules.Query{Host: "games.example", Time: mon1000}, rules.Allow, rules.MatchDomain, "monnet-ok", "games.example", "school_ok"},
		{"block window on another list", soir, rules.Query{Host: "x.games.example", Time: mon2100}, rules.Allow, rules.MatchDomain, "monnet-ok", "games.example", "school_ok"},
		{"unfiltered", serveurs, rules.Query{Host: "bad.example"}, rules.Allow, rules.MatchUnfiltered, "", "", ""},
		{"invalid host refused", eleves, rules.Query{Host: "bad example"}, rules.Block, rules.MatchInvalid, "", "bad example", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := rs.Decide(c.id, c.q)
			if v.Action != c.action || v.Kind != c.kind || v.List != c.list || v.Entry != c.entry || v.Category != c.categry {
				t.Errorf("Decide(%+v) = %+v, want %v %v list=%q entry=%q category=%q", c.q, v, c.action, c.kind, c.list, c.entry, c.categry)
			}
		})
	}
}

func TestBlockWindow(t *testing.T) {
	rs := compileTest(t)
	id, _ := rs.ZoneProfile("0670002B", "pedagogique")
	_ = id
	soir, ok := rs.Profile("soir")
	if !ok {
		t.Fatal("no profile soir")
	}
	if v := rs.Decide(soir, rules.Query{Host: "games.example", Time: mon1000}); v.Action != rules.Allow {
		t.Errorf("games at 10:00 = %+v, want allow", v)
	}
	if v := rs.Decide(soir, rules.Query{Host: "games.example", Time: mon2100}); v.Action != rules.Block || v.Category != "games" {
		t.Errorf("games at 21:00 = %+v, want block games", v)
	}
}

func TestZones(t *testing.T) {
	rs := compileTest(t)
	cases := []struct {
		uai, addr, zone, profile string
	}{
		{testSchool, "10.10.1.2", "pedagogique", "eleves"},
		{testSchool, "10.11.5.7", "labo", "soir"},
		{testSchool, "::ffff:10.11.5.7", "labo", "soir"},
		{testSchool, "10.40.0.1", "serveurs", "serveurs"},
		{testSchool, "172.16.0.1", "", "eleves"}, // unknown: the strictest
		{"9999999Z", "10.10.1.2", "", "eleves"},
	}
	for _, c := range cases {
		t.Run(c.uai+"/"+c.addr, func(t *testing.T) {
			zone, id := rs.Zone(c.uai, netip.MustParseAddr(c.addr))
			if zone != c.zone || rs.ProfileSettings(id).ID != c.profile {
				t.Errorf("Zone = %q %q, want %q %q", zone, rs.ProfileSettings(id).ID, c.zone, c.profile)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	rs := compileTest(t)
	id, _ := rs.ZoneProfile(testSchool, "pedagogique")
	ex := rs.Explain(id, rules.Query{Host: "x.sub.bad.example", Time: mon1000})
	if ex.Verdict.Action != rules.Allow || len(ex.Matches) != 2 {
		t.Fatalf("Explain = %+v", ex)
	}
	if ex.Matches[0].List != "ok" || ex.Matches[0].Effect != rules.EffectAllow || ex.Matches[1].List != "t" || ex.Matches[1].Effect != rules.EffectBlock {
		t.Errorf("matches = %+v", ex.Matches)
	}
	ex = rs.Explain(id, rules.Query{Host: "social.example", Time: mon1230})
	if len(ex.Matches) != 1 || ex.Matches[0].Effect != rules.EffectLifted {
		t.Errorf("lunch matches = %+v", ex.Matches)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown category in profile", `version: 1
profiles: [{id: p, block: [nope]}]`, `profiles[0] (p).block[0]: unknown category "nope"`},
		{"bad custom domain", `version: 1
categories: [{id: c}]
lists: [{id: l, category: c, domains: ["a..b"]}]
profiles: [{id: p, block: [c]}]`, `lists[0] (l).domains[0]: "a..b"`},
		{"bad expression", `version: 1
categories: [{id: c}]
lists: [{id: l, category: c, expressions: ["(a"]}]
profiles: [{id: p, block: [c]}]`, `lists[0] (l).expressions[0]: expression "(a"`},
		{"missing source", `version: 1
sources: [{name: s, type: plain, path: /nonexistent/file, category: c}]
profiles: [{id: p}]`, `sources[0] (s)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := policy.Parse([]byte(c.yaml), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = rules.Compile(p)
			if err == nil || !contains(err.Error(), c.want) {
				t.Errorf("Compile error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0))
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestDecideDoesNotAllocate(t *testing.T) {
	rs := compileTest(t)
	id, _ := rs.ZoneProfile(testSchool, "pedagogique")
	for _, h := range []string{"a.b.bad.example", "www.unlisted.example", "x.sub.bad.example"} {
		q := rules.Query{Host: h, Time: mon1000}
		if n := testing.AllocsPerRun(100, func() { rs.Decide(id, q) }); n != 0 {
			t.Errorf("Decide(%s) allocates %.0f times", h, n)
		}
	}
}
