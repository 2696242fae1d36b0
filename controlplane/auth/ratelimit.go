package auth

import (
	"sync"
	"time"
)

// limiter counts failed logins per key (a login, a client address) over a
// sliding window. Its map is bounded: when full, the oldest windows go first,
// so a flood of made-up logins cannot grow memory without end.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	cap    int
	fails  map[string][]time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, cap: 10000, fails: map[string][]time.Time{}}
}

// blocked reports whether key has used its attempts, and when it may retry.
func (l *limiter) blocked(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.prune(key, now)
	if len(ts) < l.max {
		return false, 0
	}
	return true, ts[0].Add(l.window).Sub(now)
}

func (l *limiter) prune(key string, now time.Time) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = ts
	return ts
}

func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.fails[key]; !ok && len(l.fails) >= l.cap {
		l.evict(now)
	}
	ts := append(l.prune(key, now), now)
	if len(ts) > l.max {
		ts = ts[len(ts)-l.max:]
	}
	l.fails[key] = ts
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.fails, key)
	l.mu.Unlock()
}

// evict drops expired windows, then the oldest tenth if still full.
func (l *limiter) evict(now time.Time) {
	for k := range l.fails {
		l.prune(k, now)
	}
	if len(l.fails) < l.cap {
		return
	}
	n := l.cap / 10
	for k := range l.fails { // map order is random: a fair sample to drop
		if n == 0 {
			break
		}
		delete(l.fails, k)
		n--
	}
}
