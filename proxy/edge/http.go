package edge

import "context"

// HTTPConfig is the http section of the edge configuration.
type HTTPConfig struct{}

// startHTTP is filled in by the work on the http component.
func (e *Edge) startHTTP(ctx context.Context) error { return nil }
