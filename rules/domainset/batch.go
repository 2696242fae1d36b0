package domainset

import "math/bits"

// MaxBatch is the most keys one LookupBatch call takes: a name has at most
// this many suffixes probed together (a longer name is probed in chunks).
const MaxBatch = 8

// LookupBatch looks up keys[:min(len(keys), MaxBatch)] and returns a bit
// per key found (bit k for keys[k]), storing the set index of each found key
// in sets[k]; sets must be at least as long as the keys looked up. It never
// allocates.
//
// It answers exactly as Lookup on each key, but faster than calling Lookup
// in turn: the first pass issues every key's entry load before the second
// pass reads any of them, so the cache misses of the suffixes of one name
// overlap (memory-level parallelism) instead of costing one dependent miss
// each. Decide probes all suffixes of a host this way.
func (s *Set) LookupBatch(keys []uint64, sets []uint16) (found uint32) {
	if len(keys) > MaxBatch {
		keys = keys[:MaxBatch]
	}
	if len(keys) == 0 {
		return 0
	}
	sets = sets[:len(keys)]
	var (
		ents  [MaxBatch][]uint64
		idx   [MaxBatch]int
		first [MaxBatch]uint64
	)
	// Pass 1: bucket and predicted slot of every key, and the load of that
	// slot. No load here depends on another's result.
	for k, key := range keys {
		sh := &s.shards[key>>56]
		j := (key >> s.shift) & s.mask
		// The offsets are read before the filter answers, so that for a
		// present key the entry load waits on one of them, not on both
		// in turn.
		lo, hi := sh.off[j], sh.off[j+1]
		if lo >= hi || (s.filter != nil && !s.mayHave(key)) {
			continue
		}
		ent := sh.ent[lo:hi]
		g, _ := bits.Mul64(key<<s.bits, uint64(len(ent)))
		ents[k], idx[k], first[k] = ent, int(g), ent[g]
	}
	// Pass 2: finish each lookup from the loaded slot.
	for k, key := range keys {
		if len(ents[k]) == 0 {
			continue
		}
		if set, ok := scan(ents[k], idx[k], first[k], key<<16); ok {
			sets[k] = set
			found |= 1 << k
		}
	}
	return found
}
