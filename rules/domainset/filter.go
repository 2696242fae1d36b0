package domainset

import "math/bits"

// The filter is a blocked Bloom filter over the keys of a Set: one bit per
// entry... see FilterBitsPerKey. Each key sets filterHashes bits of a single
// 64-bit word, so asking costs one load, from a table small enough to stay in
// cache (370 KiB for the UT1 union, 5 MiB at 5M domains where the entries
// take 40 MB). LookupBatch asks it first, and an absent suffix (most of
// them: every parent of an unlisted name) then costs no miss in the entries.
// It is derived from the keys when a set is built or loaded and never
// serialised, so the shard format does not change.

// FilterBitsPerKey is the size of the filter: 8 bits per entry, 1 B/domain,
// for about 3% false positives with filterHashes = 3.
const FilterBitsPerKey = 8

const filterHashes = 3

// filterMask returns the bits key sets in its filter word: filterHashes
// 6-bit fields from the low bits of the key (the word index comes from the
// high bits, see filterWord).
func filterMask(key uint64) uint64 {
	return 1<<(key&63) | 1<<(key>>6&63) | 1<<(key>>12&63)
}

// filterWord maps key onto [0, n) by its high bits (multiply-shift, no
// division and no power-of-two rounding of the table).
func filterWord(key uint64, n int) int {
	hi, _ := bits.Mul64(key, uint64(n))
	return int(hi)
}

// buildFilter fills s.filter from the entries of s.
func (s *Set) buildFilter() {
	n := max((s.n*FilterBitsPerKey+63)/64, 1)
	f := make([]uint64, n)
	for i := range s.shards {
		sh := &s.shards[i]
		for j := 0; j+1 < len(sh.off); j++ {
			for _, e := range sh.ent[sh.off[j]:sh.off[j+1]] {
				key := s.keyOf(i, j, e)
				f[filterWord(key, n)] |= filterMask(key)
			}
		}
	}
	s.filter = f
	s.held += len(f) * 8
}

// mayHave reports whether key may be in the set; false means it is not.
func (s *Set) mayHave(key uint64) bool {
	m := filterMask(key)
	return s.filter[filterWord(key, len(s.filter))]&m == m
}
