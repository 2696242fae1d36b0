package dns

import (
	"encoding/binary"
	"errors"
)

// This file is the fast path's own view of DNS wire format (RFC 1035
// section 4): just enough to read one question and its OPT record, and to
// write local answers and replay cached ones, without building message
// objects. Everything rarer goes through msg.go, the seam to miekg/dns.

const (
	headerLen = 12
	// maxQuery is the largest query accepted: real queries are a few dozen
	// bytes (a few hundred with EDNS padding).
	maxQuery = 4096
	// ednsClamp is the EDNS buffer size advertised to clients and
	// upstreams, and the largest UDP answer sent (DNS flag day 2020:
	// no IP fragmentation).
	ednsClamp = 1232
	// minUDP is the answer size every client accepts (RFC 1035).
	minUDP = 512
)

// Header flag bits (RFC 1035 4.1.1, RFC 4035 for AD and CD).
const (
	flagQR     = 1 << 15
	maskOpcode = 0xF << 11
	flagAA     = 1 << 10
	flagTC     = 1 << 9
	flagRD     = 1 << 8
	flagRA     = 1 << 7
	flagAD     = 1 << 5
	flagCD     = 1 << 4
)

// Resource record types and codes the fast path knows by number.
const (
	typeA     = 1
	typeNS    = 2
	typeCNAME = 5
	typeSOA   = 6
	typePTR   = 12
	typeMX    = 15
	typeTXT   = 16
	typeAAAA  = 28
	typeSRV   = 33
	typeDNAME = 39
	typeOPT   = 41
	typeSVCB  = 64
	typeHTTPS = 65
	typeIXFR  = 251
	typeAXFR  = 252
	typeANY   = 255
	classIN   = 1

	rcodeSuccess  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	// rcodeBadVers is an extended rcode (RFC 6891): 0 in the header, 1 in OPT.
	rcodeBadVers = 16

	optionEDE = 15 // RFC 8914
)

// question is what the fast path reads from a query.
type question struct {
	id    uint16
	flags uint16
	// end is the offset just past the question section: pkt[headerLen:end]
	// is the question as the client wrote it (case included).
	end int
	// nameEnd is the offset just past the question name.
	nameEnd      int
	qtype        uint16
	qclass       uint16
	edns         bool
	ednsVersion  uint8
	ednsSize     uint16
	do           bool
	clientSubnet bool
}

// parseFault says how a query that cannot be served is refused.
type parseFault uint8

const (
	faultNone parseFault = iota
	// faultDrop: no answer at all (too short to answer, or not a query:
	// answering responses would let anyone start a packet loop).
	faultDrop
	faultFormErr
	faultNotImp
	faultBadVers
	faultRefused
)

var errName = errors.New("bad name")

// parseQuestion reads the header, the single question and the OPT record of
// pkt. It writes the question name into name as lowercase text without the
// trailing dot ("" for the root) and returns its length. On a fault, q holds
// whatever could be read (at least the ID unless the fault is faultDrop).
func parseQuestion(pkt []byte, q *question, name *[256]byte) (int, parseFault) {
	*q = question{}
	if len(pkt) < headerLen {
		return 0, faultDrop
	}
	q.id = binary.BigEndian.Uint16(pkt)
	q.flags = binary.BigEndian.Uint16(pkt[2:])
	if q.flags&flagQR != 0 {
		return 0, faultDrop
	}
	if q.flags&maskOpcode != 0 {
		return 0, faultNotImp
	}
	qd := binary.BigEndian.Uint16(pkt[4:])
	an := binary.BigEndian.Uint16(pkt[6:])
	ns := binary.BigEndian.Uint16(pkt[8:])
	ar := binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 || an != 0 || ns != 0 {
		return 0, faultFormErr
	}
	off, n, err := readQName(pkt, headerLen, name)
	if err != nil || off+4 > len(pkt) {
		return 0, faultFormErr
	}
	q.nameEnd = off
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	q.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	q.end = off + 4
	off = q.end
	for i := 0; i < int(ar); i++ {
		// Additional records of a query: only OPT is meaningful here. Others
		// (TSIG, which this forwarder cannot verify) are skipped.
		noff, err := skipName(pkt, off)
		if err != nil || noff+10 > len(pkt) {
			return n, faultFormErr
		}
		rtype := binary.BigEndian.Uint16(pkt[noff:])
		rdlen := int(binary.BigEndian.Uint16(pkt[noff+8:]))
		rdata := noff + 10
		if rdata+rdlen > len(pkt) {
			return n, faultFormErr
		}
		if rtype == typeOPT {
			if q.edns || noff != off+1 { // a second OPT, or an OPT not owned by the root
				return n, faultFormErr
			}
			q.edns = true
			q.ednsSize = binary.BigEndian.Uint16(pkt[noff+2:])
			ttl := binary.BigEndian.Uint32(pkt[noff+4:])
			q.ednsVersion = uint8(ttl >> 16)
			q.do = ttl&0x8000 != 0
			for o := rdata; o < rdata+rdlen; {
				if o+4 > rdata+rdlen {
					return n, faultFormErr
				}
				code := binary.BigEndian.Uint16(pkt[o:])
				olen := int(binary.BigEndian.Uint16(pkt[o+2:]))
				if o+4+olen > rdata+rdlen {
					return n, faultFormErr
				}
				if code == 8 { // edns-client-subnet: never forwarded
					q.clientSubnet = true
				}
				o += 4 + olen
			}
		}
		off = rdata + rdlen
	}
	if q.edns && q.ednsVersion != 0 {
		return n, faultBadVers
	}
	if q.qclass != classIN || q.qtype == typeAXFR || q.qtype == typeIXFR || q.qtype == typeOPT {
		return n, faultRefused
	}
	return n, faultNone
}

// readQName reads the uncompressed name at off into name as lowercase text
// and returns the offset after it and the text length. A label holding a
// dot has no faithful text form and is refused, like a compression pointer
// (nothing precedes a question that a pointer could name).
func readQName(pkt []byte, off int, name *[256]byte) (int, int, error) {
	n, wire := 0, 0
	for {
		if off >= len(pkt) {
			return 0, 0, errName
		}
		l := int(pkt[off])
		off++
		wire++
		if l == 0 {
			return off, n, nil
		}
		if l&0xC0 != 0 || off+l > len(pkt) {
			return 0, 0, errName
		}
		wire += l
		if wire > 254 { // 255 with the root label that ends the name
			return 0, 0, errName
		}
		if n > 0 {
			name[n] = '.'
			n++
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c == '.':
				return 0, 0, errName
			}
			name[n] = c
			n++
		}
		off += l
	}
}

// skipName returns the offset after the possibly compressed name at off.
func skipName(b []byte, off int) (int, error) {
	for {
		if off >= len(b) {
			return 0, errName
		}
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0:
			if off+2 > len(b) {
				return 0, errName
			}
			return off + 2, nil
		case l&0xC0 != 0:
			return 0, errName
		}
		off += 1 + l
	}
}

// appendName appends text name (lowercase, no trailing dot, "" for the
// root) in uncompressed wire form.
func appendName(b []byte, name string) []byte {
	for len(name) > 0 {
		i := 0
		for i < len(name) && name[i] != '.' {
			i++
		}
		if i > 63 {
			i = 63
		}
		b = append(b, byte(i))
		b = append(b, name[:i]...)
		if i < len(name) {
			i++
		}
		name = name[i:]
	}
	return append(b, 0)
}

// ttlOffsets returns the offset of the TTL of every record in the answer,
// authority and additional sections of msg, so that a cached answer can be
// replayed with decayed TTLs by patching bytes. OPT records are refused:
// cached answers are stored without one.
func ttlOffsets(msg []byte) ([]uint16, error) {
	if len(msg) < headerLen {
		return nil, errName
	}
	off, err := skipName(msg, headerLen)
	if err != nil {
		return nil, err
	}
	off += 4
	count := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	offs := make([]uint16, 0, count)
	for i := 0; i < count; i++ {
		off, err = skipName(msg, off)
		if err != nil || off+10 > len(msg) {
			return nil, errName
		}
		if binary.BigEndian.Uint16(msg[off:]) == typeOPT {
			return nil, errors.New("OPT record in cached answer")
		}
		if off+4 > 0xFFFF {
			return nil, errors.New("answer too large to cache")
		}
		offs = append(offs, uint16(off+4))
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if off > len(msg) {
			return nil, errName
		}
	}
	return offs, nil
}

// appendHeader appends a response header.
func appendHeader(b []byte, id, flags uint16, qd, an, ns, ar uint16) []byte {
	return append(b,
		byte(id>>8), byte(id), byte(flags>>8), byte(flags),
		byte(qd>>8), byte(qd), byte(an>>8), byte(an),
		byte(ns>>8), byte(ns), byte(ar>>8), byte(ar))
}

// responseFlags are the header flags of an answer to a query with flags req.
func responseFlags(req uint16, rcode int) uint16 {
	return flagQR | flagRA | req&(flagRD|flagCD|maskOpcode) | uint16(rcode&0xF)
}

// appendRRHeader appends a record header whose owner is the question name
// (a compression pointer to offset 12).
func appendRRHeader(b []byte, rtype uint16, ttl uint32, rdlen int) []byte {
	return append(b, 0xC0, headerLen,
		byte(rtype>>8), byte(rtype), 0, classIN,
		byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl),
		byte(rdlen>>8), byte(rdlen))
}

// appendOPT appends the OPT record of an answer: the clamped buffer size,
// the DO bit echoed (RFC 3225), an extended rcode, and an Extended DNS
// Error when code is non-zero.
func appendOPT(b []byte, do bool, rcode int, edeCode uint16, edeText []byte) []byte {
	var flags byte
	if do {
		flags = 0x80
	}
	rdlen := 0
	if edeCode != 0 {
		rdlen = 6 + len(edeText)
	}
	b = append(b, 0, 0, typeOPT, byte(ednsClamp>>8), byte(ednsClamp&0xFF),
		byte(rcode>>4), 0, flags, 0, byte(rdlen>>8), byte(rdlen))
	if edeCode != 0 {
		l := 2 + len(edeText)
		b = append(b, 0, optionEDE, byte(l>>8), byte(l), byte(edeCode>>8), byte(edeCode))
		b = append(b, edeText...)
	}
	return b
}

func put32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func put16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }
