package export

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"vigie/journal"
)

// The export's hot path formats records straight from their canonical
// payloads: decoding into a journal.Record first costs a string per text
// field and a map lookup per host, times millions, for values that are
// only copied into the output. rawRecord is a view of a payload (its text
// fields alias it) that checks everything journal.DecodeRecord checks;
// anything unusual (an error, an IPv6 zone) makes it decline, and the
// export then takes the journal.Record path, which formats the same bytes
// and names the error. TestRawMatchesRecordPath holds the two together.

// Text fields of a payload, in encoding order.
const (
	rawUAI = iota
	rawMAC
	rawUser
	rawProto
	rawHost
	rawURL
	rawMethod
	rawQType
	rawRCode
	rawVerdict
	rawCategory
	rawReference
	rawTexts
)

// Byte classes of text, OR-ed over a field: what CSV must quote, what
// JSON must escape, and bytes that make the text need a UTF-8 check.
const (
	classCSV  = 1 << iota // ; " CR LF
	classJSON             // control characters, " and \
	classHigh             // not ASCII
)

var byteClass = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		switch {
		case c < 0x20:
			t[c] |= classJSON
		case c >= utf8.RuneSelf:
			t[c] |= classHigh
		}
		switch c {
		case csvSep, '"', '\r', '\n':
			t[c] |= classCSV
		}
		if c == '"' || c == '\\' {
			t[c] |= classJSON
		}
	}
	return t
}()

// textClass is the OR of the classes of the bytes of s. Most text is
// plain ASCII without separators: eight bytes at a time say so, and the
// table only looks at what follows a word that holds something.
func textClass(s []byte) byte {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	hasZero := func(x uint64) bool { return (x-lo)&^x&hi != 0 }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		// Not ASCII, a control character, or ; " \ somewhere.
		if w&hi != 0 || (w-0x20*lo)&^w&hi != 0 || hasZero(w^(csvSep*lo)) || hasZero(w^('"'*lo)) || hasZero(w^('\\'*lo)) {
			break
		}
	}
	var c byte
	for _, b := range s[i:] {
		c |= byteClass[b]
	}
	return c
}

// rawAddr is an address of a view with its text, formatted once for the
// CSV and the JSON line and kept while the next records repeat it (the
// school's NAT address, a busy client, a popular destination).
type rawAddr struct {
	tag   byte // 0 (none), 4 or 6 (a zone declines the view)
	ip    [16]byte
	port  uint16
	text  []byte // the address
	ptext []byte // the port
}

func (a *rawAddr) set(tag byte, ip []byte, port uint16) {
	newAddr := tag != a.tag || string(ip) != string(a.ip[:len(ip)]) || a.text == nil
	if newAddr {
		a.tag = tag
		copy(a.ip[:], ip)
		a.text = a.text[:0]
		if tag == 4 {
			for i := 0; i < 4; i++ {
				if i > 0 {
					a.text = append(a.text, '.')
				}
				a.text = append(a.text, decimalByte[a.ip[i]]...)
			}
		} else {
			a.text = netip.AddrFrom16(a.ip).AppendTo(a.text)
		}
	}
	if newAddr || port != a.port {
		a.port = port
		a.ptext = strconv.AppendUint(a.ptext[:0], uint64(port), 10)
	}
}

var decimalByte = func() (t [256]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

type rawRecord struct {
	stream            journal.Stream
	time              int64 // microseconds
	text              [rawTexts][]byte
	class             [rawTexts]byte
	client, nat, dest rawAddr
	duration, latency int64 // microseconds
	bytesIn, bytesOut int64
	status, lost      int64
	p                 []byte
	bad               bool
}

// decode reads p; false means "use journal.DecodeRecord" (p is not a
// canonical record, or holds something this path does not format: a
// version 2 payload, with flow fields, takes the Record path).
func (v *rawRecord) decode(p []byte) bool {
	if len(p) > journal.MaxPayload || len(p) < 2 || p[0] != 1 {
		return false
	}
	v.stream = journal.Stream(p[1])
	if v.stream != journal.Connexions && v.stream != journal.Navigation {
		return false
	}
	v.p, v.bad = p[2:], false
	v.time = v.varint()
	v.textField(rawUAI, journal.MaxField)
	v.addr(&v.client)
	v.textField(rawMAC, journal.MaxField)
	v.textField(rawUser, journal.MaxField)
	v.addr(&v.nat)
	v.textField(rawProto, journal.MaxField)
	v.addr(&v.dest)
	v.duration = v.micros()
	v.bytesIn = v.varint()
	v.bytesOut = v.varint()
	v.textField(rawHost, journal.MaxField)
	v.textField(rawURL, journal.MaxURL)
	v.textField(rawMethod, journal.MaxField)
	v.textField(rawQType, journal.MaxField)
	v.textField(rawRCode, journal.MaxField)
	v.status = v.varint()
	if v.status < -1<<31 || v.status > 1<<31-1 {
		v.bad = true
	}
	v.textField(rawVerdict, journal.MaxField)
	v.textField(rawCategory, journal.MaxField)
	v.textField(rawReference, journal.MaxField)
	v.latency = v.micros()
	v.lost = v.varint()
	return !v.bad && len(v.p) == 0
}

func (v *rawRecord) uvarint() uint64 {
	if v.bad {
		return 0
	}
	// Most values (lengths, small numbers) take one byte.
	if len(v.p) > 0 && v.p[0] < 0x80 {
		x := uint64(v.p[0])
		v.p = v.p[1:]
		return x
	}
	x, n := binary.Uvarint(v.p)
	// Minimal encodings only, as journal's decoder demands.
	if n <= 0 || (n > 1 && v.p[n-1] == 0) {
		v.bad = true
		return 0
	}
	v.p = v.p[n:]
	return x
}

func (v *rawRecord) varint() int64 {
	u := v.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// micros reads a duration in microseconds, in time.Duration's range.
func (v *rawRecord) micros() int64 {
	x := v.varint()
	const limit = int64(1<<63-1) / 1000
	if x > limit || x < -limit {
		v.bad = true
	}
	return x
}

func (v *rawRecord) textField(i, max int) {
	n := v.uvarint()
	if v.bad || n > uint64(max) || n > uint64(len(v.p)) {
		v.bad = true
		v.text[i], v.class[i] = nil, 0
		return
	}
	if n == 0 {
		v.text[i], v.class[i] = nil, 0
		return
	}
	s := v.p[:n]
	v.p = v.p[n:]
	c := textClass(s)
	if c&classHigh != 0 && !utf8.Valid(s) {
		v.bad = true
	}
	v.text[i], v.class[i] = s, c
}

func (v *rawRecord) addr(a *rawAddr) {
	if v.bad || len(v.p) == 0 {
		v.bad = true
		return
	}
	switch v.p[0] {
	case 0:
		a.tag = 0
		v.p = v.p[1:]
	case 4:
		if len(v.p) < 7 {
			v.bad = true
			return
		}
		a.set(4, v.p[1:5], binary.BigEndian.Uint16(v.p[5:7]))
		v.p = v.p[7:]
	case 6:
		if len(v.p) < 19 {
			v.bad = true
			return
		}
		a.set(6, v.p[1:17], binary.BigEndian.Uint16(v.p[17:19]))
		v.p = v.p[19:]
	default:
		// 7, an IPv6 address with a zone, is left to the Record path.
		v.bad = true
	}
}

func appendRawAddr(dst []byte, a *rawAddr) []byte {
	if a.tag == 0 {
		return dst
	}
	return append(dst, a.text...)
}

func appendRawPort(dst []byte, a *rawAddr) []byte {
	if a.tag == 0 {
		return dst
	}
	return append(dst, a.ptext...)
}

func (v *rawRecord) appendCSVText(dst []byte, i int) []byte {
	if v.class[i]&classCSV == 0 {
		return append(dst, v.text[i]...)
	}
	return appendCSVField(dst, string(v.text[i]))
}

// appendMicrosAsSeconds writes a count of microseconds as seconds with
// microseconds (both the raw and the Record path format durations here).
func appendMicrosAsSeconds(dst []byte, us int64) []byte {
	if us < 0 {
		dst = append(dst, '-')
		us = -us
	}
	dst = strconv.AppendInt(dst, us/1e6, 10)
	dst = append(dst, '.')
	frac := us % 1e6
	var b [6]byte
	for i := 5; i >= 0; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(dst, b[:]...)
}

// JSON member names of the text fields, with their opening: `,"uai":`.
var rawJSONKeys = [rawTexts]string{
	rawUAI: `,"uai":`, rawMAC: `,"mac":`, rawUser: `,"utilisateur":`, rawProto: `,"protocole":`,
	rawHost: `,"hote":`, rawURL: `,"url":`, rawMethod: `,"methode":`, rawQType: `,"type_dns":`,
	rawRCode: `,"reponse_dns":`, rawVerdict: `,"verdict":`, rawCategory: `,"categorie":`,
	rawReference: `,"reference_blocage":`,
}

func (v *rawRecord) appendJSONText(dst []byte, i int) []byte {
	s := v.text[i]
	if len(s) == 0 {
		return dst
	}
	dst = append(dst, rawJSONKeys[i]...)
	if v.class[i]&classJSON != 0 {
		return appendJSONString(dst, string(s))
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendJSONNum(dst []byte, key string, x int64) []byte {
	if x == 0 {
		return dst
	}
	dst = append(dst, key...)
	return strconv.AppendInt(dst, x, 10)
}

func appendJSONAddr(dst []byte, key, portKey string, a *rawAddr) []byte {
	if a.tag == 0 {
		return dst
	}
	dst = append(dst, key...)
	dst = append(dst, a.text...)
	dst = append(dst, portKey...)
	return append(dst, a.ptext...)
}

// appendRawJSONOpen is appendJSONOpen for a view.
func (f *timeFormatter) appendRawJSONOpen(dst []byte, v *rawRecord, seq uint64, chain int, prev *journal.Hash) []byte {
	dst = append(dst, `{"sequence":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"chaine":`...)
	dst = strconv.AppendInt(dst, int64(chain), 10)
	dst = append(dst, `,"horodatage":"`...)
	dst = f.appendMicros(dst, v.time)
	dst = append(dst, '"')
	dst = v.appendJSONText(dst, rawUAI)
	dst = appendJSONAddr(dst, `,"client":"`, `","client_port":`, &v.client)
	dst = v.appendJSONText(dst, rawMAC)
	dst = v.appendJSONText(dst, rawUser)
	dst = appendJSONAddr(dst, `,"nat":"`, `","nat_port":`, &v.nat)
	dst = v.appendJSONText(dst, rawProto)
	dst = appendJSONAddr(dst, `,"destination":"`, `","destination_port":`, &v.dest)
	dst = appendJSONNum(dst, `,"duree_us":`, v.duration)
	dst = appendJSONNum(dst, `,"octets_recus":`, v.bytesIn)
	dst = appendJSONNum(dst, `,"octets_emis":`, v.bytesOut)
	for i := rawHost; i <= rawRCode; i++ {
		dst = v.appendJSONText(dst, i)
	}
	dst = appendJSONNum(dst, `,"statut_http":`, v.status)
	for i := rawVerdict; i <= rawReference; i++ {
		dst = v.appendJSONText(dst, i)
	}
	dst = appendJSONNum(dst, `,"latence_amont_us":`, v.latency)
	dst = appendJSONNum(dst, `,"perdus":`, v.lost)
	return appendPrevLink(dst, prev)
}
