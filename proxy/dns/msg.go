package dns

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"

	"vigie/rules/normalize"
)

// This file is the seam to github.com/miekg/dns: the only place that
// builds or reads its message types. It serves the slow, rare paths (an
// upstream answer being stored, an answer too large for the client, a
// SafeSearch answer); the per-query fast path reads and writes wire bytes
// itself (wire.go). A move to miekg's v2 stays within this file.

var errTruncated = errors.New("truncated answer")

// answer is an upstream answer made ready for the cache: its wire form
// without OPT record and with clamped TTLs, where those TTLs sit, and the
// names it points to.
type answer struct {
	wire    []byte
	ttlOff  []uint16
	ttl     []uint32
	rcode   int
	ad      bool
	targets []string
	// life is how long it may be cached, in seconds (0: not cached).
	life uint32
	// negative is true for NXDOMAIN and NODATA answers (RFC 2308).
	negative bool
}

// ttlPolicy holds the cache's TTL clamps, in seconds.
type ttlPolicy struct {
	min, max, negMax, negDefault uint32
}

func (p ttlPolicy) clamp(ttl uint32) uint32 {
	if ttl < p.min {
		ttl = p.min
	}
	if p.max > 0 && ttl > p.max {
		ttl = p.max
	}
	return ttl
}

// prepareAnswer checks that resp answers (name, qtype), removes what must
// not reach clients and returns it in cacheable form.
//
//   - the OPT record is dropped: each client gets its own (wire.go);
//   - the ech parameter of HTTPS and SVCB records is removed, so that
//     browsers keep sending a visible server name the proxy can filter;
//   - TTLs are clamped, and negative answers get the RFC 2308 TTL;
//   - CNAME and SVCB/HTTPS targets are collected for the cloaking check.
func prepareAnswer(resp []byte, name string, qtype uint16, p ttlPolicy) (*answer, error) {
	var m mdns.Msg
	if err := m.Unpack(resp); err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	if !m.Response || len(m.Question) != 1 {
		return nil, errors.New("not an answer to one question")
	}
	// The question must be the one asked (letter case aside), read in wire
	// form like the query was: the fast path later overwrites its name
	// with the client's, which must therefore have the same length.
	q := m.Question[0]
	var asked [256]byte
	_, n, err := readQName(resp, headerLen, &asked)
	if err != nil || string(asked[:n]) != name || q.Qtype != qtype || q.Qclass != classIN {
		return nil, fmt.Errorf("answer for %s %s, asked %s %s", q.Name, typeString(q.Qtype), name, typeString(qtype))
	}
	if m.Truncated {
		return nil, errTruncated
	}
	a := &answer{rcode: m.Rcode, ad: m.AuthenticatedData}
	m.Id = 0
	m.Response, m.Authoritative, m.RecursionAvailable, m.AuthenticatedData, m.CheckingDisabled = true, false, true, false, false
	m.Extra = dropOPT(m.Extra)
	stripECH(m.Answer)
	stripECH(m.Extra)
	for _, rr := range m.Answer {
		if t := targetOf(rr); t != "" {
			a.targets = append(a.targets, t)
		}
	}

	switch {
	case m.Rcode == mdns.RcodeNameError, m.Rcode == mdns.RcodeSuccess && !answers(m.Answer, qtype):
		// RFC 2308 section 5: a negative answer lives for the smaller of
		// the SOA's TTL and its MINIMUM field.
		a.negative = true
		a.life = p.negDefault
		for _, rr := range m.Ns {
			if soa, ok := rr.(*mdns.SOA); ok {
				a.life = min(soa.Hdr.Ttl, soa.Minttl)
				soa.Hdr.Ttl = a.life
			}
		}
		if p.negMax > 0 && a.life > p.negMax {
			a.life = p.negMax
		}
	case m.Rcode == mdns.RcodeSuccess:
		a.life = ^uint32(0)
		for _, rr := range m.Answer {
			a.life = min(a.life, rr.Header().Ttl)
		}
		a.life = p.clamp(a.life)
	default:
		// SERVFAIL, REFUSED and the rest are passed on but not kept.
		a.life = 0
	}

	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	offs, err := ttlOffsets(wire)
	if err != nil {
		return nil, err
	}
	a.wire, a.ttlOff = wire, offs
	a.ttl = make([]uint32, len(offs))
	for i, off := range offs {
		t := readU32(wire[off:])
		if a.negative {
			t = min(t, a.life)
		} else {
			t = p.clamp(t)
		}
		a.ttl[i] = t
		put32(wire[off:], t)
	}
	return a, nil
}

// answers reports whether rrs hold data for the question (directly or
// through a CNAME chain): an empty NOERROR answer is NODATA.
func answers(rrs []mdns.RR, qtype uint16) bool {
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		if t == qtype || t == typeCNAME || t == typeDNAME || qtype == typeANY {
			return true
		}
	}
	return false
}

func dropOPT(rrs []mdns.RR) []mdns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != typeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// stripECH removes the ech parameter from HTTPS and SVCB records. A
// DNSSEC signature over such a record no longer verifies: keeping the
// server name visible matters more in a school than validating HTTPS
// records, which browsers do not do.
func stripECH(rrs []mdns.RR) {
	for _, rr := range rrs {
		var svcb *mdns.SVCB
		switch x := rr.(type) {
		case *mdns.HTTPS:
			svcb = &x.SVCB
		case *mdns.SVCB:
			svcb = x
		default:
			continue
		}
		kept := svcb.Value[:0]
		for _, kv := range svcb.Value {
			if kv.Key() != mdns.SVCB_ECHCONFIG {
				kept = append(kept, kv)
			}
		}
		svcb.Value = kept
	}
}

// targetOf returns the canonical name a record points the client to, if any.
func targetOf(rr mdns.RR) string {
	var t string
	switch x := rr.(type) {
	case *mdns.CNAME:
		t = x.Target
	case *mdns.DNAME:
		t = x.Target
	case *mdns.HTTPS:
		t = x.Target
	case *mdns.SVCB:
		t = x.Target
	default:
		return ""
	}
	if t == "." || t == "" {
		return ""
	}
	if h, err := normalize.Host(t); err == nil {
		return h
	}
	// A target with no valid host form is kept as is: deciding on it
	// yields "invalid", which filtered profiles refuse.
	return strings.ToLower(strings.TrimSuffix(t, "."))
}

func readU32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// slowAnswer renders e for the request through miekg/dns: with the records
// that fit the client's buffer when e is too large (TC set so it retries
// over TCP), and behind a CNAME when SafeSearch rewrote the name.
func slowAnswer(out []byte, r *request, e *entry, age uint32, limit int) ([]byte, error) {
	var m mdns.Msg
	if err := m.Unpack(e.wire); err != nil {
		return out, fmt.Errorf("unpack cached answer: %w", err)
	}
	qname, _, err := mdns.UnpackDomainName(r.pkt, headerLen)
	if err != nil {
		return out, err
	}
	m.Id = r.q.id
	m.RecursionDesired = r.q.flags&flagRD != 0
	m.CheckingDisabled = r.q.flags&flagCD != 0
	m.AuthenticatedData = e.ad && r.q.flags&flagAD != 0 || e.ad && r.q.do
	m.Question[0].Name = qname
	for _, rrs := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			h := rr.Header()
			switch {
			case r.stale:
				h.Ttl = staleTTL
			case h.Ttl > age:
				h.Ttl -= age
			default:
				h.Ttl = 0
			}
		}
	}
	if r.rewrite != "" {
		ttl := uint32(300)
		if len(m.Answer) > 0 {
			ttl = min(ttl, m.Answer[0].Header().Ttl)
		}
		cname := &mdns.CNAME{
			Hdr:    mdns.RR_Header{Name: qname, Rrtype: typeCNAME, Class: classIN, Ttl: ttl},
			Target: mdns.Fqdn(r.rewrite),
		}
		m.Answer = append([]mdns.RR{cname}, m.Answer...)
	}
	if r.q.edns {
		opt := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: typeOPT}}
		opt.SetUDPSize(ednsClamp)
		opt.SetDo(r.q.do)
		if r.rewrite != "" {
			opt.Option = append(opt.Option, &mdns.EDNS0_EDE{InfoCode: edeForged, ExtraText: "vigie: SafeSearch imposé, " + r.rewrite})
		}
		if r.stale {
			opt.Option = append(opt.Option, &mdns.EDNS0_EDE{InfoCode: edeStale, ExtraText: "vigie: aucun résolveur ne répond, réponse périmée"})
		}
		m.Extra = append(m.Extra, opt)
	}
	m.Compress = true
	m.Truncate(limit)
	m.Compress = true
	return m.PackBuffer(out)
}

// typeString names a query type for journals and metrics.
func typeString(t uint16) string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	if s, ok := mdns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// rcodeString names a response code.
func rcodeString(rc int) string {
	if rc >= 0 && rc < len(rcodeNames) && rcodeNames[rc] != "" {
		return rcodeNames[rc]
	}
	if s, ok := mdns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

// typeNames and rcodeNames index miekg's names by value for the common
// ones: every journal record names both, an array index instead of two
// map lookups per query.
var (
	typeNames  = nameTable[uint16](mdns.TypeToString, 256)
	rcodeNames = nameTable[int](mdns.RcodeToString, 32)
)

func nameTable[K uint16 | int](m map[K]string, n int) []string {
	t := make([]string, n)
	for k, v := range m {
		if int(k) >= 0 && int(k) < n {
			t[int(k)] = v
		}
	}
	return t
}

// EDE codes used on local answers (RFC 8914 section 4).
const (
	edeForged      = mdns.ExtendedErrorCodeForgedAnswer
	edeBlocked     = mdns.ExtendedErrorCodeBlocked
	edeNotReady    = mdns.ExtendedErrorCodeNotReady
	edeNoReachable = mdns.ExtendedErrorCodeNoReachableAuthority
	edeProhibited  = mdns.ExtendedErrorCodeProhibited
	edeStale       = mdns.ExtendedErrorCodeStaleAnswer
)
