package edge

import "context"

// DNSConfig is the dns section of the edge configuration.
type DNSConfig struct{}

// startDNS is filled in by the work on the dns component.
func (e *Edge) startDNS(ctx context.Context) error { return nil }
