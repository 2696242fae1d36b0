package export

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	_ "time/tzdata" // Europe/Paris must resolve on any machine that verifies
	"unicode/utf8"

	"vigie/journal"
)

// Paris is the time zone of every time in an export.
var Paris = mustLoad("Europe/Paris")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// timeFormatter formats times as ISO 8601 with microseconds and the Paris
// offset ("2026-03-02T09:15:04.123456+01:00"). Formatting millions of
// times through time.Format dominates an export, so the date, hour and
// offset are cached per UTC hour (Paris offsets are whole hours and change
// on an hour boundary, so the local hour prefix is constant within one),
// and the text up to the microseconds per second.
type timeFormatter struct {
	hour   int64
	prefix []byte // "2026-03-02T09:"
	suffix []byte // "+01:00"
	ok     bool
	// The second's prefix, "2026-03-02T09:15:04.": a busy school
	// journals hundreds of records a second.
	sec       int64
	secPrefix []byte
	secOK     bool
	// The last time formatted: the CSV and JSON lines of a record
	// format the same time one after the other.
	lastUS  int64
	lastOut []byte
}

func (f *timeFormatter) append(dst []byte, t time.Time) []byte {
	return f.appendMicros(dst, t.UnixMicro())
}

// appendMicros is append for a time in microseconds since the epoch.
func (f *timeFormatter) appendMicros(dst []byte, us int64) []byte {
	if f.lastOut != nil && us == f.lastUS {
		return append(dst, f.lastOut...)
	}
	start := len(dst)
	dst = f.format(dst, us)
	f.lastUS, f.lastOut = us, append(f.lastOut[:0], dst[start:]...)
	return dst
}

func (f *timeFormatter) format(dst []byte, us int64) []byte {
	sec := us / 1e6
	frac := us % 1e6
	if frac < 0 {
		frac += 1e6
		sec--
	}
	h := sec / 3600
	if h < 0 || sec%3600 < 0 {
		return time.UnixMicro(us).In(Paris).AppendFormat(dst, "2006-01-02T15:04:05.000000-07:00")
	}
	if !f.ok || h != f.hour {
		f.secOK = false
		lt := time.Unix(h*3600, 0).In(Paris)
		_, off := lt.Zone()
		if off%3600 != 0 {
			return time.UnixMicro(us).In(Paris).AppendFormat(dst, "2006-01-02T15:04:05.000000-07:00")
		}
		f.hour, f.ok = h, true
		f.prefix = lt.AppendFormat(f.prefix[:0], "2006-01-02T15:")
		f.suffix = lt.AppendFormat(f.suffix[:0], "-07:00")
	}
	if !f.secOK || sec != f.sec {
		rem := sec % 3600
		f.secPrefix = append(f.secPrefix[:0], f.prefix...)
		f.secPrefix = append2(f.secPrefix, int(rem/60))
		f.secPrefix = append(f.secPrefix, ':')
		f.secPrefix = append2(f.secPrefix, int(rem%60))
		f.secPrefix = append(f.secPrefix, '.')
		f.sec, f.secOK = sec, true
	}
	dst = append(dst, f.secPrefix...)
	var b [6]byte
	for i := 5; i >= 0; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
	dst = append(dst, b[:]...)
	return append(dst, f.suffix...)
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

// parseTime reads a time written by timeFormatter (any RFC 3339 time).
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, err
	}
	return t.UTC(), nil
}

// CSV files: semicolon-separated (what French spreadsheets expect), with a
// UTF-8 byte order mark (without it Excel misreads the accents), fields
// quoted when they hold a separator, a quote or a line break.
const csvSep = ';'

var utf8BOM = []byte("\uFEFF")

// The CSV columns (ConnexionsHeader, NavigationHeader) and the two
// functions that write a row, appendCSV from a journal.Record and
// appendRawCSV from a payload's view, are generated from one list of
// columns in internal/csvgen.
//go:generate go run ./internal/csvgen -out csv_gen.go

func csvHeader(s journal.Stream) []byte {
	h := ConnexionsHeader
	if s == journal.Navigation {
		h = NavigationHeader
	}
	b := append([]byte(nil), utf8BOM...)
	for i, c := range h {
		if i > 0 {
			b = append(b, csvSep)
		}
		b = appendCSVField(b, c)
	}
	return append(b, '\r', '\n')
}

func appendCSVField(dst []byte, s string) []byte {
	if !needsQuote(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

func needsQuote(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case csvSep, '"', '\r', '\n':
			return true
		}
	}
	return false
}

func appendAddr(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return dst
	}
	return a.AppendTo(dst)
}

func appendPort(dst []byte, ap netip.AddrPort) []byte {
	if !ap.Addr().IsValid() {
		return dst
	}
	return strconv.AppendUint(dst, uint64(ap.Port()), 10)
}

func appendIntNZ(dst []byte, v int64) []byte {
	if v == 0 {
		return dst
	}
	return strconv.AppendInt(dst, v, 10)
}

// appendSeconds writes a duration in seconds with microseconds.
func appendSeconds(dst []byte, d time.Duration) []byte {
	return appendMicrosAsSeconds(dst, d.Microseconds())
}

// appendEnd formats a flow's end without disturbing the cache of record
// times (the JSON line formats the record's own time next).
func (f *timeFormatter) appendEnd(dst []byte, t time.Time) []byte {
	lastUS, lastOut := f.lastUS, f.lastOut
	f.lastOut = nil
	dst = f.format(dst, t.UnixMicro())
	f.lastUS, f.lastOut = lastUS, lastOut
	return dst
}

// JSON Lines: one object per record, with stable French field names
// (documented in journal/FIELDS.md). Every field of the record
// is there, so a verifier can rebuild its canonical encoding and check the
// hash chain; empty fields are left out. "chaine" indexes the manifest's
// chains; "lien_precedent" (the chain link before the record) starts a run
// of consecutive records, "lien" (the record's own link) ends one.
func (f *timeFormatter) appendJSON(dst []byte, r *journal.Record, chain int, prev, link *journal.Hash) []byte {
	dst = f.appendJSONOpen(dst, r, chain, prev)
	return appendJSONEnd(dst, link)
}

// appendJSONOpen is appendJSON up to the record's own link.
func (f *timeFormatter) appendJSONOpen(dst []byte, r *journal.Record, chain int, prev *journal.Hash) []byte {
	dst = append(dst, `{"sequence":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"chaine":`...)
	dst = strconv.AppendInt(dst, int64(chain), 10)
	dst = append(dst, `,"horodatage":"`...)
	dst = f.append(dst, r.Time)
	dst = append(dst, '"')
	str := func(k, v string) {
		if v != "" {
			dst = append(dst, `,"`...)
			dst = append(dst, k...)
			dst = append(dst, `":`...)
			dst = appendJSONString(dst, v)
		}
	}
	num := func(k string, v int64) {
		if v != 0 {
			dst = append(dst, `,"`...)
			dst = append(dst, k...)
			dst = append(dst, `":`...)
			dst = strconv.AppendInt(dst, v, 10)
		}
	}
	addr := func(k string, ap netip.AddrPort) {
		if ap.Addr().IsValid() {
			dst = append(dst, `,"`...)
			dst = append(dst, k...)
			dst = append(dst, `":"`...)
			dst = ap.Addr().AppendTo(dst)
			dst = append(dst, `","`...)
			dst = append(dst, k...)
			dst = append(dst, `_port":`...)
			dst = strconv.AppendUint(dst, uint64(ap.Port()), 10)
		}
	}
	str("uai", r.UAI)
	addr("client", r.Client)
	str("mac", r.MAC)
	str("utilisateur", r.User)
	addr("nat", r.NAT)
	str("protocole", r.Proto)
	addr("destination", r.Dest)
	num("duree_us", r.Duration.Microseconds())
	num("octets_recus", r.BytesIn)
	num("octets_emis", r.BytesOut)
	str("hote", r.Host)
	str("url", r.URL)
	str("methode", r.Method)
	str("type_dns", r.QType)
	str("reponse_dns", r.RCode)
	num("statut_http", int64(r.Status))
	str("verdict", r.Verdict)
	str("categorie", r.Category)
	str("reference_blocage", r.Reference)
	num("latence_amont_us", r.UpstreamLatency.Microseconds())
	num("perdus", r.Lost)
	str("zone", r.Zone)
	str("motif_rejet", r.Reason)
	str("lien_flux", r.Link)
	return appendPrevLink(dst, prev)
}

// appendPrevLink writes the "lien_precedent" member when prev is set.
func appendPrevLink(dst []byte, prev *journal.Hash) []byte {
	if prev == nil {
		return dst
	}
	dst = append(dst, `,"lien_precedent":"`...)
	dst = hex.AppendEncode(dst, prev[:])
	return append(dst, '"')
}

// appendJSONEnd closes a JSON line, with the record's "lien" when link is
// set: the export writes a line up to here as soon as it reads the record
// and closes it when the next record says whether a run ends there.
func appendJSONEnd(dst []byte, link *journal.Hash) []byte {
	if link != nil {
		dst = append(dst, `,"lien":"`...)
		dst = hex.AppendEncode(dst, link[:])
		dst = append(dst, '"')
	}
	return append(dst, '}', '\n')
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			// Canonical records are valid UTF-8: copy runes as they are.
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonRecord is a JSON Lines object as read back by Verify.
type jsonRecord struct {
	Sequence        uint64  `json:"sequence"`
	Chaine          *int    `json:"chaine"`
	Horodatage      string  `json:"horodatage"`
	UAI             string  `json:"uai"`
	Client          string  `json:"client"`
	ClientPort      uint16  `json:"client_port"`
	MAC             string  `json:"mac"`
	Utilisateur     string  `json:"utilisateur"`
	NAT             string  `json:"nat"`
	NATPort         uint16  `json:"nat_port"`
	Protocole       string  `json:"protocole"`
	Destination     string  `json:"destination"`
	DestinationPort uint16  `json:"destination_port"`
	DureeUS         int64   `json:"duree_us"`
	OctetsRecus     int64   `json:"octets_recus"`
	OctetsEmis      int64   `json:"octets_emis"`
	Hote            string  `json:"hote"`
	URL             string  `json:"url"`
	Methode         string  `json:"methode"`
	TypeDNS         string  `json:"type_dns"`
	ReponseDNS      string  `json:"reponse_dns"`
	StatutHTTP      int64   `json:"statut_http"`
	Verdict         string  `json:"verdict"`
	Categorie       string  `json:"categorie"`
	Reference       string  `json:"reference_blocage"`
	LatenceUS       int64   `json:"latence_amont_us"`
	Perdus          int64   `json:"perdus"`
	Zone            string  `json:"zone"`
	MotifRejet      string  `json:"motif_rejet"`
	LienFlux        string  `json:"lien_flux"`
	LienPrecedent   *string `json:"lien_precedent"`
	Lien            *string `json:"lien"`
}

// decodeJSONRecord parses one line strictly (unknown fields are errors).
func decodeJSONRecord(line []byte, s journal.Stream) (journal.Record, *jsonRecord, error) {
	var j jsonRecord
	var r journal.Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return r, nil, err
	}
	if dec.More() {
		return r, nil, errors.New("more than one object on the line")
	}
	if j.Chaine == nil {
		return r, nil, errors.New(`no "chaine"`)
	}
	t, err := parseTime(j.Horodatage)
	if err != nil {
		return r, nil, fmt.Errorf("horodatage: %w", err)
	}
	addr := func(name, a string, port uint16) (netip.AddrPort, error) {
		if a == "" {
			if port != 0 {
				return netip.AddrPort{}, fmt.Errorf("%s: port without address", name)
			}
			return netip.AddrPort{}, nil
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("%s: %w", name, err)
		}
		return netip.AddrPortFrom(ip, port), nil
	}
	r = journal.Record{Stream: s, Time: t, Seq: j.Sequence, UAI: j.UAI, MAC: j.MAC, User: j.Utilisateur, Proto: j.Protocole,
		Duration: time.Duration(j.DureeUS) * time.Microsecond, BytesIn: j.OctetsRecus, BytesOut: j.OctetsEmis,
		Host: j.Hote, URL: j.URL, Method: j.Methode, QType: j.TypeDNS, RCode: j.ReponseDNS, Status: int(j.StatutHTTP),
		Verdict: j.Verdict, Category: j.Categorie, Reference: j.Reference,
		UpstreamLatency: time.Duration(j.LatenceUS) * time.Microsecond, Lost: j.Perdus,
		Zone: j.Zone, Reason: j.MotifRejet, Link: j.LienFlux}
	if r.Client, err = addr("client", j.Client, j.ClientPort); err != nil {
		return r, nil, err
	}
	if r.NAT, err = addr("nat", j.NAT, j.NATPort); err != nil {
		return r, nil, err
	}
	if r.Dest, err = addr("destination", j.Destination, j.DestinationPort); err != nil {
		return r, nil, err
	}
	return r, &j, nil
}
