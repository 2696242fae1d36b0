package auth

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// throttle slows a key down after its free failures instead of locking it:
// each further failure doubles the wait before the next attempt is even
// checked (base, 2×base, … up to max). A key that stays quiet for window
// after its wait starts afresh. Unlike a lockout, the wait is short after a
// few mistakes and an attacker gains nothing by hammering: attempts made
// during the wait are refused before any password hashing. The failures
// live in the shared failure log; the state is replayed from them.
type throttle struct {
	kind      string
	free      int
	base, max time.Duration
	window    time.Duration
}

type throttleState struct {
	fails int
	last  time.Time
}

func newThrottle(kind string, free int, base, max, window time.Duration) *throttle {
	return &throttle{kind: kind, free: free, base: base, max: max, window: window}
}

// delay is the wait after fails failures.
func (t *throttle) delay(fails int) time.Duration {
	if fails < t.free {
		return 0
	}
	d := t.base
	for i := t.free; i < fails && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

// quiet reports whether s has been left alone for a window after its wait.
func (t *throttle) quiet(s throttleState, now time.Time) bool {
	return now.Sub(s.last) >= t.delay(s.fails)+t.window
}

// replay is the state after failures ts (oldest first): a failure after a
// quiet spell starts afresh.
func (t *throttle) replay(ts []time.Time) throttleState {
	var s throttleState
	for _, at := range ts {
		if s.fails > 0 && t.quiet(s, at) {
			s = throttleState{}
		}
		s.fails++
		s.last = at
	}
	return s
}

// wait returns how long key must still wait before an attempt (0: go on).
func (t *throttle) wait(ctx context.Context, log failureLog, key string, now time.Time) (time.Duration, error) {
	ts, err := failuresSince(ctx, log, t.kind+key, now.Add(-failureHistory))
	if err != nil {
		return 0, fmt.Errorf("auth: %s back-off: %w", t.kind, err)
	}
	s := t.replay(ts)
	if s.fails == 0 || t.quiet(s, now) {
		return 0, nil
	}
	return max(s.last.Add(t.delay(s.fails)).Sub(now), 0), nil
}

// knownAddrs remembers, per login, the client addresses it recently signed
// in from. The cross-address throttle of a login does not apply to them:
// a distributed attack on a login cannot keep its owner out from where
// they usually work.
type knownAddrs struct {
	mu  sync.Mutex
	ttl time.Duration
	cap int
	m   map[string]map[string]time.Time
}

const addrsPerLogin = 8

func (k *knownAddrs) add(login, addr string, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]map[string]time.Time{}
	}
	as, ok := k.m[login]
	if !ok {
		if len(k.m) >= k.cap {
			for l := range k.m { // map order is random: a fair sample to drop
				delete(k.m, l)
				break
			}
		}
		as = map[string]time.Time{}
		k.m[login] = as
	}
	if _, ok := as[addr]; !ok && len(as) >= addrsPerLogin {
		oldest, at := "", now
		for a, t := range as {
			if t.Before(at) {
				oldest, at = a, t
			}
		}
		delete(as, oldest)
	}
	as[addr] = now
}

func (k *knownAddrs) has(login, addr string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.m[login][addr]
	return ok && now.Sub(t) < k.ttl
}

// addrKey is the limiter key of a client address: the address without its
// port (every connection has a new one), and for IPv6 the /64, since one
// host commonly holds a whole /64.
func addrKey(remote string) string {
	a, err := netip.ParseAddr(remote)
	if err != nil {
		ap, perr := netip.ParseAddrPort(remote)
		if perr != nil {
			return remote
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// hostOf is remote without its port, as the audit log names a client.
func hostOf(remote string) string {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().String()
	}
	return remote
}
