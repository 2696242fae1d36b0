//go:build !linux

package domainset

import "testing"

// cpuClock is a no-op where per-thread CPU time is not available: the
// benchmarks then report wall-clock ns/op only.
type cpuClock struct{}

func startCPUClock() cpuClock      { return cpuClock{} }
func (cpuClock) report(*testing.B) {}
