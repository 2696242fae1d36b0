//go:build !linux

package rules_test

import "time"

// threadClock falls back to the wall clock where no thread CPU clock is at
// hand.
func threadClock() time.Duration { return time.Duration(time.Now().UnixNano()) }
