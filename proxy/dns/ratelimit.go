package dns

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// limiter bounds the queries per second of each source address with GCRA
// (the generic cell rate algorithm): one atomic "theoretical arrival time"
// per source, no timer, no lock on the per-query path once the source is
// known. A source over its rate has its queries dropped, which costs it
// retries and costs the filter nothing.
type limiter struct {
	// interval is the time one query "costs"; tolerance is how far ahead
	// of now a source may run (the burst).
	interval, tolerance int64
	seed                maphash.Seed
	shards              [limiterShards]limiterShard
}

const (
	limiterShards = 32
	// limiterShardMax bounds the sources tracked per shard, so that a flood
	// of spoofed addresses cannot grow memory without end.
	limiterShardMax = 1 << 15
)

type limiterShard struct {
	mu sync.RWMutex
	m  map[netip.Addr]*bucket
}

type bucket struct {
	tat atomic.Int64
	// limited is set while the source is being dropped, so that the
	// metric counts episodes rather than packets.
	limited atomic.Bool
}

// newLimiter returns nil (no limit) when rate is not positive.
func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	l := &limiter{seed: maphash.MakeSeed()}
	l.interval = int64(float64(time.Second) / rate)
	l.tolerance = l.interval * int64(burst)
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]*bucket)
	}
	return l
}

func (l *limiter) shard(a netip.Addr) *limiterShard {
	b := a.As16()
	return &l.shards[maphash.Bytes(l.seed, b[:])%limiterShards]
}

// allow reports whether a query from a may be served at now (unix
// nanoseconds) and whether it starts a new limited episode.
func (l *limiter) allow(a netip.Addr, now int64) (ok, started bool) {
	s := l.shard(a)
	s.mu.RLock()
	b := s.m[a]
	s.mu.RUnlock()
	if b == nil {
		s.mu.Lock()
		if b = s.m[a]; b == nil {
			if len(s.m) >= limiterShardMax {
				s.sweepLocked(now, l.tolerance)
			}
			if len(s.m) >= limiterShardMax {
				// Still full of active sources: serve rather than track.
				s.mu.Unlock()
				return true, false
			}
			b = &bucket{}
			s.m[a] = b
		}
		s.mu.Unlock()
	}
	for {
		tat := b.tat.Load()
		next := max(tat, now) + l.interval
		if next-now > l.tolerance {
			return false, b.limited.CompareAndSwap(false, true)
		}
		if b.tat.CompareAndSwap(tat, next) {
			if b.limited.Load() {
				b.limited.Store(false)
			}
			return true, false
		}
	}
}

// sweep forgets sources idle for longer than their burst, so that the map
// does not grow with every address ever seen.
func (l *limiter) sweep(now int64) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.sweepLocked(now, l.tolerance)
		s.mu.Unlock()
	}
}

func (s *limiterShard) sweepLocked(now, tolerance int64) {
	for a, b := range s.m {
		if b.tat.Load()+tolerance < now {
			delete(s.m, a)
		}
	}
}
