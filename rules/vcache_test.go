package rules_test

import (
	"sync"
	"testing"
	"time"

	"vigie/rules"
)

// TestVerdictCache asks the same hosts again and again, from several
// goroutines at once, at times on both sides of the profiles' windows and
// through profiles that judge them differently: every verdict must be the
// one the ruleset gives without its cache. A cache keyed without the
// window state or the profile would answer "social.example" at 12:30 with
// the 10:00 block, or one zone with another's exception.
func TestVerdictCache(t *testing.T) {
	rs := compileTest(t)
	plain := rules.WithoutVerdictCache(rs)
	var ids []rules.ProfileID
	for _, z := range []string{"pedagogique", "labo", "serveurs"} {
		id, ok := rs.ZoneProfile(testSchool, z)
		if !ok {
			t.Fatalf("no zone %s", z)
		}
		ids = append(ids, id)
	}
	other, _ := rs.ZoneProfile("0670002B", "pedagogique")
	soir, _ := rs.Profile("soir")
	ids = append(ids, other, soir, rules.ProfileID(-1))
	hosts := []string{"social.example", "www.social.example", "games.example", "x.games.example",
		"bad.example", "a.b.bad.example", "WWW.Bad.Example.", "bad.example:8443", "x.sub.bad.example",
		"ads.partner.example", "www.partner.example", "local-bad.example", "notbad.example",
		"a.b.c.d.e.f.g.sub.bad.example", "example", "bad example", "10.1.2.3"}
	times := []time.Time{mon1000, mon1230, wed1230, mon2100}
	var queries []rules.Query
	for _, h := range hosts {
		for _, tm := range times {
			queries = append(queries, rules.Query{Host: h, Time: tm})
		}
	}
	queries = append(queries, rules.Query{URL: "http://social.example/edu/page", Time: mon1000},
		rules.Query{URL: "http://social.example/other", Time: mon1000},
		rules.Query{URL: "http://social.example/other", Time: mon1230})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 20; round++ {
				for k := range queries {
					// Each goroutine walks the queries in its own order,
					// so that slots are written while others read them.
					q := queries[(k*(2*g+1)+round)%len(queries)]
					for _, id := range ids {
						got, want := rs.Decide(id, q), plain.Decide(id, q)
						if got != want {
							t.Errorf("profile %d, %+v: cached %+v, want %+v", id, q, got, want)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}
