package domainset

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// Benchmark sizes: a typical school list set (370k) and the design ceiling
// (5M). The 5M cases live here only, so `go test` stays fast.
var benchSizes = []struct {
	name string
	n    int
}{
	{"n=370k", 370_000},
	{"n=5M", 5_000_000},
}

// appendName appends the i-th generated domain name, shaped like list
// entries: "w0001234-x.example-34.fr".
func appendName(dst []byte, i int) []byte {
	dst = append(dst, 'w')
	s := strconv.Itoa(i)
	for range 7 - len(s) {
		dst = append(dst, '0')
	}
	dst = append(dst, s...)
	dst = append(dst, "-x.example-"...)
	dst = strconv.AppendInt(dst, int64(i%97), 10)
	return append(dst, ".fr"...)
}

// genEntries fingerprints n generated names, without keeping the names.
func genEntries(n int) []Entry {
	es := make([]Entry, n)
	var buf []byte
	for i := range es {
		buf = appendName(buf[:0], i)
		es[i] = Entry{Key: Fingerprint(string(buf)), Set: uint16(i % 1000)}
	}
	return es
}

var benchEntries sync.Map // n -> []Entry, generated once per run

func entriesFor(n int) []Entry {
	if v, ok := benchEntries.Load(n); ok {
		return v.([]Entry)
	}
	es := genEntries(n)
	benchEntries.Store(n, es)
	return es
}

// lookupKeys returns 64k hit keys sampled from es and 64k keys absent from
// it. Cycling through 64k distinct keys spreads the lookups over the whole
// structure, so cache misses are those of a real query mix, not of one hot
// key. zipf is a skewed ring closer to real DNS traffic: draws with
// exponent 1.1 from a million query keys, one in five of them in the set.
const keyRing = 1 << 16

func lookupKeys(es []Entry) (hits, misses, zipf []uint64) {
	rng := rand.New(rand.NewPCG(42, 43))
	present := make(map[uint64]bool, len(es))
	for _, e := range es {
		present[e.Key] = true
	}
	for range keyRing {
		hits = append(hits, es[rng.IntN(len(es))].Key)
	}
	absent := func() uint64 {
		for {
			if k := rng.Uint64(); !present[k] {
				return k
			}
		}
	}
	for range keyRing {
		misses = append(misses, absent())
	}
	universe := make([]uint64, 1_000_000)
	for i := range universe {
		if i%5 == 0 {
			universe[i] = es[rng.IntN(len(es))].Key
		} else {
			universe[i] = absent()
		}
	}
	z := rand.NewZipf(rng, 1.1, 1, uint64(len(universe)-1))
	for range keyRing {
		zipf = append(zipf, universe[z.Uint64()])
	}
	return hits, misses, zipf
}

var sink uint64

// BenchmarkLookup measures Set.Lookup against a map[uint64]uint16 holding the
// same entries, in the same run. "hit", "miss" and "zipf" issue independent
// lookups (the CPU overlaps their cache misses, as it does for the matcher's
// ~5 independent suffix lookups per query). "hit-chained" makes each key
// depend on the set index the previous lookup returned, which measures the
// latency of one lookup alone; misses cannot be chained that way, their
// answer carries no data for the next key to depend on.
func BenchmarkLookup(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			es := entriesFor(size.n)
			s, err := Build(slices.Clone(es))
			if err != nil {
				b.Fatal(err)
			}
			m := make(map[uint64]uint16, len(es))
			for _, e := range es {
				m[e.Key] = e.Set
			}
			setLookup := s.Lookup
			mapLookup := func(k uint64) (uint16, bool) { v, ok := m[k]; return v, ok }
			hits, misses, zipf := lookupKeys(es)
			for _, c := range []struct {
				name string
				keys []uint64
			}{{"hit", hits}, {"miss", misses}, {"zipf", zipf}} {
				benchLookups(b, c.name, c.keys, setLookup, 0)
				benchLookups(b, "map-"+c.name, c.keys, mapLookup, 0)
			}
			benchChained(b, "hit-chained", hits, setLookup)
			benchChained(b, "map-hit-chained", hits, mapLookup)
		})
	}
}

// benchLookups runs lookup over the key ring, one independent lookup per
// iteration. The indirect call costs ~2 ns; it is the same for both sides.
// A non-zero bytesPerDomain is reported alongside, as "B/domain".
func benchLookups(b *testing.B, name string, keys []uint64, lookup func(uint64) (uint16, bool), bytesPerDomain float64) {
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		var found uint64
		i := 0
		clock := startCPUClock()
		for b.Loop() {
			if _, ok := lookup(keys[i&(keyRing-1)]); ok {
				found++
			}
			i++
		}
		clock.report(b)
		sink += found
		if bytesPerDomain > 0 {
			b.ReportMetric(bytesPerDomain, "B/domain")
		}
	})
}

// benchChained runs lookup over hit keys, the next index depending on the
// set index just loaded, so no two lookups overlap.
func benchChained(b *testing.B, name string, hits []uint64, lookup func(uint64) (uint16, bool)) {
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		clock := startCPUClock()
		for b.Loop() {
			v, _ := lookup(hits[i&(keyRing-1)])
			i += 1 + int(v&1)
		}
		clock.report(b)
	})
}

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory reports resident bytes per domain, measured as the growth
// of the live heap: for the Set (input entries released before measuring), a
// map[string]struct{} holding the names (what a naive matcher keeps) and a
// map[uint64]uint16 holding the same fingerprints.
func BenchmarkMemory(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			n := size.n
			var setB, strB, u64B, sizeB float64
			for b.Loop() {
				// The entries live only inside the closure: what stays is
				// the Set alone.
				setB = liveBytes(n, func() any {
					s, err := Build(genEntries(n))
					if err != nil {
						b.Fatal(err)
					}
					sizeB = float64(s.SizeBytes()) / float64(n)
					return s
				})
				strB = liveBytes(n, func() any {
					names := make(map[string]struct{})
					var buf []byte
					for i := range n {
						buf = appendName(buf[:0], i)
						names[string(buf)] = struct{}{}
					}
					return names
				})
				u64B = liveBytes(n, func() any {
					m := make(map[uint64]uint16)
					var buf []byte
					for i := range n {
						buf = appendName(buf[:0], i)
						m[Fingerprint(string(buf))] = uint16(i)
					}
					return m
				})
			}
			b.ReportMetric(setB, "B/domain")
			b.ReportMetric(sizeB, "SizeBytes/domain")
			b.ReportMetric(strB, "mapstring-B/domain")
			b.ReportMetric(u64B, "mapu64-B/domain")
			b.ReportMetric(strB/setB, "x-smaller-than-mapstring")
			b.ReportMetric(u64B/setB, "x-smaller-than-mapu64")
		})
	}
}

// liveBytes returns the growth of the live heap, per domain, while the
// value build returns is alive.
func liveBytes(n int, build func() any) float64 {
	before := heapAfterGC()
	v := build()
	after := heapAfterGC()
	runtime.KeepAlive(v)
	return float64(after-before) / float64(n)
}

func BenchmarkBuild(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			es := entriesFor(size.n)
			work := make([]Entry, len(es))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				copy(work, es) // unsorted input every time
				b.StartTimer()
				if _, err := Build(work); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFromShards times loading a serialised set: validation of every
// offset and entry, no copy. Startup and bundle swaps pay this.
func BenchmarkFromShards(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			s, err := Build(slices.Clone(entriesFor(size.n)))
			if err != nil {
				b.Fatal(err)
			}
			shards := shardsOf(s)
			total := 0
			for _, sh := range shards {
				total += len(sh)
			}
			b.ReportAllocs()
			b.SetBytes(int64(total))
			for b.Loop() {
				if _, err := FromShards(shards); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)/float64(size.n), "bundle-B/domain")
		})
	}
}

func BenchmarkAppendShard(b *testing.B) {
	s, err := Build(slices.Clone(entriesFor(5_000_000)))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("n=5M/all", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			for i := range Shards {
				buf = s.AppendShard(buf[:0], i)
			}
		}
	})
}

// BenchmarkBits is the measurement behind BucketBits: lookup cost and
// resident size for each B at 5M domains.
func BenchmarkBits(b *testing.B) {
	es := entriesFor(5_000_000)
	hits, misses, _ := lookupKeys(es)
	for _, bits := range []int{16, 17, 18, 19, 20, 21, 22} {
		s, err := BuildBits(slices.Clone(es), bits)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("n=5M/B=%d", bits), func(b *testing.B) {
			perDomain := float64(s.SizeBytes()) / float64(len(es))
			benchLookups(b, "hit", hits, s.Lookup, perDomain)
			benchLookups(b, "miss", misses, s.Lookup, perDomain)
			benchChained(b, "hit-chained", hits, s.Lookup)
		})
	}
}

// BenchmarkQuery models the lookups of one matcher decision: 5 lookups (one
// per suffix of the queried name), one of them a hit, keys cycling through a
// 64k ring, against 5 probes of a map[uint64]uint16.
func BenchmarkQuery(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			es := entriesFor(size.n)
			s, err := Build(slices.Clone(es))
			if err != nil {
				b.Fatal(err)
			}
			m := make(map[uint64]uint16, len(es))
			for _, e := range es {
				m[e.Key] = e.Set
			}
			hits, keys, _ := lookupKeys(es)
			for i := 0; i < len(keys); i += 5 {
				keys[i] = hits[i]
			}
			const perQuery = 5
			b.Run("lookup5", func(b *testing.B) {
				b.ReportAllocs()
				var found uint64
				i := 0
				clock := startCPUClock()
				for b.Loop() {
					q := keys[i : i+perQuery]
					for _, k := range q {
						if _, ok := s.Lookup(k); ok {
							found++
						}
					}
					if i += perQuery; i+perQuery > len(keys) {
						i = 0
					}
				}
				clock.report(b)
				sink += found
			})
			b.Run("map5", func(b *testing.B) {
				b.ReportAllocs()
				var found uint64
				i := 0
				clock := startCPUClock()
				for b.Loop() {
					for _, k := range keys[i : i+perQuery] {
						if _, ok := m[k]; ok {
							found++
						}
					}
					if i += perQuery; i+perQuery > len(keys) {
						i = 0
					}
				}
				clock.report(b)
				sink += found
			})
		})
	}
}

// BenchmarkMemoryLatency calibrates the machine: one dependent load at a
// random cache line of a 40 MB buffer (the size of a 5M set), cycling
// through 64k lines like the lookup benchmarks. A cold lookup cannot beat
// this; compare BenchmarkLookup's "-chained" figures with it.
func BenchmarkMemoryLatency(b *testing.B) {
	const size = 40 << 20 / 8
	buf := make([]uint64, size)
	perm := rand.New(rand.NewPCG(1, 1)).Perm(size / 8)[:keyRing]
	for i, p := range perm {
		buf[p*8] = uint64(perm[(i+1)%len(perm)] * 8)
	}
	b.Run("40MB", func(b *testing.B) {
		p := uint64(perm[0] * 8)
		clock := startCPUClock()
		for b.Loop() {
			p = buf[p]
		}
		clock.report(b)
		sink += p
	})
}
