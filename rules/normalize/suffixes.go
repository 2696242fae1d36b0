package normalize

import "strings"

// Suffixes calls fn with host, then with each parent domain up to the
// top-level domain ("a.b.example.fr", "b.example.fr", "example.fr", "fr"),
// stopping as soon as fn returns false. It is how a lookup finds the most
// specific list entry covering a name. An IP literal (or anything holding a
// ':', such as "host:port") is passed whole, once: its parts mean nothing.
//
// host should be canonical (the output of Host); Suffixes does not allocate.
func Suffixes(host string, fn func(suffix string) bool) {
	if host == "" || !fn(host) || isLiteral(host) {
		return
	}
	for {
		i := strings.IndexByte(host, '.')
		if i < 0 {
			return
		}
		host = host[i+1:]
		if host == "" || !fn(host) {
			return
		}
	}
}

// isLiteral reports whether a canonical host is an IP address (or carries a
// port): IPv6 holds ':', and an IPv4 address is the only canonical name whose
// last label is numeric (see checkName).
func isLiteral(host string) bool {
	if strings.IndexByte(host, ':') >= 0 {
		return true
	}
	return allDigits(host[strings.LastIndexByte(host, '.')+1:])
}
