package auth

import (
	"context"
	"fmt"
	"time"
)

// limiter counts failed logins per key (a client address) over a sliding
// window: max failures within window, and the key waits until the oldest
// of them leaves it. The failures live in the shared failure log.
type limiter struct {
	kind   string
	max    int
	window time.Duration
}

func newLimiter(kind string, max int, window time.Duration) *limiter {
	return &limiter{kind: kind, max: max, window: window}
}

// wait returns how long key must still wait before an attempt (0: go on).
func (l *limiter) wait(ctx context.Context, log failureLog, key string, now time.Time) (time.Duration, error) {
	// Failures strictly within the window: one exactly window old is out.
	ts, err := failuresSince(ctx, log, l.kind+key, now.Add(-l.window+1))
	if err != nil {
		return 0, fmt.Errorf("auth: %s limit: %w", l.kind, err)
	}
	if len(ts) < l.max {
		return 0, nil
	}
	return max(ts[len(ts)-l.max].Add(l.window).Sub(now), 0), nil
}
