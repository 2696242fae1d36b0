package ui

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"vigie/controlplane/api"
	"vigie/rules/normalize"
)

// Limits of one paste: far above a real exception list, far below what
// would hold the server (the form body is bounded at 8 MiB first).
const (
	maxPasteLines = 200000
	maxLineBytes  = 4096
)

// badLine is one pasted line that cannot be added, with why.
type badLine struct {
	Line   int
	Text   string
	Reason string
}

// pasted is a paste split into canonical entries.
type pasted struct {
	Domains []string
	URLs    []string
	Bad     []badLine
	// Lines counts the non-empty, non-comment lines read.
	Lines int
}

// parseEntries reads domains and URLs pasted one per line, in the forms
// people copy from elsewhere: a bare domain, a URL, "*.domain", a hosts
// file line ("0.0.0.0 domain"), an AdBlock rule ("||domain^"), with
// "#" comments. Each entry is canonicalized as the rules engine will
// (case, trailing dot, IDN to punycode); every other line is reported
// with its number and the reason, never silently dropped.
func parseEntries(text string) pasted {
	var p pasted
	seenD, seenU := map[string]bool{}, map[string]bool{}
	n := 0
	for rest := text; rest != ""; {
		var line string
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, ""
		}
		n++
		raw := strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if raw == "" || raw[0] == '#' || raw[0] == '!' {
			continue
		}
		p.Lines++
		if p.Lines > maxPasteLines {
			p.Bad = append(p.Bad, badLine{Line: n, Text: shorten(raw, 80), Reason: T("parse.toomany", formatInt(maxPasteLines))})
			break
		}
		bad := func(key string, args ...any) {
			p.Bad = append(p.Bad, badLine{Line: n, Text: shorten(strings.ToValidUTF8(raw, "�"), 80), Reason: T(key, args...)})
		}
		if len(raw) > maxLineBytes {
			bad("parse.toolong", maxLineBytes)
			continue
		}
		if !utf8.ValidString(raw) {
			bad("parse.encoding")
			continue
		}
		kind, value, err := parseEntry(raw)
		switch {
		case errors.Is(err, errSeveral):
			bad("parse.several")
		case errors.Is(err, errTopLevel):
			bad("parse.toplevel")
		case err != nil:
			bad("parse.invalid."+kind, reason(err))
		case kind == "url":
			if !seenU[value] {
				seenU[value] = true
				p.URLs = append(p.URLs, value)
			}
		default:
			if !seenD[value] {
				seenD[value] = true
				p.Domains = append(p.Domains, value)
			}
		}
	}
	slices.Sort(p.Domains)
	slices.Sort(p.URLs)
	return p
}

var (
	errSeveral  = errors.New("several values on one line")
	errTopLevel = errors.New("a top-level domain")
)

// parseEntry reads one trimmed, non-comment line: kind is "domain" or
// "url" (even on error, to word the message).
func parseEntry(raw string) (kind, value string, err error) {
	s := raw
	// An inline comment: "exemple.fr  # demandé par le collège".
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	} else if i := strings.Index(s, "\t#"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	fields := strings.Fields(s)
	// A hosts file line: the address first, then the name.
	if len(fields) == 2 {
		if _, err := netip.ParseAddr(fields[0]); err == nil {
			fields = fields[1:]
		}
	}
	if len(fields) != 1 {
		return "domain", "", errSeveral
	}
	s = fields[0]
	// AdBlock-style "||exemple.fr^", with its options after '$'.
	if strings.HasPrefix(s, "||") {
		s = strings.TrimPrefix(s, "||")
		if i := strings.IndexByte(s, '$'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSuffix(s, "^")
	}
	// A domain entry already covers every subdomain.
	s = strings.TrimPrefix(s, "*.")
	if strings.Contains(s, "://") || strings.Contains(s, "/") {
		host, rest, err := normalize.URL(s)
		if err != nil {
			return "url", "", err
		}
		// A whole site ("https://exemple.fr/") is its domain.
		if rest == "" || rest == "/" {
			return checkDomain(host)
		}
		return "url", host + rest, nil
	}
	h, err := normalize.Host(s)
	if err != nil {
		return "domain", "", err
	}
	return checkDomain(h)
}

// checkDomain refuses a single label: "fr" in a block list would block a
// whole country, "lan" every local name.
func checkDomain(h string) (string, string, error) {
	if !strings.Contains(h, ".") && !strings.Contains(h, ":") {
		return "domain", "", errTopLevel
	}
	return "domain", h, nil
}

// reason is the short reason of a normalization error.
func reason(err error) string {
	var ne *normalize.Error
	if errors.As(err, &ne) {
		return ne.Reason
	}
	return err.Error()
}

// lookupHost reads what a person typed to find or test: a domain or a URL.
// It returns the canonical host, and the URL when one was given. The API
// reads the Tester's address with the same function.
func lookupHost(in string) (host, fullURL string, err error) { return api.ParseAddress(in) }
