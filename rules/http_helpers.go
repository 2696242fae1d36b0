package rules

import (
	"vigie/rules/domainset"
	"vigie/rules/normalize"
)

// ListedIn reports whether host, or one of its parent domains, is listed in
// a list of one of the given categories, whatever any profile does with
// those categories. The HTTP proxy uses it to keep banking and health sites
// out of TLS interception even for profiles that neither block nor allow
// them. It is not on the per-request path of spliced traffic.
func (rs *Ruleset) ListedIn(host string, categories ...string) bool {
	if len(categories) == 0 {
		return false
	}
	h, err := normalize.Host(stripPort(host))
	if err != nil {
		return false
	}
	found := false
	normalize.Suffixes(h, func(suffix string) bool {
		idx, ok := rs.domains.Lookup(domainset.Fingerprint(suffix))
		if !ok {
			return true
		}
		set := rs.setOf(idx)
		for i := range rs.meta.Lists {
			if set[i/64]>>(i%64)&1 == 0 {
				continue
			}
			for _, c := range categories {
				if rs.meta.Lists[i].Category == c {
					found = true
					return false
				}
			}
		}
		return true
	})
	return found
}

// StripPort returns the host of a "host:port" (an HTTP Host header, a
// CONNECT target) without the port and without an IPv6 literal's
// brackets; a bare host or IPv6 address comes back as it is. The proxy
// calls it for the same inputs Decide sees, so both read a Host the same
// way.
func StripPort(hostport string) string { return stripPort(hostport) }
