package edge

import "context"

// FirewallConfig is the firewall section of the edge configuration.
type FirewallConfig struct{}

// startFirewall is filled in by the work on the firewall component.
func (e *Edge) startFirewall(ctx context.Context) error { return nil }
