package normalize

import (
	"strconv"
	"strings"
)

// URL splits a URL into its canonical host and the rest (path and query). It
// takes both squidGuard "urls" list lines ("example.com/path/x") and request
// URLs ("http://User@Example.COM:80/a/./b/../c?q=1#frag"), and gives the two
// the same form, so that a list entry is a byte prefix of the requests it
// covers, as in squidGuard:
//
//   - any "scheme://" (or a leading "//"), the userinfo and the fragment are
//     dropped; "www." is not special;
//   - host is Host() of the authority; ports 80 and 443 are dropped whatever
//     the scheme, any other port is kept as "host:port" ("[v6]:port");
//   - rest starts with "/" (an empty path becomes "/") and is lowercased,
//     since squidGuard lowercases URLs before matching;
//   - percent escapes of unreserved characters (ALPHA DIGIT - . _ ~) are
//     decoded, other escapes are kept with lowercase hex digits (the rest is
//     lowercased as a whole), a '%' that starts no escape becomes "%25" and
//     bytes above 0x7f are escaped, so that list and request agree however
//     each was written;
//   - in the path only, '\' becomes '/' (as browsers do for http) and dot
//     segments are removed (RFC 3986 5.2.4); the query is left alone.
//
// Control characters and spaces anywhere are rejected: a request never holds
// them unescaped and a list line holding them is corrupt.
func URL(raw string) (host, rest string, err error) {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f {
			return "", "", urlError(raw, badChar(c))
		}
	}
	s := raw
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		s = s[i+3:]
	} else if strings.HasPrefix(s, "//") {
		s = s[2:]
	}

	// The authority ends where browsers end it for http: at '/', '?' or
	// '\'. Stopping only at '/' would let "evil.com\@good.com" name
	// good.com here and evil.com in the browser.
	end := strings.IndexAny(s, `/?\`)
	if end < 0 {
		end = len(s)
	}
	authority, pathQuery := s[:end], s[end:]
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}

	hostPart, port, err := splitPort(raw, authority)
	if err != nil {
		return "", "", err
	}
	host, err = Host(hostPart)
	if err != nil {
		var reason string
		if e, ok := err.(*Error); ok {
			reason = e.Reason
		} else {
			reason = err.Error()
		}
		return "", "", urlError(raw, "host: "+reason)
	}
	if port != 0 {
		p := strconv.Itoa(port)
		if strings.IndexByte(host, ':') >= 0 {
			host = "[" + host + "]:" + p
		} else {
			host = host + ":" + p
		}
	}
	return host, canonicalRest(pathQuery), nil
}

// isScheme reports whether s is an RFC 3986 scheme: ALPHA *( ALPHA / DIGIT /
// "+" / "-" / "." ).
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// splitPort separates "host:port" and "[v6]:port". An unbracketed authority
// with several colons is taken as a bare IPv6 address, as list lines write
// them. It returns port 0 when there is no port or it is a default one.
func splitPort(raw, authority string) (host string, port int, err error) {
	var p string
	switch {
	case strings.HasPrefix(authority, "["):
		i := strings.IndexByte(authority, ']')
		if i < 0 {
			return "", 0, urlError(raw, "host: unbalanced '['")
		}
		host, after := authority[:i+1], authority[i+1:]
		if after == "" {
			return host, 0, nil
		}
		if after[0] != ':' {
			return "", 0, urlError(raw, "unexpected text after ']'")
		}
		authority, p = host, after[1:]
	case strings.Count(authority, ":") > 1:
		return authority, 0, nil
	default:
		i := strings.IndexByte(authority, ':')
		if i < 0 {
			return authority, 0, nil
		}
		authority, p = authority[:i], authority[i+1:]
	}
	if p == "" { // "host:" means the default port (RFC 3986 3.2.3)
		return authority, 0, nil
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return "", 0, urlError(raw, "invalid port")
		}
		if n = n*10 + int(p[i]-'0'); n > 65535 {
			return "", 0, urlError(raw, "port out of range")
		}
	}
	switch n {
	case 0:
		return "", 0, urlError(raw, "port out of range")
	case 80, 443:
		n = 0
	}
	return authority, n, nil
}

// canonicalRest normalises "/path?query" (either part may be empty). A rest
// that is already canonical, as list lines mostly are, is returned as is.
func canonicalRest(pq string) string {
	path, query := pq, ""
	if i := strings.IndexByte(pq, '?'); i >= 0 {
		path, query = pq[:i], pq[i:]
	}
	if path != "" && !needsWork(pq) && !hasDotSegment(path) {
		return pq
	}
	var buf []byte
	if path == "" {
		buf = append(make([]byte, 0, 1+len(query)), '/')
	} else {
		buf = removeDotSegments(appendCanonical(make([]byte, 0, len(path)), path, true))
	}
	buf = appendCanonical(buf, query, false)
	return string(buf)
}

// needsWork reports whether s holds bytes that appendCanonical would change.
func needsWork(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || c == '%' || c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}

// hasDotSegment reports whether path has a "." or ".." segment.
func hasDotSegment(path string) bool {
	for len(path) > 0 {
		i := strings.IndexByte(path, '/')
		seg := path
		if i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendCanonical appends s lowercased with its percent escapes normalised
// (see URL). In a path, '\' becomes '/'.
func appendCanonical(dst []byte, s string, isPath bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				v := unhex(s[i+1])<<4 | unhex(s[i+2])
				i += 2
				if isUnreserved(v) {
					dst = append(dst, lower(v))
				} else {
					dst = append(dst, '%', hexDigits[v>>4], hexDigits[v&15])
				}
			} else {
				// Escaping the stray '%' keeps the output a fixed
				// point: "%4%31" would otherwise become "%41".
				dst = append(dst, "%25"...)
			}
		case c >= 0x80:
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		case c == '\\' && isPath:
			dst = append(dst, '/')
		default:
			dst = append(dst, lower(c))
		}
	}
	return dst
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// isUnreserved reports RFC 3986 unreserved characters, the only ones whose
// escaped and plain forms are equivalent in every URL.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

var slash = []byte{'/'}

// removeDotSegments is RFC 3986 5.2.4. The result has spare capacity for the
// query that canonicalRest appends.
func removeDotSegments(in []byte) []byte {
	out := make([]byte, 0, len(in)+16)
	for len(in) > 0 {
		switch {
		case hasPrefix(in, "/./"):
			in = in[2:]
		case string(in) == "/.":
			in = slash
		case hasPrefix(in, "/../"):
			in = in[3:]
			out = popSegment(out)
		case string(in) == "/..":
			in = slash
			out = popSegment(out)
		case hasPrefix(in, "../"):
			in = in[3:]
		case hasPrefix(in, "./"):
			in = in[2:]
		case string(in) == "." || string(in) == "..":
			in = nil
		default:
			// Move the first segment, with its leading '/', to out.
			j := 1
			if in[0] != '/' {
				j = 0
			}
			for j < len(in) && in[j] != '/' {
				j++
			}
			out = append(out, in[:j]...)
			in = in[j:]
		}
	}
	return out
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

func popSegment(out []byte) []byte {
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == '/' {
			return out[:i]
		}
	}
	return out[:0]
}
