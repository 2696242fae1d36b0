package normalize

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// DNS limits (RFC 1035 2.3.4), counted on the name without its trailing dot.
const (
	maxLabel = 63
	maxName  = 253
)

// profile converts Unicode names the way browsers look them up (UTS #46
// nontransitional mapping, so "ß" stays distinct), but without the STD3 and
// hyphen rules: real lists hold "_video-bagarre.com" and "r3---sn-x.example",
// and a name we refuse is a name we cannot block. We check DNS lengths
// ourselves so that every path reports the same reasons.
var profile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
	idna.VerifyDNSLength(false),
)

// Byte classes, as bits, for the single scan that picks a path through Host.
const (
	cCanon   = 1 << iota // a-z 0-9 - _ .
	cUpper               // A-Z: valid once lowercased
	cIP                  // ':' '[' ']': only in IPv6 literals
	cUnicode             // >= 0x80: needs IDNA
	cBad                 // never valid in a host
)

var class = func() (t [256]uint8) {
	for i := range t {
		t[i] = cBad
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cCanon
		t[c-'a'+'A'] = cUpper
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = cCanon
	}
	t['-'], t['_'], t['.'] = cCanon, cCanon, cCanon
	t[':'], t['['], t[']'] = cIP, cIP, cIP
	for c := 0x80; c < 0x100; c++ {
		t[c] = cUnicode
	}
	return t
}()

// Host returns the canonical form of a DNS name or IP literal: lowercase, one
// trailing dot removed, Unicode labels converted to punycode A-labels, IPv6
// brackets removed and IP addresses in netip's canonical text. Besides
// letters, digits and '-', labels may hold '_' because real lists do.
//
// Labels that are already A-labels ("xn--...") are kept as they are, not
// decoded and checked: the DNS treats them as opaque bytes and checking them
// would cost allocations on the per-query path.
//
// A name that is already canonical is returned as is, without allocating.
func Host(s string) (string, error) {
	name := s
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	// One pass classifies the bytes and checks the label lengths, so that
	// the usual case (a canonical name, what resolvers and browsers send)
	// costs a single scan; anything unusual takes the full checks below.
	var seen uint8
	start, labelsOK := 0, true
	for i := 0; i < len(name); i++ {
		c := name[i]
		seen |= class[c]
		if c == '.' {
			if n := i - start; n == 0 || n > maxLabel {
				labelsOK = false
			}
			start = i + 1
		}
	}
	if seen == cCanon && labelsOK && len(name) > 0 && len(name) <= maxName {
		if n := len(name) - start; n > 0 && n <= maxLabel {
			if c := name[len(name)-1]; c < '0' || c > '9' {
				// The last label does not end in a digit, so it is not
				// numeric: not an IPv4 address, nothing more to check.
				return name, nil
			}
		}
	}
	switch {
	case seen == cCanon:
		return checkName(s, name)
	case seen&cBad != 0:
		for i := 0; i < len(name); i++ {
			if class[name[i]] == cBad {
				return "", hostError(s, badChar(name[i]))
			}
		}
	case seen&cUnicode != 0:
		return unicodeHost(s, name)
	case seen&cIP != 0:
		return ipv6Host(s, name)
	}
	return checkName(s, strings.ToLower(name))
}

// unicodeHost converts a name holding non-ASCII bytes, then puts the result
// through the same ASCII checks as any other name, so the output of Host is
// always a fixed point of Host.
func unicodeHost(orig, name string) (string, error) {
	// idna would turn every invalid byte into U+FFFD, making distinct
	// garbage names equal.
	if !utf8.ValidString(name) {
		return "", hostError(orig, "invalid UTF-8")
	}
	a, err := profile.ToASCII(name)
	if err != nil {
		return "", hostError(orig, "IDNA: "+err.Error())
	}
	var upper bool
	for i := 0; i < len(a); i++ {
		switch class[a[i]] {
		case cCanon:
		case cUpper:
			upper = true
		default:
			// The mapping can yield ASCII that the scan in Host would
			// have refused (U+3000 becomes a space, U+FF1A a colon).
			return "", hostError(orig, badChar(a[i]))
		}
	}
	if upper {
		a = strings.ToLower(a)
	}
	return checkName(orig, a)
}

// checkName validates a lowercase ASCII name made of [a-z0-9._-] only.
func checkName(orig, name string) (string, error) {
	if name == "" {
		return "", hostError(orig, "empty name")
	}
	if len(name) > maxName {
		return "", hostError(orig, "name too long ("+strconv.Itoa(len(name))+" bytes)")
	}
	start, last := 0, 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			continue
		}
		switch n := i - start; {
		case n == 0:
			return "", hostError(orig, "empty label")
		case n > maxLabel:
			return "", hostError(orig, "label too long ("+strconv.Itoa(n)+" bytes)")
		}
		last, start = start, i+1
	}
	// No top-level domain is numeric, so a numeric last label means the
	// name is meant as an IPv4 address. netip refuses the forms browsers
	// would read in unexpected ways ("010.1.1.1", "2130706433"), which
	// would otherwise slip past a block on the canonical address.
	if allDigits(name[last:]) {
		addr, err := netip.ParseAddr(name)
		if err != nil || !addr.Is4() {
			return "", hostError(orig, "invalid IPv4 address")
		}
		// netip accepts only the canonical dotted quad, so name is it.
	}
	return name, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ipv6Host handles names holding ':' or brackets, which only IPv6 literals
// may contain.
func ipv6Host(orig, name string) (string, error) {
	inner := name
	if strings.HasPrefix(name, "[") {
		if !strings.HasSuffix(name, "]") {
			return "", hostError(orig, "unbalanced '['")
		}
		inner = name[1 : len(name)-1]
	}
	if strings.ContainsAny(inner, "[]") {
		return "", hostError(orig, "misplaced bracket")
	}
	if !strings.Contains(inner, ":") {
		// "[1.2.3.4]" is not an IP-literal (RFC 3986 3.2.2).
		return "", hostError(orig, "brackets around a non-IPv6 name")
	}
	addr, err := netip.ParseAddr(inner)
	switch {
	case err != nil:
		if inner == name {
			// Most often "host:port" given where a host was expected.
			return "", hostError(orig, "invalid character ':'")
		}
		return "", hostError(orig, "invalid IPv6 address")
	case addr.Zone() != "":
		return "", hostError(orig, "IPv6 zone not allowed")
	}
	out := addr.String()
	if out == inner {
		return inner, nil
	}
	return out, nil
}
