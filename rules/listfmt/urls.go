package listfmt

import (
	"io"
	"regexp"
	"strings"

	"vigie/rules/normalize"
)

// ParseURLs reads a squidGuard "urls" list: one URL prefix per line, usually
// without a scheme ("example.com/path"). Each becomes a URL entry whose Value
// is the canonical host followed by the canonical rest (normalize.URL), so a
// request matches when its own canonical form starts with the Value. Lines
// starting with '#' are comments; a '#' elsewhere starts a fragment, which
// normalize.URL drops.
func ParseURLs(r io.Reader, file string, emit func(Entry)) (Report, error) {
	rep := Report{File: file}
	err := eachLine(r, file, &rep, true, func(line []byte, n int) {
		s := string(line)
		host, rest, err := normalize.URL(s)
		if err != nil {
			rep.reject(n, invalid("URL", err))
			return
		}
		// Most lines are canonical already: keep the line's own string
		// rather than allocate the same bytes again.
		v := s
		if len(host)+len(rest) != len(s) || s[:len(host)] != host || s[len(host):] != rest {
			v = host + rest
		}
		rep.accept()
		emit(Entry{Kind: URL, Value: v, Line: n})
	})
	return rep, err
}

// ParseExpressions reads a squidGuard expression list: one regular
// expression per line, matched against the URL. squidGuard uses POSIX
// extended expressions; we match with Go's RE2, which takes nearly all of
// them as they are. A line RE2 refuses (a backreference, say) is a Problem
// naming the regexp error, so the operator sees which rule is not applied.
// Lines starting with '#' are comments: a URL never holds a '#' to match.
// Value is the pattern as written (trimmed of surrounding white space).
func ParseExpressions(r io.Reader, file string, emit func(Entry)) (Report, error) {
	rep := Report{File: file}
	err := eachLine(r, file, &rep, true, func(line []byte, n int) {
		s := string(line)
		if _, err := regexp.Compile(s); err != nil {
			rep.reject(n, "invalid regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			return
		}
		rep.accept()
		emit(Entry{Kind: Expression, Value: s, Line: n})
	})
	return rep, err
}
