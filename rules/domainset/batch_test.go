package domainset

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkBatch asks LookupBatch about keys in chunks of every length up to
// MaxBatch and fails on any answer that differs from Lookup's.
func checkBatch(t *testing.T, s *Set, keys []uint64) {
	t.Helper()
	var sets [MaxBatch]uint16
	for i, n := 0, 0; i < len(keys); i, n = i+n, n%MaxBatch+1 {
		chunk := keys[i:min(i+n, len(keys))]
		clear(sets[:])
		found := s.LookupBatch(chunk, sets[:])
		if found>>len(chunk) != 0 {
			t.Fatalf("LookupBatch(%d keys) reports bits %#b beyond them", len(chunk), found)
		}
		for k, key := range chunk {
			want, ok := s.Lookup(key)
			if got := found>>k&1 == 1; got != ok || (ok && sets[k] != want) {
				t.Fatalf("LookupBatch: key %#x: found %v set %d; Lookup says %v set %d", key, got, sets[k], ok, want)
			}
		}
	}
}

// TestLookupBatch checks that LookupBatch answers as Lookup, on present and
// absent keys mixed in every position, for built and loaded sets, with and
// without buckets crowded enough to make the interpolation walk.
func TestLookupBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tt := range []struct {
		name string
		in   []Entry
		bits int
	}{
		{"empty", nil, 16},
		{"one", []Entry{{Key: 0x0123_4567_89ab_cdef, Set: 9}}, 16},
		{"random-100k", randomEntries(rng, 100_000), 0},
		{"random-B19", randomEntries(rng, 20_000), 19},
		{"crowded", crowded(300), 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.bits
			if b == 0 {
				b = BucketBits(len(tt.in))
			}
			s, err := BuildBits(slices.Clone(tt.in), b)
			if err != nil {
				t.Fatal(err)
			}
			var keys []uint64
			for i, e := range tt.in {
				keys = append(keys, e.Key, rng.Uint64())
				if i%3 == 0 {
					// Neighbours of present keys: same bucket,
					// absent, a scan's hardest case.
					keys = append(keys, e.Key+1, e.Key-1)
				}
			}
			for range 1000 {
				keys = append(keys, rng.Uint64())
			}
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			checkBatch(t, s, keys)
			loaded, err := FromShards(shardsOf(s))
			if err != nil {
				t.Fatal(err)
			}
			checkBatch(t, loaded, keys)
		})
	}
}

// TestFilterHasNoFalseNegative checks every key of a set against the Bloom
// filter, and that the filter rejects most absent keys (else it costs a
// load and saves none).
func TestFilterHasNoFalseNegative(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	in := randomEntries(rng, 200_000)
	s, err := Build(slices.Clone(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range in {
		if !s.mayHave(e.Key) {
			t.Fatalf("filter rejects present key %#x", e.Key)
		}
	}
	passed := 0
	const trials = 100_000
	for range trials {
		if s.mayHave(rng.Uint64()) {
			passed++
		}
	}
	// About 3% expected; 6% would mean the hashing is broken.
	if rate := float64(passed) / trials; rate > 0.06 {
		t.Errorf("filter passes %.1f%% of absent keys, want about 3%%", 100*rate)
	}
	if got, want := len(s.filter)*64, len(in)*FilterBitsPerKey; got < want || got > want+64 {
		t.Errorf("filter holds %d bits for %d keys, want %d", got, len(in), want)
	}
}

func TestLookupBatchDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	in := randomEntries(rng, 10_000)
	s, err := Build(slices.Clone(in))
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]uint64, MaxBatch)
	var sets [MaxBatch]uint16
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		for k := range keys {
			keys[k] = in[(i+k)%len(in)].Key ^ uint64(k&1)
		}
		s.LookupBatch(keys, sets[:])
		i++
	})
	if allocs != 0 {
		t.Errorf("LookupBatch allocates %v times per run", allocs)
	}
}

func ExampleSet_LookupBatch() {
	s, _ := Build([]Entry{{Key: Fingerprint("example.fr"), Set: 3}})
	keys := []uint64{Fingerprint("www.example.fr"), Fingerprint("example.fr"), Fingerprint("fr")}
	sets := make([]uint16, len(keys))
	found := s.LookupBatch(keys, sets)
	fmt.Printf("found %03b, set %d\n", found, sets[1])
	// Output: found 010, set 3
}
