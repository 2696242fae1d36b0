package edge

import "context"

// ControlPlaneConfig is the sync section of the edge configuration.
type ControlPlaneConfig struct{}

// startSync is filled in by the work on the sync component.
func (e *Edge) startSync(ctx context.Context) error { return nil }
