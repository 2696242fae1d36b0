package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// PortSpan parses a port ("443") or an inclusive range ("8000-8100") of
// the policy, ports 1 to 65535.
func PortSpan(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = portNumber(a); err != nil {
		return 0, 0, fmt.Errorf("%q: %w", s, err)
	}
	hi = lo
	if isRange {
		if hi, err = portNumber(b); err != nil {
			return 0, 0, fmt.Errorf("%q: %w", s, err)
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("%q: range ends before it starts", s)
		}
	}
	return lo, hi, nil
}

func portNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("not a port number (1-65535)")
	}
	return uint16(n), nil
}

// PortAllowed reports whether port is in one of spans (already validated);
// empty spans mean def only.
func PortAllowed(spans []string, port, def uint16) bool {
	if len(spans) == 0 {
		return port == def
	}
	for _, s := range spans {
		if lo, hi, err := PortSpan(s); err == nil && lo <= port && port <= hi {
			return true
		}
	}
	return false
}
