package domainset

import (
	"slices"
	"testing"
)

// BenchmarkLookupBatch probes 4 keys per op, as Decide probes the 4
// suffixes of a 4-label host: "miss" is an unlisted host (4 absent keys),
// "hit" a listed one (its second suffix present, as "www." + a listed name).
// "seq" is one Lookup after another, stopping at the first hit (the matcher
// before LookupBatch), "batch" is LookupBatch, "batch-nofilter" LookupBatch
// on the same set with its Bloom filter removed: the filter's own worth.
func BenchmarkLookupBatch(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			es := entriesFor(size.n)
			s, err := Build(slices.Clone(es))
			if err != nil {
				b.Fatal(err)
			}
			nf := *s
			nf.filter = nil
			hits, misses, _ := lookupKeys(es)
			for _, c := range []struct {
				name string
				hit  bool
			}{{"miss", false}, {"hit", true}} {
				groups := make([][4]uint64, keyRing/4)
				for g := range groups {
					copy(groups[g][:], misses[4*g:])
					if c.hit {
						groups[g][1] = hits[g]
					}
				}
				run := func(name string, probe func(keys []uint64) uint32) {
					b.Run(c.name+"/"+name, func(b *testing.B) {
						b.ReportAllocs()
						var found uint64
						i := 0
						clock := startCPUClock()
						for b.Loop() {
							found += uint64(probe(groups[i&(len(groups)-1)][:]))
							i++
						}
						clock.report(b)
						sink += found
					})
				}
				run("seq", func(keys []uint64) uint32 {
					for k, key := range keys {
						if _, ok := s.Lookup(key); ok {
							return 1 << k
						}
					}
					return 0
				})
				var sets [MaxBatch]uint16
				run("batch", func(keys []uint64) uint32 { return s.LookupBatch(keys, sets[:]) })
				run("batch-nofilter", func(keys []uint64) uint32 { return nf.LookupBatch(keys, sets[:]) })
			}
		})
	}
}
