package listfmt

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"vigie/rules/normalize"
)

// Problem reasons shared by several parsers.
const (
	reasonTooLong  = "line too long (over 65536 bytes)"
	reasonCosmetic = "cosmetic rule, not applicable to DNS"
	reasonWildcard = "wildcards are not supported"
)

// ParseDomains reads a domain list in format f and emits one Domain entry per
// name. The error is only for I/O errors (and an unknown format); bad lines
// go to the Report and parsing goes on.
//
// In plain lists (and plain lines of FormatAuto), one leading dot is removed:
// squid and squidGuard write ".example.com" for "example.com and its
// subdomains", which is what every Domain entry means anyway.
//
// Hosts lines may carry several names; the loopback names every hosts file
// starts with (localhost, broadcasthost...) are skipped without a Problem.
//
// The AdBlock subset is the one DNS blocklists use: "||example.com^",
// optionally followed by "|" and by the modifiers that keep their meaning
// in DNS ($important, $all, $document), and "@@" exceptions, which give
// Allow entries. Bare domains are accepted too. Cosmetic rules, regular
// expression rules, address rules and wildcards are Problems: each would be
// either dropped or widened in DNS, and the operator should know.
func ParseDomains(r io.Reader, file string, f Format, emit func(Entry)) (Report, error) {
	rep := Report{File: file}
	if f > FormatAdBlock {
		return rep, fmt.Errorf("listfmt: parse %s: unknown format %v", file, f)
	}
	p := domainParser{rep: &rep, emit: emit}
	// The format is chosen once, outside the per-line call.
	parse := p.auto
	switch f {
	case FormatPlain:
		parse = p.plain
	case FormatHosts:
		parse = p.hosts
	case FormatAdBlock:
		parse = p.adblock
	}
	err := eachLine(r, file, &rep, false, parse)
	return rep, err
}

type domainParser struct {
	rep  *Report
	emit func(Entry)
}

// domain emits b as a Domain entry, or reports why it cannot.
func (p *domainParser) domain(b []byte, n int, allow bool) {
	if bytes.IndexByte(b, '*') >= 0 {
		p.rep.reject(n, reasonWildcard+" ("+strconv.Quote(string(b))+")")
		return
	}
	// The one allocation per entry: Host returns its argument when it is
	// already canonical, as list entries nearly always are.
	host, err := normalize.Host(string(b))
	if err != nil {
		p.rep.reject(n, invalid("domain", err))
		return
	}
	p.rep.accept()
	p.emit(Entry{Kind: Domain, Value: host, Allow: allow, Line: n})
}

func (p *domainParser) plain(line []byte, n int) {
	line = cutComment(line)
	switch {
	case len(line) == 0:
		return
	case hasSpace(line):
		p.rep.reject(n, "unexpected text after the domain (hosts format?)")
		return
	case line[0] == '.':
		line = line[1:]
	}
	p.domain(line, n, false)
}

func (p *domainParser) hosts(line []byte, n int) {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = trimSpace(line[:i]) // hosts(5): '#' starts a comment anywhere
	}
	if len(line) == 0 {
		return
	}
	addr, names := nextField(line)
	if !isAddress(addr) {
		p.rep.reject(n, "hosts line does not start with an IP address")
		return
	}
	if len(names) == 0 {
		p.rep.reject(n, "hosts line without a name")
		return
	}
	for len(names) > 0 {
		var name []byte
		name, names = nextField(names)
		if !isLoopbackName(name) {
			p.domain(name, n, false)
		}
	}
}

// isAddress reports whether b is an IP address, checking the usual sinkholes
// first to save parsing them on every line.
func isAddress(b []byte) bool {
	switch string(b) {
	case "0.0.0.0", "127.0.0.1", "::", "::1":
		return true
	}
	_, err := netip.ParseAddr(string(b))
	return err == nil
}

// isLoopbackName reports the names hosts files map for the machine itself;
// they are not meant to be blocked.
func isLoopbackName(b []byte) bool {
	switch string(b) {
	case "localhost", "localhost.localdomain", "local", "broadcasthost", "0.0.0.0",
		"ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
		"ip6-allnodes", "ip6-allrouters", "ip6-allhosts":
		return true
	}
	return false
}

// cosmeticMarkers separate a page selector from its domains in AdBlock
// element hiding, scriptlet and CSS injection rules.
var cosmeticMarkers = [][]byte{
	[]byte("##"), []byte("#@#"), []byte("#?#"), []byte("#@?#"),
	[]byte("#$#"), []byte("#@$#"), []byte("#%#"), []byte("#@%#"),
}

// cosmeticAt returns the length of the cosmetic marker at b[i:], or 0.
func cosmeticAt(b []byte, i int) int {
	for _, m := range cosmeticMarkers {
		if bytes.HasPrefix(b[i:], m) {
			return len(m)
		}
	}
	return 0
}

func isCosmetic(b []byte) bool {
	for i := bytes.IndexByte(b, '#'); i >= 0 && i < len(b); i++ {
		if b[i] == '#' && cosmeticAt(b, i) > 0 {
			return true
		}
	}
	return false
}

func isHeader(line []byte) bool {
	return line[0] == '[' && line[len(line)-1] == ']'
}

func (p *domainParser) adblock(line []byte, n int) {
	switch {
	case line[0] == '!' || isHeader(line):
		return
	case line[0] == '#':
		// AdGuard lists also use '#' comments. "##.ad" is a cosmetic
		// rule, "## Section" and "####" are comments.
		if m := cosmeticAt(line, 0); m > 0 && m < len(line) && line[m] != '#' && !isSpace(line[m]) {
			p.rep.reject(n, reasonCosmetic)
		}
		return
	case isCosmetic(line):
		p.rep.reject(n, reasonCosmetic)
		return
	}
	p.rule(line, n)
}

// harmlessModifiers are those that do not narrow a rule, so applying it to
// every DNS query keeps its meaning. Others restrict a rule to some clients,
// query types or request types, or rewrite answers: ignoring them would
// block more than the list author meant.
var harmlessModifiers = map[string]bool{
	"important": true,
	"all":       true,
	"document":  true,
	"doc":       true,
}

// rule parses one AdBlock network rule.
func (p *domainParser) rule(b []byte, n int) {
	allow := false
	if bytes.HasPrefix(b, []byte("@@")) {
		allow, b = true, b[2:]
	}
	if len(b) > 1 && b[0] == '/' {
		p.rep.reject(n, "regular expression rules are not supported")
		return
	}
	if i := bytes.IndexByte(b, '$'); i >= 0 {
		mods := b[i+1:]
		b = b[:i]
		for len(mods) > 0 {
			var mod []byte
			if j := bytes.IndexByte(mods, ','); j >= 0 {
				mod, mods = mods[:j], mods[j+1:]
			} else {
				mod, mods = mods, nil
			}
			name := mod
			if j := bytes.IndexByte(mod, '='); j >= 0 {
				name = mod[:j]
			}
			if !harmlessModifiers[string(trimSpace(name))] {
				p.rep.reject(n, "unsupported modifier "+strconv.Quote(string(trimSpace(name))))
				return
			}
		}
	}
	switch {
	case bytes.HasPrefix(b, []byte("||")):
		b = b[2:]
		switch {
		case bytes.HasSuffix(b, []byte("^|")):
			b = b[:len(b)-2]
		case bytes.HasSuffix(b, []byte("^")):
			b = b[:len(b)-1]
		default:
			// Without '^', "||ads" also matches "adserver.com".
			p.rep.reject(n, "rule without '^' after the domain matches more than a domain")
			return
		}
	case len(b) > 0 && b[0] == '|':
		p.rep.reject(n, "address rules ('|') are not supported")
		return
	default:
		switch {
		case bytes.HasSuffix(b, []byte("^|")):
			b = b[:len(b)-2]
		case bytes.HasSuffix(b, []byte("^")):
			b = b[:len(b)-1]
		}
	}
	if i := bytes.IndexByte(b, '/'); i >= 0 {
		p.rep.reject(n, "rule with a path, not applicable to DNS")
		return
	}
	if len(b) == 0 {
		p.rep.reject(n, "rule without a domain")
		return
	}
	p.domain(b, n, allow)
}

// auto sniffs the syntax of one line.
func (p *domainParser) auto(line []byte, n int) {
	switch c := line[0]; {
	case c == '!' || isHeader(line):
		return
	case c == '#':
		// In a hosts file "##..." is a comment; we cannot tell it from
		// a generic cosmetic rule and skipping is right for both.
		return
	case isCosmetic(line):
		p.rep.reject(n, reasonCosmetic)
	case c == '|' || c == '@' || c == '/' || bytes.IndexByte(line, '^') >= 0 || bytes.IndexByte(line, '$') >= 0:
		p.rule(line, n)
	default:
		if first, rest := nextField(cutComment(line)); len(rest) > 0 && isAddress(first) {
			p.hosts(line, n)
			return
		}
		p.plain(line, n)
	}
}
