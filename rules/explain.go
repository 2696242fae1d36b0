package rules

import (
	"regexp"

	"vigie/rules/domainset"
	"vigie/rules/normalize"
)

// Effect says what a list that lists a request does under a profile.
type Effect string

const (
	EffectBlock  Effect = "block"
	EffectAllow  Effect = "allow"
	EffectUnused Effect = "unused" // the profile neither blocks nor allows the category
	EffectLifted Effect = "lifted" // blocked by the profile, but a time window is open
)

// Match is one list entry that concerns a request.
type Match struct {
	Kind     MatchKind `json:"kind"`
	List     string    `json:"list"`
	Category string    `json:"category"`
	Entry    string    `json:"entry"`
	Effect   Effect    `json:"effect"`
}

// Explanation is why a request gets its verdict: the verdict itself and
// every list entry that concerns the request, deciding or not.
type Explanation struct {
	Verdict Verdict
	Profile string
	School  string
	Matches []Match
}

// Explain returns the verdict of profile id on q and every entry that
// matches q, with what each does under the profile. It is for people (CLI,
// UI), not for the data path.
func (rs *Ruleset) Explain(id ProfileID, q Query) Explanation {
	p := rs.prof(id)
	ex := Explanation{Verdict: rs.Decide(id, q), Profile: p.ID, School: p.school}
	active := rs.activeWindows(p, q.Time)
	effect := func(list int) Effect {
		w, bit := list/64, uint64(1)<<(list%64)
		switch {
		case p.allow[w]&bit != 0:
			return EffectAllow
		case effectiveBlock(p, w, active)&bit != 0:
			return EffectBlock
		case p.block[w]&bit != 0:
			return EffectLifted
		}
		return EffectUnused
	}
	add := func(k MatchKind, list int, entry string) {
		l := &rs.meta.Lists[list]
		if l.School != "" && l.School != p.school {
			return
		}
		e := effect(list)
		if p.Unfiltered {
			e = EffectUnused
		}
		ex.Matches = append(ex.Matches, Match{Kind: k, List: l.ID, Category: l.Category, Entry: entry, Effect: e})
	}
	var urlHost, rest string
	if q.URL != "" {
		urlHost, rest, _ = normalize.URL(q.URL)
	}
	raw := q.Host
	if raw == "" {
		raw = urlHost
	}
	host, err := normalize.Host(stripPort(raw))
	if err != nil {
		return ex
	}
	if urlHost == "" {
		urlHost = host
	}
	if rest != "" {
		normalize.Suffixes(urlHost, func(suffix string) bool {
			for _, r := range rs.urls[domainset.Fingerprint(suffix)] {
				if r.host == suffix && prefixMatch(rest, r.rest) {
					add(MatchURL, int(r.list), r.host+r.rest)
				}
			}
			return true
		})
	}
	normalize.Suffixes(host, func(suffix string) bool {
		idx, ok := rs.domains.Lookup(domainset.Fingerprint(suffix))
		if !ok {
			return true
		}
		set := rs.setOf(idx)
		for i := range rs.meta.Lists {
			if set[i/64]>>(i%64)&1 == 1 {
				add(MatchDomain, i, suffix)
			}
		}
		return true
	})
	if rest != "" {
		subject := urlHost + rest
		for i, l := range rs.meta.Lists {
			for _, x := range append(append([]string(nil), l.Expressions...), l.StrictExpressions...) {
				if re, err := regexp.Compile(x); err == nil && re.MatchString(subject) {
					add(MatchExpression, i, x)
				}
			}
		}
	}
	return ex
}
