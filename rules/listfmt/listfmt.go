// Package listfmt reads filtering lists: domain lists (plain, hosts file or
// the AdBlock subset DNS lists use), squidGuard URL and expression lists, and
// whole UT1/squidGuard category trees.
//
// Parsers stream: they hold one line at a time and hand each entry to an emit
// callback, so a 4.6-million-line list never sits in memory twice. A bad line
// never stops a parse; it is counted in the Report, and the first MaxProblems
// are kept with their line number so an operator can fix the list. Only I/O
// errors are returned as errors.
//
// Values are canonical (see package normalize), so the matcher compares bytes.
package listfmt

import (
	"errors"
	"fmt"
	"strconv"

	"vigie/rules/normalize"
)

// Kind says how an Entry matches.
type Kind uint8

// The zero Kind is invalid, so a forgotten field shows.
const (
	Domain     Kind = iota + 1 // the host and all its subdomains
	URL                        // a URL prefix: canonical host, then path and query
	Expression                 // a regular expression (Go RE2 syntax) on the URL
)

func (k Kind) String() string {
	switch k {
	case Domain:
		return "domain"
	case URL:
		return "url"
	case Expression:
		return "expression"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Entry is one rule read from a list.
type Entry struct {
	Kind Kind
	// Value is, for Domain, a canonical host (normalize.Host); for URL, the
	// canonical host followed by the canonical rest ("example.com/path",
	// the host may carry ":port", see normalize.URL); for Expression, the
	// pattern as written. It is a string of its own: callers may keep it.
	Value string
	Allow bool // an AdBlock "@@" exception: the entry unblocks
	// Strict marks expressions from squidGuard's
	// very_restrictive_expression file, which catch more innocent URLs
	// than those of the expressions file.
	Strict bool
	Line   int // 1-based line number in the file
}

// Problem is a line (or a file, when Line is 0) that was not used.
type Problem struct {
	File   string
	Line   int
	Reason string
}

// Error gives "file:line: reason", the form editors and CI logs link to; a
// problem with the whole file (Line 0) gives "file: reason".
func (p Problem) Error() string {
	if p.Line <= 0 {
		return p.File + ": " + p.Reason
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ": " + p.Reason
}

// MaxProblems bounds Report.Problems: a list that is wrong everywhere (a
// binary file, the wrong format) must not cost memory per line.
const MaxProblems = 100

// MaxLineLen is the longest line parsers read; a longer line is a Problem.
const MaxLineLen = 64 << 10

// Report sums up a parse.
type Report struct {
	File     string
	Accepted int       // entries emitted (a hosts line can carry several)
	Rejected int       // lines or names not used, including those past MaxProblems
	Problems []Problem // the first MaxProblems of them
}

func (r *Report) accept() { r.Accepted++ }

func (r *Report) reject(line int, reason string) {
	r.Rejected++
	if len(r.Problems) < MaxProblems {
		r.Problems = append(r.Problems, Problem{File: r.File, Line: line, Reason: reason})
	}
}

// Format is the syntax of a domain list.
type Format uint8

const (
	// FormatAuto decides per line, so lists mixing syntaxes (a hosts file
	// with bare domains, an AdBlock list with hosts lines) load whole.
	FormatAuto    Format = iota
	FormatPlain          // one domain per line, '#' comments
	FormatHosts          // hosts(5): "0.0.0.0 a.com b.com", '#' comments
	FormatAdBlock        // "||a.com^", "@@||a.com^", '!' comments
)

var formatNames = [...]string{"auto", "plain", "hosts", "adblock"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat is the inverse of Format.String, for configuration files.
func ParseFormat(s string) (Format, error) {
	for i, n := range formatNames {
		if s == n {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("listfmt: unknown list format %q (want auto, plain, hosts or adblock)", s)
}

// invalid turns an error from package normalize into a Problem reason that
// names the rejected value: the line number alone does not say which name of
// a hosts line was wrong.
func invalid(what string, err error) string {
	var e *normalize.Error
	if errors.As(err, &e) {
		in := e.Input
		if len(in) > 80 {
			return "invalid " + what + " " + strconv.Quote(in[:80]) + "...: " + e.Reason
		}
		return "invalid " + what + " " + strconv.Quote(in) + ": " + e.Reason
	}
	return "invalid " + what + ": " + err.Error()
}
