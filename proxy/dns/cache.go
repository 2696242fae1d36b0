package dns

import (
	"hash/maphash"
	"sync"
	"time"
)

// entry is one cached upstream answer. It is immutable once stored, so
// readers use it without a lock.
type entry struct {
	answer
	// born is when it was stored, expires when it stops being served (unix
	// nanoseconds of the injected clock).
	born, expires int64
}

// age is the number of whole seconds since e was stored.
func (e *entry) age(now int64) uint32 {
	if now <= e.born {
		return 0
	}
	return uint32((now - e.born) / int64(time.Second))
}

// cache maps (name, type, DO, CD) to upstream answers. It is sharded so
// that the readers of several sockets rarely meet on one lock, and bounded
// in entries: a full shard evicts the soonest-expiring of a few sampled
// entries (cheap, and close to LRU for DNS where popular names are
// refreshed constantly).
type cache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

const (
	cacheShards = 64
	// evictSample is how many entries a full shard looks at to pick a victim.
	evictSample = 8
)

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*entry
	// pad keeps two shards' locks off one cache line.
	_ [40]byte
}

func newCache(entries int) *cache {
	c := &cache{seed: maphash.MakeSeed()}
	if entries <= 0 {
		return c
	}
	c.perShard = max(1, (entries+cacheShards-1)/cacheShards)
	for i := range c.shards {
		c.shards[i].m = make(map[string]*entry)
	}
	return c
}

func (c *cache) shard(key []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, key)%cacheShards]
}

// get returns the entry for key and whether it is still fresh. An
// expired entry is returned too: it is served stale when no upstream
// answers (RFC 8767).
func (c *cache) get(key []byte, now int64) (e *entry, fresh bool) {
	if c.perShard == 0 {
		return nil, false
	}
	s := c.shard(key)
	s.mu.RLock()
	e = s.m[string(key)]
	s.mu.RUnlock()
	return e, e != nil && now < e.expires
}

// put stores e under key.
func (c *cache) put(key []byte, e *entry, now int64) {
	if c.perShard == 0 {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[string(key)]; !ok && len(s.m) >= c.perShard {
		var victim string
		var soonest int64
		n := 0
		for k, old := range s.m {
			if now >= old.expires {
				victim = k
				break
			}
			if n == 0 || old.expires < soonest {
				victim, soonest = k, old.expires
			}
			if n++; n == evictSample {
				break
			}
		}
		delete(s.m, victim)
	}
	s.m[string(key)] = e
}

// len counts the cached entries (for the metrics gauge).
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// flight coalesces identical in-flight upstream queries: the first asker
// goes upstream, the others wait for its answer.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done chan struct{}
	e    *entry
	err  error
}

// do runs fn once for all concurrent callers with the same key. shared
// reports whether this caller waited for another's call.
func (f *flight) do(key []byte, fn func() (*entry, error)) (e *entry, err error, shared bool) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[string]*call)
	}
	if c, ok := f.calls[string(key)]; ok {
		f.mu.Unlock()
		<-c.done
		return c.e, c.err, true
	}
	c := &call{done: make(chan struct{})}
	k := string(key)
	f.calls[k] = c
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		delete(f.calls, k)
		f.mu.Unlock()
		close(c.done)
	}()
	c.e, c.err = fn()
	return c.e, c.err, false
}
