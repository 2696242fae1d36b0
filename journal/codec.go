package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// The canonical encoding of a record is what the hash chain covers. It must
// be deterministic (one record, one byte string) so that a verifier can
// rebuild it from an export and recompute the chain: integers are minimal
// varints, times and durations are microseconds, strings are valid UTF-8.
// Decode rejects anything else, so encode(decode(p)) == p for every p that
// decodes.

// codecVersion is the first byte of every canonical payload. Version 2
// appends the flow fields (zone, reason, link); a record without them is
// still encoded as version 1, so the links of every record written before
// they existed stay what they were, and a version 2 payload whose three
// fields are empty is not canonical.
const (
	codecVersion      = 1
	codecVersionFlows = 2
)

// Field limits: the journal never stores unbounded input from the network.
const (
	// MaxURL is the longest URL kept (longer ones are cut, marked with "…").
	MaxURL = 4096
	// MaxField is the longest other text field kept.
	MaxField = 1024
	// MaxPayload bounds one encoded record.
	MaxPayload = 64 << 10
)

// ErrCorrupt marks a payload that is not a canonical record.
var ErrCorrupt = errors.New("journal: corrupt record")

// Canonicalize brings r to the form the journal stores: times and
// durations cut to the microsecond, text cut to its limit and made valid
// UTF-8, time in UTC. Encoding a record canonicalizes it on the fly; this
// lets callers see the stored form.
func Canonicalize(r *Record) {
	r.Time = time.UnixMicro(r.Time.UnixMicro()).UTC()
	r.Duration = r.Duration.Truncate(time.Microsecond)
	r.UpstreamLatency = r.UpstreamLatency.Truncate(time.Microsecond)
	r.UAI = clean(r.UAI, MaxField)
	r.MAC = clean(r.MAC, MaxField)
	r.User = clean(r.User, MaxField)
	r.Proto = clean(r.Proto, MaxField)
	r.Host = clean(r.Host, MaxField)
	r.URL = clean(r.URL, MaxURL)
	r.Method = clean(r.Method, MaxField)
	r.QType = clean(r.QType, MaxField)
	r.RCode = clean(r.RCode, MaxField)
	r.Verdict = clean(r.Verdict, MaxField)
	r.Category = clean(r.Category, MaxField)
	r.Reference = clean(r.Reference, MaxField)
	r.Zone = clean(r.Zone, MaxField)
	r.Reason = clean(r.Reason, MaxField)
	r.Link = clean(r.Link, MaxField)
	r.Client = cleanAddr(r.Client)
	r.NAT = cleanAddr(r.NAT)
	r.Dest = cleanAddr(r.Dest)
}

func clean(s string, max int) string {
	if len(s) <= max && utf8.ValidString(s) {
		return s
	}
	// Repair first (it can lengthen the text), then cut on a rune start.
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > max {
		cut := max - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func cleanAddr(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().IsValid() {
		return netip.AddrPort{}
	}
	if z := ap.Addr().Zone(); len(z) > 64 || !utf8.ValidString(z) {
		return netip.AddrPortFrom(ap.Addr().WithZone(clean(z, 64)), ap.Port())
	}
	return ap
}

// AppendRecord appends the canonical encoding of r to dst. r itself is not
// changed; the encoding is that of Canonicalize(copy of r).
func AppendRecord(dst []byte, r *Record) []byte { return appendRecord(dst, r, true) }

// AppendCanonical is AppendRecord for a record already in canonical form:
// its text and addresses are not checked and repaired again. Records that
// DecodeRecord or a sealed batch's reader give are canonical (both refuse
// text that is not valid UTF-8 or is too long); the archive re-encodes
// every record of every batch it verifies to rebuild its link.
func AppendCanonical(dst []byte, r *Record) []byte { return appendRecord(dst, r, false) }

// appendRecord encodes r, cleaning its text and addresses when check is
// set.
func appendRecord(dst []byte, r *Record, check bool) []byte {
	flows := r.Zone != "" || r.Reason != "" || r.Link != ""
	version := byte(codecVersion)
	if flows {
		version = codecVersionFlows
	}
	dst = append(dst, version, byte(r.Stream))
	dst = binary.AppendVarint(dst, r.Time.UnixMicro())
	dst = appendString(dst, r.UAI, MaxField, check)
	dst = appendAddr(dst, r.Client, check)
	dst = appendString(dst, r.MAC, MaxField, check)
	dst = appendString(dst, r.User, MaxField, check)
	dst = appendAddr(dst, r.NAT, check)
	dst = appendString(dst, r.Proto, MaxField, check)
	dst = appendAddr(dst, r.Dest, check)
	dst = binary.AppendVarint(dst, r.Duration.Microseconds())
	dst = binary.AppendVarint(dst, r.BytesIn)
	dst = binary.AppendVarint(dst, r.BytesOut)
	dst = appendString(dst, r.Host, MaxField, check)
	dst = appendString(dst, r.URL, MaxURL, check)
	dst = appendString(dst, r.Method, MaxField, check)
	dst = appendString(dst, r.QType, MaxField, check)
	dst = appendString(dst, r.RCode, MaxField, check)
	dst = binary.AppendVarint(dst, int64(r.Status))
	dst = appendString(dst, r.Verdict, MaxField, check)
	dst = appendString(dst, r.Category, MaxField, check)
	dst = appendString(dst, r.Reference, MaxField, check)
	dst = binary.AppendVarint(dst, r.UpstreamLatency.Microseconds())
	dst = binary.AppendVarint(dst, r.Lost)
	if flows {
		dst = appendString(dst, r.Zone, MaxField, check)
		dst = appendString(dst, r.Reason, MaxField, check)
		dst = appendString(dst, r.Link, MaxField, check)
	}
	return dst
}

func appendString(dst []byte, s string, max int, check bool) []byte {
	if check {
		s = clean(s, max)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Address tags: none, IPv4, IPv6, IPv6 with a zone.
const (
	addrNone   = 0
	addrV4     = 4
	addrV6     = 6
	addrV6Zone = 7
)

func appendAddr(dst []byte, ap netip.AddrPort, check bool) []byte {
	if check {
		ap = cleanAddr(ap)
	}
	a := ap.Addr()
	switch {
	case !a.IsValid():
		return append(dst, addrNone)
	case a.Is4():
		b := a.As4()
		dst = append(dst, addrV4)
		dst = append(dst, b[:]...)
	default:
		b := a.As16()
		if a.Zone() != "" {
			dst = append(dst, addrV6Zone)
			dst = append(dst, b[:]...)
			dst = binary.BigEndian.AppendUint16(dst, ap.Port())
			return appendString(dst, a.Zone(), 64, check)
		}
		dst = append(dst, addrV6)
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, ap.Port())
}

// DecodeRecord decodes a canonical payload into r (Seq is left alone).
// Errors wrap ErrCorrupt and name the field.
func DecodeRecord(p []byte, r *Record) error {
	return decodeRecord(p, r, nil)
}

// Decoder decodes many records, sharing the text values they repeat (the
// school, hosts, verdicts, categories) instead of allocating each again:
// an export decodes millions. Not safe for concurrent use.
type Decoder struct {
	// last holds each text field's previous value: most fields repeat
	// from one record to the next (school, protocol, verdict), and a
	// comparison is cheaper than a map lookup. hosts remembers the hosts
	// seen (a school's browsing is concentrated on a few thousand).
	last [numText]string
	// prev holds each field's value before last: verdicts, response
	// codes and categories alternate between two values (allow and
	// block), which would otherwise be copied at every change.
	prev  [numText]string
	hosts map[string]string
	// HostViews makes Decode return the host as a view of the payload,
	// valid only while the payload's bytes stay unchanged, instead of a
	// shared copy: for a caller that copies it anyway (the segment
	// sealer writes each new host into its own dictionary), the copy
	// and the lookup in hosts are wasted work.
	HostViews bool
}

const numText = 15

// Decode is DecodeRecord, sharing repeated values.
func (dc *Decoder) Decode(p []byte, r *Record) error {
	if !dc.HostViews && (dc.hosts == nil || len(dc.hosts) > 1<<16) {
		dc.hosts = make(map[string]string, 1024)
	}
	return decodeRecord(p, r, dc)
}

func decodeRecord(p []byte, r *Record, dc *Decoder) error {
	d := decoder{b: p, dc: dc}
	if len(p) > MaxPayload {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrCorrupt, len(p), MaxPayload)
	}
	v := d.byte("version")
	if d.err == nil && v != codecVersion && v != codecVersionFlows {
		return fmt.Errorf("%w: version %d", ErrCorrupt, v)
	}
	seq := r.Seq
	*r = Record{Seq: seq}
	r.Stream = Stream(d.byte("stream"))
	if d.err == nil && r.Stream != Connexions && r.Stream != Navigation {
		return fmt.Errorf("%w: stream %d", ErrCorrupt, r.Stream)
	}
	r.Time = time.UnixMicro(d.varint("time")).UTC()
	r.UAI = d.text(0, "uai", MaxField)
	r.Client = d.addr("client")
	r.MAC = d.text(1, "mac", MaxField)
	r.User = d.text(2, "user", MaxField)
	r.NAT = d.addr("nat")
	r.Proto = d.text(3, "proto", MaxField)
	r.Dest = d.addr("dest")
	r.Duration = d.micros("duration")
	r.BytesIn = d.varint("bytes_in")
	r.BytesOut = d.varint("bytes_out")
	r.Host = d.text(4, "host", MaxField)
	r.URL = d.text(5, "url", MaxURL)
	r.Method = d.text(6, "method", MaxField)
	r.QType = d.text(7, "qtype", MaxField)
	r.RCode = d.text(8, "rcode", MaxField)
	status := d.varint("status")
	if d.err == nil && (status < -1<<31 || status > 1<<31-1) {
		d.fail("status", "out of range")
	}
	r.Status = int(status)
	r.Verdict = d.text(9, "verdict", MaxField)
	r.Category = d.text(10, "category", MaxField)
	r.Reference = d.text(11, "reference", MaxField)
	r.UpstreamLatency = d.micros("upstream_latency")
	r.Lost = d.varint("lost")
	if v == codecVersionFlows {
		r.Zone = d.text(12, "zone", MaxField)
		r.Reason = d.text(13, "reason", MaxField)
		r.Link = d.text(14, "link", MaxField)
		if d.err == nil && r.Zone == "" && r.Reason == "" && r.Link == "" {
			d.fail("version", "flow fields all empty")
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("end", fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	return d.err
}

type decoder struct {
	b   []byte
	err error
	dc  *Decoder
}

func (d *decoder) fail(field, msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: field %s: %s", ErrCorrupt, field, msg)
	}
	d.b = nil
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(field, "truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(field, "bad varint")
		return 0
	}
	// Minimal encodings only: a last byte of zero (after the first) means
	// the same value had a shorter form.
	if n > 1 && d.b[n-1] == 0 {
		d.fail(field, "non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(field string) int64 {
	u := d.uvarint(field)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) micros(field string) time.Duration {
	v := d.varint(field)
	if d.err == nil && (v > int64(time.Duration(1<<63-1)/time.Microsecond) || v < int64(time.Duration(-1<<63)/time.Microsecond)) {
		d.fail(field, "out of range")
		return 0
	}
	return time.Duration(v) * time.Microsecond
}

// text reads text field number i (0-14, for the Decoder's cache).
func (d *decoder) text(i int, field string, max int) string {
	if d.dc == nil {
		return d.string(field, max)
	}
	s, ok := d.textBytes(field, max)
	if !ok {
		return ""
	}
	const hostField = 4
	if i == hostField && d.dc.HostViews {
		if !utf8.Valid(s) {
			d.fail(field, "not UTF-8")
			return ""
		}
		return unsafe.String(unsafe.SliceData(s), len(s))
	}
	if string(s) == d.dc.last[i] {
		return d.dc.last[i]
	}
	if string(s) == d.dc.prev[i] {
		d.dc.last[i], d.dc.prev[i] = d.dc.prev[i], d.dc.last[i]
		return d.dc.last[i]
	}
	if i == hostField {
		if v, ok := d.dc.hosts[string(s)]; ok {
			d.dc.prev[i], d.dc.last[i] = d.dc.last[i], v
			return v
		}
	}
	if !utf8.Valid(s) {
		d.fail(field, "not UTF-8")
		return ""
	}
	v := string(s)
	if i == hostField {
		d.dc.hosts[v] = v
	}
	d.dc.prev[i], d.dc.last[i] = d.dc.last[i], v
	return v
}

func (d *decoder) string(field string, max int) string {
	s, ok := d.textBytes(field, max)
	if !ok {
		return ""
	}
	if !utf8.Valid(s) {
		d.fail(field, "not UTF-8")
		return ""
	}
	return string(s)
}

// textBytes reads a length-prefixed text field of at most max bytes and
// returns it unchecked (it aliases the payload); ok is false on error.
func (d *decoder) textBytes(field string, max int) ([]byte, bool) {
	n := d.uvarint(field)
	if d.err != nil {
		return nil, false
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail(field, fmt.Sprintf("length %d", n))
		return nil, false
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s, true
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail(field, "truncated")
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) addr(field string) netip.AddrPort {
	switch tag := d.byte(field); tag {
	case addrNone:
		return netip.AddrPort{}
	case addrV4:
		b := d.take(field, 6)
		if b == nil {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), binary.BigEndian.Uint16(b[4:]))
	case addrV6, addrV6Zone:
		b := d.take(field, 18)
		if b == nil {
			return netip.AddrPort{}
		}
		a := netip.AddrFrom16([16]byte(b[:16]))
		port := binary.BigEndian.Uint16(b[16:])
		if tag == addrV6Zone {
			z := d.string(field, 64)
			if d.err == nil && z == "" {
				d.fail(field, "empty zone")
			}
			a = a.WithZone(z)
		}
		return netip.AddrPortFrom(a, port)
	default:
		if d.err == nil {
			d.fail(field, fmt.Sprintf("address tag %d", tag))
		}
		return netip.AddrPort{}
	}
}

// PeekNAT reads the NAT address of a canonical payload without decoding
// the rest: a requisition's search ("who had this public address and
// port") walks every connection record of a day. ok is false when p is
// not a well-formed payload up to that field (DecodeRecord says why).
func PeekNAT(p []byte) (nat netip.AddrPort, ok bool) {
	d := decoder{b: p}
	if v := d.byte("version"); v != codecVersion && v != codecVersionFlows {
		return netip.AddrPort{}, false
	}
	d.byte("stream")
	d.varint("time")
	d.textBytes("uai", MaxField)
	d.addr("client")
	d.textBytes("mac", MaxField)
	d.textBytes("user", MaxField)
	nat = d.addr("nat")
	return nat, d.err == nil
}
