package dns

import (
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"vigie/journal"
	"vigie/proxy/generation"
	"vigie/rules"
	"vigie/rules/policy"
)

// request is one query on its way through the chain. Requests are pooled
// and reused: nothing here may be kept after serve returns (the name is a
// view of nameBuf).
type request struct {
	s *Server
	// in is the read buffer, pkt the query in it.
	in, pkt []byte
	client  netip.AddrPort
	tcp     bool
	// udp is the socket a UDP query came from, oob its control data (the
	// destination address, on wildcard listeners).
	udp *udpListener
	oob []byte
	// conn is the connection a TCP query came on.
	conn *tcpConn
	// internal marks a question asked in process (Resolve): no socket,
	// no rate limit, no journal record; the answer stays in out.
	internal bool
	// batch and slot locate a query read by recvmmsg; its answer then
	// leaves with its neighbours' in one sendmmsg. oobBuf keeps the control
	// data of a query that left its batch.
	batch  *batch
	slot   int
	oobBuf [64]byte
	// detached is set once this goroutine handed its socket to another
	// reader to wait for an upstream.
	detached bool

	q       question
	nameBuf [256]byte
	name    string
	keyBuf  [3 + 256]byte

	start    time.Time
	gen      *generation.Generation
	profile  rules.ProfileID
	settings *policy.Profile

	outcome verdict
	v       rules.Verdict
	// via is the CNAME target that got a permitted name blocked.
	via string
	// canary marks the DoH canary's answer.
	canary bool
	// rewrite is the SafeSearch endpoint the name is answered with.
	rewrite string
	entry   *entry
	cached  bool
	// stale marks an expired answer served because no upstream answered.
	stale  bool
	upTime time.Duration
	// rcode and ede describe local answers (errors, refusals).
	rcode   int
	edeCode uint16
	ede     []byte

	out []byte
	rec journal.Record
}

const dohCanary = "use-application-dns.net"

func (r *request) reset() {
	r.detached = false
	r.gen, r.profile, r.settings = nil, 0, nil
	r.outcome, r.v, r.via, r.canary, r.rewrite = verdictAllow, rules.Verdict{}, "", false, ""
	r.entry, r.cached, r.stale, r.upTime = nil, false, false, 0
	r.rcode, r.edeCode, r.ede = 0, 0, r.ede[:0]
	r.out = r.out[:0]
}

// serve is the whole life of a query, one stage after another. Each stage
// either answers (and the rest is skipped down to the answer) or passes on.
// The order is the design: read it top to bottom.
func (s *Server) serve(r *request) {
	r.reset()
	r.start = s.now()
	now := r.start.UnixNano()

	// 1. Rate limit, before parsing: an abusive source must cost as little
	//    as possible, and its dropped queries get no answer to amplify.
	if s.limit != nil && !r.internal {
		if ok, started := s.limit.allow(r.client.Addr(), now); !ok {
			s.m.limited.Inc()
			if started {
				s.m.limitedSrcs.Inc()
				// At most one line every 10 s: a flood from many
				// (spoofed) sources must not flood the log too.
				if last := s.limitLogged.Load(); now-last > int64(10*time.Second) && s.limitLogged.CompareAndSwap(last, now) {
					s.log.Warn("dns client rate-limited", "client", r.client.Addr(), "qps", s.cfg.RateLimit.QPS)
				}
			}
			return
		}
	}

	// 2. Parse the question and OPT record. Nothing after this sees bad
	//    input: malformed queries get FORMERR, responses and runts are dropped.
	n, fault := parseQuestion(r.pkt, &r.q, &r.nameBuf)
	r.name = unsafe.String(&r.nameBuf[0], n)
	if fault != faultNone {
		if !s.refuse(r, fault) {
			return
		}
		s.answer(r)
		return
	}

	// 3. One generation for the whole query, loaded once: a policy swap
	//    during the query cannot mix two policies in one answer.
	r.gen = s.gen.Load()
	if r.gen == nil {
		r.outcome, r.rcode, r.edeCode = verdictError, rcodeRefused, edeNotReady
		s.answer(r)
		return
	}
	s.m.blockedBy.See(r.gen)
	rs := r.gen.Rules

	// 4. Client address → school zone → profile. Addresses in no zone get
	//    the policy's default profile (the strictest unless it names one).
	_, r.profile = rs.Zone(s.cfg.UAI, r.client.Addr())
	r.settings = rs.ProfileSettings(r.profile)

	switch {
	// 5. Firefox's DoH canary, before the policy: no profile may let a
	//    browser switch to a resolver the school cannot filter.
	case r.name == dohCanary:
		r.outcome, r.canary = verdictBlock, true
		r.v = rules.Verdict{Action: rules.Block, Category: "doh", Entry: dohCanary}

	// 6. The policy's decision on the name itself. The root is not a host
	//    and is always forwarded.
	case r.name != "" && s.blocked(r, rs, r.name):

	default:
		// 7. SafeSearch, after the decision: a blocked engine stays blocked;
		//    an allowed one is answered with its enforced-safe endpoint.
		if r.settings.SafeSearch && !r.settings.Unfiltered {
			if t := s.safe.target(r.name, r.settings.YouTube); t != "" {
				r.rewrite, r.outcome = t, verdictSafeSearch
			}
		}
		// 8–9. Cache, else upstream (identical queries coalesced).
		if !s.lookup(r, now) {
			break
		}
		// 10. CNAME cloaking: a permitted name whose answer leads to a
		//     blocked one is blocked. Checked on every answer, cached or
		//     fresh, because the cache is shared by all profiles.
		for _, t := range r.entry.targets {
			if s.blocked(r, rs, t) {
				r.via = t
				break
			}
		}
	}

	// 11–12. Answer (truncated to the client's buffer), journal, metrics.
	s.answer(r)
}

// blocked decides name for the request's profile and records a block.
func (s *Server) blocked(r *request, rs *rules.Ruleset, name string) bool {
	v := rs.Decide(r.profile, rules.Query{Host: name, Time: r.start})
	if v.Action != rules.Block {
		return false
	}
	r.v, r.outcome, r.rewrite = v, verdictBlock, ""
	return true
}

// refuse prepares the answer to a query that cannot be served, or reports
// false when it must be dropped.
func (s *Server) refuse(r *request, f parseFault) bool {
	r.outcome = verdictError
	switch f {
	case faultDrop:
		s.m.malformed.WithLabelValues("drop").Inc()
		return false
	case faultFormErr:
		s.m.malformed.WithLabelValues("formerr").Inc()
		r.rcode = rcodeFormErr
	case faultNotImp:
		r.rcode = rcodeNotImp
	case faultBadVers:
		r.rcode = rcodeBadVers
	case faultRefused:
		r.rcode, r.edeCode = rcodeRefused, edeProhibited
	}
	return true
}

// lookup finds the answer for the request in the cache or upstream. It
// reports false when there is none (the request then holds a SERVFAIL).
func (s *Server) lookup(r *request, now int64) bool {
	name := r.name
	if r.rewrite != "" {
		name = r.rewrite
	}
	key := r.key(name)
	old, fresh := s.cache.get(key, now)
	if fresh {
		s.m.cacheHits.Inc()
		r.entry, r.cached = old, true
		return true
	}
	s.m.cacheMisses.Inc()
	if s.waiting.Add(1) > int32(s.cfg.MaxWaiting) {
		s.waiting.Add(-1)
		s.m.overload.Inc()
		r.outcome, r.rcode, r.edeCode = verdictError, rcodeServFail, edeNotReady
		return false
	}
	defer s.waiting.Add(-1)
	// This goroutine may now wait for the network: hand its socket to
	// another reader so that cached and blocked names keep flowing.
	r.detach()
	// The upstream's latency is a measurement of real time (the monotonic
	// clock), not a time of the record: it stays on time.Now even when a
	// test moves the injected clock.
	start := time.Now()
	qtype, do, cd := r.q.qtype, r.q.do, r.q.flags&flagCD != 0
	e, err, shared := s.flight.do(key, func() (*entry, error) {
		// An identical query may have been answered and cached between
		// this one's cache miss and now (its flight already over): then
		// nothing needs asking again.
		if e, fresh := s.cache.get(key, s.now().UnixNano()); fresh {
			return e, nil
		}
		a, err := s.up.resolve(s.ctx, name, qtype, do, cd, s.ttl)
		if err != nil {
			return nil, err
		}
		born := s.now().UnixNano()
		e := &entry{answer: *a, born: born, expires: born + int64(a.life)*int64(time.Second)}
		if a.life > 0 {
			s.cache.put(key, e, born)
		}
		return e, nil
	})
	r.upTime = time.Since(start)
	if shared {
		s.m.coalesced.Inc()
	}
	if err != nil {
		s.log.Debug("dns upstream failed", "name", name, "qtype", typeString(qtype), "err", err)
		// No upstream answers: an expired answer is better than none, so
		// that a resolver outage does not cut the school off (RFC 8767).
		if old != nil && now < old.expires+int64(s.cfg.Cache.ServeStale) {
			s.m.stale.Inc()
			r.entry, r.stale = old, true
			return true
		}
		r.outcome, r.rcode, r.edeCode = verdictError, rcodeServFail, edeNoReachable
		return false
	}
	r.entry = e
	return true
}

// key is the cache key: type, DO and CD bits, then the name.
func (r *request) key(name string) []byte {
	var flags byte
	if r.q.do {
		flags |= 1
	}
	if r.q.flags&flagCD != 0 {
		flags |= 2
	}
	k := append(r.keyBuf[:0], byte(r.q.qtype>>8), byte(r.q.qtype), flags)
	return append(k, name...)
}

// detach lets another goroutine read this request's UDP socket while this
// one waits (see udpListener).
func (r *request) detach() {
	if r.udp == nil || r.detached {
		return
	}
	r.detached = true
	if r.batch != nil {
		r.batch.handOff(r)
		return
	}
	r.udp.handOff()
}

// answer renders, journals, counts and sends the request's answer.
// The record is appended before the answer leaves: a client never sees an
// answer that the journal lacks.
func (s *Server) answer(r *request) {
	s.render(r)
	if s.journaling && !r.internal {
		s.record(r)
	}
	// Counted before the answer leaves, so that whoever saw the answer
	// (a client, a test, a scrape right after) also sees it counted.
	s.m.queries[r.outcome][qtypeIndex(r.q.qtype)].Inc()
	if r.outcome == verdictBlock {
		s.m.blockedBy.Inc(r.v.Category)
	}
	s.m.duration.Observe(s.now().Sub(r.start).Seconds())
	s.send(r)
}

// encodingSink is a journal sink that has encoded (copied) a record by the
// time Append returns, such as segment.Journal.
type encodingSink interface{ EncodesOnAppend() }

// record appends the journal record of an answered query.
func (s *Server) record(r *request) {
	v := "allow"
	switch r.outcome {
	case verdictBlock:
		v = "block"
	case verdictError:
		// Nothing was resolved for a refused or malformed query.
		if r.rcode != rcodeServFail {
			v = "block"
		}
	}
	client := netip.AddrPortFrom(r.client.Addr().Unmap(), r.client.Port())
	host := r.name
	if !s.nameView {
		// r.name views the pooled request's buffer: a sink that keeps
		// the record must not see it change under it.
		host = strings.Clone(r.name)
	}
	r.rec = journal.Record{
		Stream:          journal.Navigation,
		Time:            r.start,
		UAI:             s.cfg.UAI,
		Client:          client,
		Proto:           "dns",
		Host:            host,
		QType:           typeString(r.q.qtype),
		RCode:           rcodeString(r.rcode),
		Verdict:         v,
		Category:        r.v.Category,
		UpstreamLatency: r.upTime,
	}
	s.journal.Append(&r.rec)
}
