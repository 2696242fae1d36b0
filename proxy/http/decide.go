package httpproxy

import (
	"crypto/rand"
	"net/http"
	"net/netip"

	"vigie/rules"
	"vigie/rules/policy"
)

// judge is the policy stage, the one decision function of every entry
// point: the client's zone picks the profile, the profile decides on the
// host (and the full URL when it is known). It returns the profile's
// settings for the stages that follow (interception, no-SNI handling).
func (p *Proxy) judge(x *exchange) *policy.Profile {
	g := p.gen.Load()
	x.gen = g
	if g == nil {
		p.refuse(x, catNoPolicy)
		return &policy.Profile{}
	}
	p.m.blockedBy.See(g)
	var addr netip.Addr
	if x.c != nil {
		addr = x.c.client.Addr()
	}
	_, prof := g.Rules.Zone(p.cfg.UAI, addr)
	settings := g.Rules.ProfileSettings(prof)
	if x.host == "" && x.url == "" {
		// TLS without a server name: nothing to decide on.
		if !settings.Unfiltered && settings.NoSNI != "allow" {
			p.refuse(x, catNoSNI)
		}
		return settings
	}
	x.verdict = g.Rules.Decide(prof, rules.Query{Host: x.host, URL: x.url, Time: x.start})
	if x.verdict.Action == rules.Block {
		cat := x.verdict.Category
		if x.verdict.Kind == rules.MatchInvalid {
			cat = catInvalid
		}
		p.refuse(x, cat)
	}
	return settings
}

// describe fills in what a plain-HTTP request asks: method, Host, and the
// full URL as the client sent it, which the policy and the record read.
func describe(x *exchange, r *http.Request) {
	scheme := r.URL.Scheme
	if scheme == "" {
		scheme = "http"
	}
	x.method, x.host = r.Method, r.Host
	x.url = scheme + "://" + r.Host + r.URL.RequestURI()
}

// refuse marks x blocked for category and gives it a reference.
func (p *Proxy) refuse(x *exchange, category string) {
	x.blocked, x.outcome, x.category = true, outcomeBlock, category
	x.verdict.Action = rules.Block
	if x.ref == "" {
		x.ref = newReference()
	}
}

// upstreamFailed records in x why the origin could not be reached and
// returns the status of the page to answer: 502, 504, 508, or 403 for a
// destination refused at dial time. It is counted by reason; raw error
// text never reaches the client.
func (p *Proxy) upstreamFailed(x *exchange, err error) int {
	reason, status := classify(err)
	p.m.upstreamErrors[reason].Inc()
	p.log.Debug("upstream error", "host", x.host, "reason", reasonNames[reason], "err", err)
	if reason == reasonForbidden {
		p.refuse(x, catForbidden)
	} else {
		x.outcome = outcomeError
	}
	return status
}

// refAlphabet leaves out 0/O, 1/I/L: a pupil reads the reference aloud.
const refAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// newReference returns a short id like "K7Q2-M9TD" (about 40 bits).
func newReference() string {
	var b [8]byte
	rand.Read(b[:])
	out := make([]byte, 9)
	j := 0
	for i := range 8 {
		if i == 4 {
			out[j] = '-'
			j++
		}
		out[j] = refAlphabet[int(b[i])%len(refAlphabet)]
		j++
	}
	return string(out)
}
