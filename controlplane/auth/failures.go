package auth

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"vigie/controlplane/store"
)

// failureLog is where failed sign-ins are counted: the store's table on
// both backends, so that every replica on one database counts the same
// attempts against the same limits (an attacker gains nothing by spreading
// attempts over the replicas behind the front), or a bounded map in memory
// for a store without one.
type failureLog = store.LoginFailures

// limit is a throttle or a limiter: how long a key must still wait
// before an attempt (0: go on), from its failures in the log.
type limit interface {
	wait(ctx context.Context, log failureLog, key string, now time.Time) (time.Duration, error)
}

// failureHistory is how far back a back-off replays failures: a chain of
// failures is at its longest wait well within it, and PruneLoginFailures
// drops what is older.
const failureHistory = 24 * time.Hour

// maxFailurePages bounds the pages failuresSince reads for one key.
const maxFailurePages = 10

// failuresSince returns key's failures at or after since, oldest first.
func failuresSince(ctx context.Context, log failureLog, key string, since time.Time) ([]time.Time, error) {
	const page = 1000
	var out []time.Time
	for range maxFailurePages {
		ts, err := log.LoginFailures(ctx, key, since, page)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
		if len(ts) < page {
			break
		}
		since = ts[len(ts)-1].Add(time.Nanosecond)
	}
	return out, nil
}

// The failure log's keys: one login from one address, a login across
// addresses, an address across logins. The login is quoted, so that no
// byte of it (a NUL, which PostgreSQL's text refuses, a separator) makes
// two keys one.
const (
	pairKind  = "pair:"
	loginKind = "login:"
	addrKind  = "addr:"
)

func pairKey(login, addr string) string { return strconv.Quote(login) + "@" + addr }
func loginKey(login string) string      { return strconv.Quote(login) }

// memFailures is the failure log in memory, for a store without one. Its
// map is bounded: when full, a random tenth of the keys goes, so a flood of
// made-up logins cannot grow memory without end.
type memFailures struct {
	mu  sync.Mutex
	cap int
	m   map[string][]time.Time
}

func newMemFailures() *memFailures { return &memFailures{cap: 10000, m: map[string][]time.Time{}} }

func (f *memFailures) AddLoginFailure(_ context.Context, key string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[key]; !ok && len(f.m) >= f.cap {
		n := f.cap / 10
		for k := range f.m { // map order is random: a fair sample to drop
			if n == 0 {
				break
			}
			delete(f.m, k)
			n--
		}
	}
	ts := append(f.m[key], at)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	f.m[key] = ts
	return nil
}

func (f *memFailures) LoginFailures(_ context.Context, key string, since time.Time, limit int) ([]time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Time
	for _, t := range f.m[key] {
		if !t.Before(since) && len(out) < limit {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *memFailures) ClearLoginFailures(_ context.Context, key string) error {
	f.mu.Lock()
	delete(f.m, key)
	f.mu.Unlock()
	return nil
}

func (f *memFailures) PruneLoginFailures(_ context.Context, before time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, ts := range f.m {
		i := 0
		for i < len(ts) && ts[i].Before(before) {
			i++
		}
		n += i
		if i == len(ts) {
			delete(f.m, k)
		} else {
			f.m[k] = ts[i:]
		}
	}
	return n, nil
}
