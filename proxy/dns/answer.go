package dns

import (
	"encoding/binary"
	"unicode/utf8"

	"vigie/rules"
)

// staleTTL is the TTL of answers served stale (RFC 8767 section 4).
const staleTTL = 30

// maxEDEText keeps a block answer with its question and SOA under 512
// bytes, the size every client accepts.
const maxEDEText = 120

var (
	nullV4 = make([]byte, 4)
	nullV6 = make([]byte, 16)
	// soaNames are the MNAME and RNAME of the SOA of negative block
	// answers, under .invalid (RFC 6761) so they can never resolve.
	soaNames = appendName(appendName(nil, "vigie.invalid"), "bloque.vigie.invalid")
)

// limit is the largest answer the client accepts: 512 bytes without
// EDNS, its advertised size (clamped to 1232) with it, 64 KiB over TCP.
func (r *request) limit() int {
	switch {
	case r.tcp:
		return 0xFFFF
	case !r.q.edns:
		return minUDP
	}
	return min(max(int(r.q.ednsSize), minUDP), ednsClamp)
}

// render writes the request's answer into r.out and sets r.rcode to the
// code sent.
func (s *Server) render(r *request) {
	switch {
	case r.outcome == verdictBlock:
		s.renderBlock(r)
	case r.entry != nil:
		s.renderEntry(r)
	default:
		if r.rcode == 0 {
			r.rcode = rcodeServFail
		}
		r.renderLocal()
	}
}

// renderLocal answers with an rcode alone (errors and refusals), echoing
// the question when it could be read.
func (r *request) renderLocal() {
	var qd, ar uint16
	if r.q.end > 0 {
		qd = 1
	}
	if r.q.edns {
		ar = 1
	}
	b := appendHeader(r.out[:0], r.q.id, responseFlags(r.q.flags, r.rcode), qd, 0, 0, ar)
	if qd == 1 {
		b = append(b, r.pkt[headerLen:r.q.end]...)
	}
	if r.q.edns {
		b = appendOPT(b, r.q.do, r.rcode, r.edeCode, r.ede)
	}
	r.out = b
}

// renderBlock answers a blocked name as the client's profile asks:
// NXDOMAIN, a null address, or the block page's address. Types other than
// A and AAAA, and AAAA without an IPv6 block page, get an empty NOERROR.
// Negative answers carry an SOA whose TTL is the block TTL, so that clients
// cache the refusal as briefly as an address.
func (s *Server) renderBlock(r *request) {
	rcode := rcodeNXDomain
	var addr []byte
	if !r.canary {
		switch r.settings.BlockAnswer {
		case "null":
			rcode = rcodeSuccess
			addr = pickAddr(r.q.qtype, nullV4, nullV6)
		case "blockpage":
			rcode = rcodeSuccess
			v4, v6 := s.blockV4, s.blockV6
			if v4 == nil {
				v4 = nullV4
			}
			addr = pickAddr(r.q.qtype, v4, v6)
		}
	}
	r.rcode = rcode
	var an, ns, ar uint16
	if addr != nil {
		an = 1
	} else {
		ns = 1
	}
	if r.q.edns {
		ar = 1
	}
	b := appendHeader(r.out[:0], r.q.id, responseFlags(r.q.flags, rcode), 1, an, ns, ar)
	b = append(b, r.pkt[headerLen:r.q.end]...)
	if addr != nil {
		b = appendRRHeader(b, r.q.qtype, s.blockTTL, len(addr))
		b = append(b, addr...)
	} else {
		b = appendRRHeader(b, typeSOA, s.blockTTL, len(soaNames)+20)
		b = append(b, soaNames...)
		b = binary.BigEndian.AppendUint32(b, uint32(r.gen.Serial))
		b = binary.BigEndian.AppendUint32(b, 3600)
		b = binary.BigEndian.AppendUint32(b, 600)
		b = binary.BigEndian.AppendUint32(b, 86400)
		b = binary.BigEndian.AppendUint32(b, s.blockTTL)
	}
	if r.q.edns {
		b = appendOPT(b, r.q.do, rcode, edeBlocked, s.blockText(r))
	}
	r.out = b
}

// pickAddr returns the address matching qtype, nil for other types.
func pickAddr(qtype uint16, v4, v6 []byte) []byte {
	switch qtype {
	case typeA:
		return v4
	case typeAAAA:
		return v6
	}
	return nil
}

// blockText is the Extended DNS Error text of a block: why, in French,
// naming the category, so that "dig" at a school tells the technician
// what the policy did.
func (s *Server) blockText(r *request) []byte {
	b := append(r.ede[:0], "vigie: "...)
	switch {
	case r.canary:
		b = append(b, "canari DoH de Firefox, DoH désactivé sur ce réseau"...)
	case r.v.Kind == rules.MatchInvalid:
		b = append(b, "nom invalide, refusé"...)
	default:
		b = append(b, "bloqué"...)
		if r.via != "" {
			b = append(b, " (CNAME vers "...)
			b = append(b, r.via...)
			b = append(b, ')')
		}
		b = append(b, ", catégorie "...)
		b = append(b, r.v.Category...)
		if ci, ok := r.gen.Rules.Category(r.v.Category); ok && ci.NameFR != "" {
			b = append(b, " ("...)
			b = append(b, ci.NameFR...)
			b = append(b, ')')
		}
	}
	if len(b) > maxEDEText {
		n := maxEDEText
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		b = b[:n]
	}
	r.ede = b
	return b
}

// renderEntry answers from an upstream answer. The common case replays its
// wire bytes with the client's ID, flags, question case and decayed TTLs;
// an answer too large for the client, or one behind a SafeSearch CNAME,
// goes through miekg/dns (slowAnswer).
func (s *Server) renderEntry(r *request) {
	e := r.entry
	r.rcode = e.rcode
	age := e.age(r.start.UnixNano())
	limit := r.limit()
	size := len(e.wire)
	if r.q.edns {
		size += 11
	}
	if r.rewrite == "" && size <= limit {
		b := append(r.out[:0], e.wire...)
		put16(b, r.q.id)
		flags := responseFlags(r.q.flags, e.rcode)
		if e.ad && (r.q.do || r.q.flags&flagAD != 0) {
			flags |= flagAD
		}
		put16(b[2:], flags)
		// Same name, same length: only the client's letter case differs.
		copy(b[headerLen:r.q.nameEnd], r.pkt[headerLen:r.q.nameEnd])
		for i, off := range e.ttlOff {
			t := e.ttl[i]
			switch {
			case r.stale:
				t = staleTTL
			case t > age:
				t -= age
			default:
				t = 0
			}
			put32(b[off:], t)
		}
		if r.q.edns {
			put16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
			if r.stale {
				b = appendOPT(b, r.q.do, e.rcode, edeStale, append(r.ede[:0], "vigie: aucun résolveur ne répond, réponse périmée"...))
			} else {
				b = appendOPT(b, r.q.do, e.rcode, 0, nil)
			}
		}
		r.out = b
		return
	}
	out, err := slowAnswer(r.out[:0], r, e, age, limit)
	if err != nil {
		s.log.Error("dns: cannot render answer", "name", r.name, "err", err)
		r.entry, r.rcode, r.outcome = nil, rcodeServFail, verdictError
		r.renderLocal()
		return
	}
	r.out = out
}
