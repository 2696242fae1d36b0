package edge

import "context"

// MetricsConfig is the metrics section of the edge configuration.
type MetricsConfig struct{}

// startMetrics is filled in by the work on the metrics component.
func (e *Edge) startMetrics(ctx context.Context) error { return nil }
