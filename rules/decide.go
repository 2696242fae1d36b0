package rules

import (
	"math/bits"
	"regexp"
	"strings"
	"time"

	"vigie/rules/domainset"
	"vigie/rules/normalize"
)

// MatchInvalid marks a request whose host cannot be normalised: a filtered
// profile refuses what it cannot check.
const MatchInvalid MatchKind = 100

func (rs *Ruleset) prof(id ProfileID) *compiledProfile {
	if id < 0 || int(id) >= len(rs.profiles) {
		id = rs.defaultID
	}
	return &rs.profiles[id]
}

// activeWindows returns a bit per window of p that is open at t.
func (rs *Ruleset) activeWindows(p *compiledProfile, t time.Time) uint64 {
	if len(p.windows) == 0 {
		return 0
	}
	if t.IsZero() {
		t = time.Now()
	}
	lt := t.In(rs.paris)
	day := uint8(1) << lt.Weekday()
	min := lt.Hour()*60 + lt.Minute()
	var on uint64
	for i, w := range p.windows {
		if w.days&day != 0 && min >= w.from && min < w.to {
			on |= 1 << i
		}
	}
	return on
}

// effectiveBlock is word w of the lists blocked by p while the windows in
// active are open.
func effectiveBlock(p *compiledProfile, w int, active uint64) uint64 {
	b := p.block[w]
	for i := range p.windows {
		if active&(1<<i) == 0 {
			continue
		}
		if p.windows[i].block {
			b |= p.windows[i].mask[w]
		} else {
			b &^= p.windows[i].mask[w]
		}
	}
	return b
}

// judge returns the first list of set that p allows and the first it
// blocks, or -1.
func (rs *Ruleset) judge(p *compiledProfile, set []uint64, active uint64) (allow, block int) {
	allow, block = -1, -1
	for w, s := range set {
		if a := s & p.allow[w]; a != 0 && allow < 0 {
			allow = w*64 + bits.TrailingZeros64(a)
		}
		if b := s & effectiveBlock(p, w, active); b != 0 && block < 0 {
			block = w*64 + bits.TrailingZeros64(b)
		}
	}
	return allow, block
}

func (rs *Ruleset) setOf(idx uint16) []uint64 {
	return rs.sets[int(idx)*rs.words : (int(idx)+1)*rs.words]
}

func (rs *Ruleset) verdict(a Action, k MatchKind, list int, entry string) Verdict {
	l := &rs.meta.Lists[list]
	return Verdict{Action: a, Kind: k, Category: l.Category, List: l.ID, Entry: entry}
}

// Decide returns the verdict of profile id on q. It is safe for concurrent
// use and, for a host-only query whose host is already canonical, does not
// allocate.
func (rs *Ruleset) Decide(id ProfileID, q Query) Verdict {
	p := rs.prof(id)
	if p.Unfiltered {
		return Verdict{Action: Allow, Kind: MatchUnfiltered}
	}
	active := rs.activeWindows(p, q.Time)
	var urlHost, rest string
	if q.URL != "" {
		h, r, err := normalize.URL(q.URL)
		if err != nil {
			return Verdict{Action: Block, Kind: MatchInvalid, Entry: q.URL}
		}
		urlHost, rest = h, r
	}
	raw := q.Host
	if raw == "" {
		raw = urlHost
	}
	host, err := normalize.Host(stripPort(raw))
	if err != nil {
		return Verdict{Action: Block, Kind: MatchInvalid, Entry: raw}
	}
	if rest != "" {
		if urlHost == "" {
			urlHost = host
		}
		if v, ok := rs.decideURL(p, active, urlHost, rest); ok {
			return v
		}
	}
	if v, ok := rs.decideDomainCached(id, p, active, host); ok {
		return v
	}
	if rest != "" && len(p.exprLists) > 0 {
		subject := urlHost + rest
		for _, i := range p.exprLists {
			if effectiveBlock(p, i/64, active)>>(i%64)&1 == 0 {
				continue
			}
			for _, re := range [2]*regexp.Regexp{rs.exprs[i], rs.strictExpr(p, i)} {
				if re != nil && re.MatchString(subject) {
					return rs.verdict(Block, MatchExpression, i, rs.exprText(re, subject, i))
				}
			}
		}
	}
	return Verdict{Action: Allow, Kind: MatchNone}
}

// decideDomain finds the most specific listed suffix of host (itself
// included) that p allows or blocks. The fingerprints of all suffixes are
// computed first and probed together (domainset.LookupBatch), so their cache
// misses overlap; the verdicts are then read from the most specific suffix
// up, which keeps "the most specific entry wins".
func (rs *Ruleset) decideDomain(p *compiledProfile, active uint64, host string) (Verdict, bool) {
	a, list, entry, ok := rs.domainMatch(p, active, host)
	if !ok {
		return Verdict{}, false
	}
	return rs.verdict(a, MatchDomain, list, entry), true
}

// domainMatch is decideDomain's search: the action, deciding list and entry.
func (rs *Ruleset) domainMatch(p *compiledProfile, active uint64, host string) (a Action, list int, entry string, decided bool) {
	var (
		names [domainset.MaxBatch]string
		keys  [domainset.MaxBatch]uint64
		sets  [domainset.MaxBatch]uint16
		n     int
	)
	// probe judges the pending suffixes, most specific first, and reports
	// whether one decided.
	probe := func() bool {
		found := rs.domains.LookupBatch(keys[:n], sets[:n])
		for k := 0; k < n && found != 0; k++ {
			if found&(1<<k) == 0 {
				continue
			}
			allow, block := rs.judge(p, rs.setOf(sets[k]), active)
			switch {
			case allow >= 0:
				a, list, entry, decided = Allow, allow, names[k], true
			case block >= 0:
				a, list, entry, decided = Block, block, names[k], true
			}
			if decided {
				break
			}
		}
		n = 0
		return decided
	}
	normalize.Suffixes(host, func(suffix string) bool {
		names[n], keys[n] = suffix, domainset.Fingerprint(suffix)
		n++
		// A name of more than MaxBatch labels is probed in chunks,
		// the most specific chunk first.
		return n < len(keys) || !probe()
	})
	if !decided && n > 0 {
		probe()
	}
	return a, list, entry, decided
}

// decideURL applies URL prefixes: for the most specific host that has a
// relevant rule, the longest matching prefix wins, an exception winning a tie.
func (rs *Ruleset) decideURL(p *compiledProfile, active uint64, host, rest string) (Verdict, bool) {
	if len(rs.urls) == 0 {
		// Without any URL rule the per-suffix map probes are skipped.
		return Verdict{}, false
	}
	var v Verdict
	decided := false
	normalize.Suffixes(host, func(suffix string) bool {
		rules := rs.urls[domainset.Fingerprint(suffix)]
		best, bestLen, bestAllow := -1, -1, false
		for i := range rules {
			r := &rules[i]
			if r.host != suffix || !prefixMatch(rest, r.rest) {
				continue
			}
			l := int(r.list)
			isAllow := p.allow[l/64]>>(l%64)&1 == 1
			isBlock := effectiveBlock(p, l/64, active)>>(l%64)&1 == 1
			if !isAllow && !isBlock {
				continue
			}
			if len(r.rest) > bestLen || (len(r.rest) == bestLen && isAllow && !bestAllow) {
				best, bestLen, bestAllow = i, len(r.rest), isAllow
			}
		}
		if best < 0 {
			return true
		}
		r := &rules[best]
		a := Block
		if bestAllow {
			a = Allow
		}
		v, decided = rs.verdict(a, MatchURL, int(r.list), r.host+r.rest), true
		return false
	})
	return v, decided
}

// prefixMatch reports whether rest starts with prefix on a path boundary,
// so that "/sk" lists "/sk" and "/sk/x" but not "/skate".
func prefixMatch(rest, prefix string) bool {
	if !strings.HasPrefix(rest, prefix) {
		return false
	}
	if len(rest) == len(prefix) || strings.HasSuffix(prefix, "/") {
		return true
	}
	switch rest[len(prefix)] {
	case '/', '?', '&', ';', '#':
		return true
	}
	return false
}

func stripPort(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	i := strings.IndexByte(h, ':')
	if i < 0 {
		return h
	}
	if strings.LastIndexByte(h, ':') == i {
		return h[:i]
	}
	return h
}

func (rs *Ruleset) strictExpr(p *compiledProfile, list int) *regexp.Regexp {
	if !p.StrictExpressions {
		return nil
	}
	return rs.strictExprs[list]
}

// exprText names the one expression of the list that matched subject,
// rather than the whole alternation the list was compiled into.
func (rs *Ruleset) exprText(re *regexp.Regexp, subject string, list int) string {
	each := rs.exprEach[list]
	if re == rs.strictExprs[list] {
		each = rs.strictEach[list]
	}
	for _, one := range each {
		if one.MatchString(subject) {
			return one.String()
		}
	}
	return re.String()
}
