package testlab

import "vigie/proxy/firewall"

// Counters reads the edge's firewall counters from the kernel.
func (l *Lab) Counters() (map[string]firewall.Count, error) {
	return firewall.ReadCounters(l.Edge.Fd())
}
