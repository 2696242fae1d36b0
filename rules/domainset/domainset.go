// Package domainset is the compact set of domain fingerprints at the heart of
// the matcher: it maps the 64-bit fingerprint of a canonical name to the index
// of a category set, in about 8 bytes per domain, with allocation-free lookups.
//
// The set is cut into Shards shards by the top 8 bits of the fingerprint and
// each shard into buckets by the top B bits (B >= 16, see BucketBits). Every
// entry is one uint64 packing set<<48 | key&(1<<48-1): because B >= 16 the top
// 16 bits of the key are implied by the bucket, so a stored entry still
// distinguishes full 64-bit fingerprints. Each shard serialises to its own byte
// string (see AppendShard for the layout) so that a one-domain change rewrites
// about 1/256 of the bytes, and FromShards views those bytes in place: loading
// a bundle neither parses nor copies the entries.
//
// Beside the entries, a Set keeps a Bloom filter of its keys (1 B/domain,
// filter.go), derived from the entries when the set is built or loaded and
// never serialised. LookupBatch, the matcher's path, asks it first, so most
// absent suffixes never touch the entries.
//
// Figures, and the benchmarks that show them: 8.06 resident bytes per domain
// at 5M domains before the filter, 9.06 with it, against 68.7 for a
// map[string]struct{} of the names and 30.3 for a map[uint64]uint16
// (BenchmarkMemory/n=5M). A lookup in a 5M set costs one cache miss: the
// bucket offsets (256 KiB) stay in L2 and interpolation lands on the entry's
// cache line (BenchmarkLookup, BenchmarkBits; compare with the machine's own
// miss cost, BenchmarkMemoryLatency); LookupBatch overlaps the misses of a
// name's suffixes and skips those the filter rules out (BenchmarkLookupBatch).
// Loading a serialised 5M set takes about 13 ms of validation plus the
// filter's construction (BenchmarkFromShards/n=5M).
package domainset

import (
	"fmt"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Fingerprint is the stable 64-bit fingerprint of a canonical name: xxhash64
// (github.com/cespare/xxhash/v2) of its bytes. Stable on every machine and
// version: it is part of the bundle format.
func Fingerprint(name string) uint64 { return xxhash.Sum64String(name) }

// Entry is one member of a Set.
type Entry struct {
	Key uint64 // a Fingerprint
	Set uint16 // index into the caller's table of category sets
}

// Shards is the number of independently serialised shards, selected by the
// top 8 bits of a key. It is part of the bundle format.
const Shards = 256

// Bounds of the bucket-bit parameter B. The minimum is structural (the top 16
// key bits must be implied by the bucket for the 48-bit packing to keep 64
// bits of strength); the maximum caps the offset table at 256 MiB.
const (
	MinBucketBits = 16
	MaxBucketBits = 26
)

const (
	shardBits = 8
	lowBits   = 48
	lowMask   = 1<<lowBits - 1
)

// Set is an immutable set of fingerprints, made by Build or FromShards (the
// zero Set is not usable). It is safe for concurrent use.
type Set struct {
	shards [Shards]shard
	bits   uint   // B: the bucket of a key is its top B bits
	shift  uint   // 64 - B
	mask   uint64 // buckets per shard - 1
	n      int
	held   int // bytes held outside the Set struct itself
	// filter is a cache-resident Bloom filter of the keys (see filter.go),
	// built from the entries, never serialised.
	filter []uint64
}

// shard is one key shard: per-bucket start offsets into ent (len buckets+1,
// the last one equal to len(ent)), then the packed entries, sorted by key.
type shard struct {
	off []uint32
	ent []uint64
}

// BucketBits returns the B that Build picks for n entries:
// clamp(floor(log2(n)) - 6, 16, 26), i.e. 64 to 128 entries per bucket once
// the set is larger than 2^22. Large buckets keep the offset table small
// enough to stay in cache (one uint32 per bucket, ~0.05 B/domain) and
// interpolation inside the sorted bucket finds the key within a cache line or
// two, so a lookup costs one memory miss instead of two. See BenchmarkBits for
// the measurement behind the choice.
func BucketBits(n int) int {
	b := bits.Len(uint(n)) - 1 - 6
	return min(max(b, MinBucketBits), MaxBucketBits)
}

// Build sorts entries in place and builds the set with BucketBits(len(entries)).
// Keys must be unique; on a duplicate the error names it and entries are left
// permuted. The Set does not keep entries alive: the caller may reuse or drop
// the slice.
func Build(entries []Entry) (*Set, error) {
	return BuildBits(entries, BucketBits(len(entries)))
}

// BuildBits is Build with an explicit B. The control plane uses it to keep B
// stable across generations: a change of B rewrites every shard, so pinning it
// (with hysteresis around the BucketBits boundary) preserves the "one domain
// changes one shard" property when the list size crosses a power of two.
func BuildBits(entries []Entry, b int) (*Set, error) {
	if b < MinBucketBits || b > MaxBucketBits {
		return nil, fmt.Errorf("domainset: bucket bits %d out of range [%d, %d]", b, MinBucketBits, MaxBucketBits)
	}
	if uint64(len(entries)) > 1<<32-1 {
		return nil, fmt.Errorf("domainset: %d entries exceed the format limit", len(entries))
	}
	s := newSet(uint(b))
	per := int(s.mask) + 1 // buckets per shard

	// Two passes keep every write stream cache-friendly (a direct scatter
	// of 5M entries over 40 MB costs a memory miss per entry): first an
	// in-place radix pass groups the input by shard, then each shard, now
	// contiguous, is counting-sorted into its part of the packed array,
	// which fits in L2. The counting sort uses cells finer than buckets
	// (about half an entry each), so buckets come out nearly sorted and an
	// insertion sort finishes them in close to linear time.
	var starts [Shards + 1]int
	partitionByShard(entries, &starts)
	largest := 0
	for i := range Shards {
		largest = max(largest, starts[i+1]-starts[i])
	}
	bucketBits := b - shardBits // log2 of buckets per shard
	// About two cells per entry, capped so the temporary table stays at
	// 64 MiB even if every key lands in one shard.
	fineBits := max(min(bits.Len(uint(largest))+1, 24), bucketBits)
	fineShift := uint(64 - shardBits - fineBits)
	fineMask := uint64(1)<<fineBits - 1
	cell := make([]uint32, 1<<fineBits+1)
	off := make([]uint32, Shards*(per+1))
	ent := make([]uint64, len(entries))
	for i := range Shards {
		in := entries[starts[i]:starts[i+1]]
		sh := shard{
			off: off[i*(per+1) : (i+1)*(per+1)],
			ent: ent[starts[i]:starts[i+1]:starts[i+1]],
		}
		clear(cell)
		for _, e := range in {
			cell[(e.Key>>fineShift)&fineMask+1]++
		}
		for c := range len(cell) - 1 {
			cell[c+1] += cell[c]
		}
		// Bucket j starts where its first fine cell starts.
		for j := range per + 1 {
			sh.off[j] = cell[j<<(fineBits-bucketBits)]
		}
		for _, e := range in {
			c := (e.Key >> fineShift) & fineMask
			sh.ent[cell[c]] = uint64(e.Set)<<lowBits | e.Key&lowMask
			cell[c]++
		}
		for j := range per {
			bk := sh.ent[sh.off[j]:sh.off[j+1]]
			sortBucket(bk)
			for k := 1; k < len(bk); k++ {
				if bk[k]&lowMask == bk[k-1]&lowMask {
					key := s.keyOf(i, j, bk[k])
					return nil, fmt.Errorf("domainset: duplicate key %#016x (sets %d and %d)", key, bk[k-1]>>lowBits, bk[k]>>lowBits)
				}
			}
		}
		// Keep the documented contract: entries come back sorted by key.
		k := 0
		for j := range per {
			for _, e := range sh.ent[sh.off[j]:sh.off[j+1]] {
				in[k] = Entry{Key: s.keyOf(i, j, e), Set: uint16(e >> lowBits)}
				k++
			}
		}
		s.shards[i] = sh
	}
	s.n = len(entries)
	s.held = len(ent)*8 + len(off)*4
	s.buildFilter()
	return s, nil
}

// partitionByShard permutes entries in place so that each shard's entries
// are contiguous, shard i in entries[starts[i]:starts[i+1]] (an American
// flag sort pass on the top byte).
func partitionByShard(entries []Entry, starts *[Shards + 1]int) {
	var next [Shards]int
	for _, e := range entries {
		starts[e.Key>>56+1]++
	}
	for i := range Shards {
		starts[i+1] += starts[i]
		next[i] = starts[i]
	}
	for i := range Shards {
		for next[i] < starts[i+1] {
			e := entries[next[i]]
			// Follow the cycle: drop e into its shard's next free slot
			// and pick up whatever was there, until one belongs here.
			for d := int(e.Key >> 56); d != i; d = int(e.Key >> 56) {
				entries[next[d]], e = e, entries[next[d]]
				next[d]++
			}
			entries[next[i]] = e
			next[i]++
		}
	}
}

func newSet(b uint) *Set {
	return &Set{bits: b, shift: 64 - b, mask: 1<<(b-shardBits) - 1}
}

// sortBucket sorts packed entries of one bucket by their low 48 bits, which
// is key order because the bucket fixes the bits above them. Build hands it
// nearly sorted input, where insertion sort is linear; keys crowded into few
// fine cells (crafted, or a tiny set) can come in any order, so long buckets
// go through a real sort instead of a quadratic one.
func sortBucket(bk []uint64) {
	if len(bk) > 256 {
		// Rotating the set index below the key bits makes it a plain
		// integer sort by the 48 stored key bits.
		for i, e := range bk {
			bk[i] = bits.RotateLeft64(e, 64-lowBits)
		}
		slices.Sort(bk)
		for i, e := range bk {
			bk[i] = bits.RotateLeft64(e, lowBits)
		}
		return
	}
	for i := 1; i < len(bk); i++ {
		v := bk[i]
		j := i
		for ; j > 0 && bk[j-1]<<16 > v<<16; j-- { // <<16 drops the set index
			bk[j] = bk[j-1]
		}
		bk[j] = v
	}
}

// keyOf rebuilds the full key of packed entry e in local bucket j of shard i:
// the bucket supplies the top 16 bits.
func (s *Set) keyOf(i, j int, e uint64) uint64 {
	g := uint64(i)<<(s.bits-shardBits) | uint64(j)
	return g>>(s.bits-16)<<lowBits | e&lowMask
}

// Lookup returns the category-set index of key. It never allocates.
//
// The bucket's entries are sorted and the keys uniform, so the key's position
// in the bucket is predicted from its bits below the bucket (interpolation)
// and the scan walks from there: a few entries at most, usually in the cache
// line the prediction loaded.
func (s *Set) Lookup(key uint64) (set uint16, ok bool) {
	sh := &s.shards[key>>56]
	j := (key >> s.shift) & s.mask
	off := sh.off
	lo, hi := off[j], off[j+1]
	if lo >= hi {
		return 0, false
	}
	ent := sh.ent[lo:hi]
	g, _ := bits.Mul64(key<<s.bits, uint64(len(ent)))
	i := int(g) // < len(ent) because key<<bits < 2^64
	return scan(ent, i, ent[i], key<<16)
}

// scan finishes a lookup in a bucket's entries from the predicted index i
// (whose entry e is already loaded), walking towards want = key<<16: the
// shift drops the set index and compares the stored 48 key bits in order.
func scan(ent []uint64, i int, e, want uint64) (uint16, bool) {
	if v := e << 16; v < want {
		for i++; i < len(ent); i++ {
			e = ent[i]
			if e<<16 >= want {
				break
			}
		}
	} else if v > want {
		for i--; i >= 0; i-- {
			e = ent[i]
			if e<<16 <= want {
				break
			}
		}
	}
	// When the scan ran off either end, e is the last entry it read, which
	// differs from want on that side.
	if e<<16 != want {
		return 0, false
	}
	return uint16(e >> lowBits), true
}

// Len returns the number of entries.
func (s *Set) Len() int { return s.n }

// Bits returns the bucket-bit parameter B of the set.
func (s *Set) Bits() int { return int(s.bits) }

// SizeBytes returns the bytes held by the structure: offset tables, entries
// (or the viewed shard bytes, headers included), the filter and the Set
// itself.
func (s *Set) SizeBytes() int { return s.held + int(unsafe.Sizeof(*s)) }

// Each calls fn for every entry in key order until fn returns false.
func (s *Set) Each(fn func(Entry) bool) {
	for i := range s.shards {
		sh := &s.shards[i]
		for j := 0; j+1 < len(sh.off); j++ {
			for _, e := range sh.ent[sh.off[j]:sh.off[j+1]] {
				if !fn(Entry{Key: s.keyOf(i, j, e), Set: uint16(e >> lowBits)}) {
					return
				}
			}
		}
	}
}
