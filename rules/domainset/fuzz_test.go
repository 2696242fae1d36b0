package domainset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
)

var updateCorpus = flag.Bool("update", false, "rewrite the seed corpus in testdata/fuzz/FuzzFromShards")

// splitShards turns fuzz input into the Shards byte slices FromShards takes,
// and says how many came from the input. The input is a sequence of chunks,
// each a little-endian uint16 length and that many bytes (a short final
// chunk takes what is left). Shards the input does not reach get a valid
// empty shard whose B follows chunk 0's header byte when it is a small legal
// value: a handful of mutated shards among well-formed ones is how
// corruption reaches deep validation, and keeping fillers at B <= 18 keeps
// each run fast.
func splitShards(data []byte) (shards [][]byte, fromInput int) {
	for len(data) >= 2 && len(shards) < Shards {
		n := int(binary.LittleEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		shards = append(shards, data[:n:n])
		data = data[n:]
	}
	fromInput = len(shards)
	bits := uint(MinBucketBits)
	if len(shards) > 0 && len(shards[0]) > 5 && shards[0][5] >= MinBucketBits && shards[0][5] <= fillerMaxBits {
		bits = uint(shards[0][5])
	}
	return append(shards, fillers()[bits-MinBucketBits][fromInput:]...), fromInput
}

const fillerMaxBits = 18

// fillers holds every empty shard for B = 16..18, built once: rebuilding
// them on every run made executions slow enough to stall minimisation.
var fillers = sync.OnceValue(func() (out [fillerMaxBits - MinBucketBits + 1][][]byte) {
	for b := range out {
		empty, err := BuildBits(nil, b+MinBucketBits)
		if err != nil {
			panic(err)
		}
		for i := range Shards {
			out[b] = append(out[b], empty.AppendShard(nil, i))
		}
	}
	return out
})

// joinShards is the inverse of splitShards for the first k shards of s.
func joinShards(s *Set, k int) []byte {
	var out []byte
	for i := range k {
		b := s.AppendShard(nil, i)
		out = binary.LittleEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return out
}

// fuzzSeeds are valid and near-valid inputs the fuzzer mutates from.
func fuzzSeeds() map[string][]byte {
	// Keys confined to the first shards so the chunks stay small.
	small := func(bits, n int, topBytes uint64) []byte {
		rng := rand.New(rand.NewPCG(uint64(bits), uint64(n)))
		var es []Entry
		seen := map[uint64]bool{}
		for len(es) < n {
			k := rng.Uint64()>>8 | (rng.Uint64()%topBytes)<<56
			if !seen[k] {
				seen[k] = true
				es = append(es, Entry{Key: k, Set: uint16(rng.Uint32())})
			}
		}
		s, err := BuildBits(es, bits)
		if err != nil {
			panic(err)
		}
		return joinShards(s, int(topBytes))
	}
	valid16 := small(16, 40, 2)
	return map[string][]byte{
		"empty":             nil,
		"valid-B16-2shards": valid16,
		"valid-B17-3shards": small(17, 60, 3),
		"valid-B18-1shard":  small(18, 30, 1),
		"crowded-bucket":    joinShards(mustBuild(16, crowded(50)), 1),
		"truncated":         valid16[:len(valid16)-5],
		"header-only":       append([]byte{16, 0}, valid16[2:18]...),
	}
}

func crowded(n int) []Entry {
	var es []Entry
	for i := range n {
		es = append(es, Entry{Key: 0x00ab_0000_0000_0000 | uint64(i*i*7919), Set: uint16(i)})
	}
	return es
}

func mustBuild(bits int, es []Entry) *Set {
	s, err := BuildBits(es, bits)
	if err != nil {
		panic(err)
	}
	return s
}

// TestFuzzCorpus keeps the on-disk seed corpus in step with fuzzSeeds; run
// with -update after a format change and review the diff.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFromShards")
	for name, data := range fuzzSeeds() {
		// Valid seeds must load, or the fuzzer never reaches the checks
		// that run on a loaded set.
		shards, _ := splitShards(data)
		_, err := FromShards(shards)
		if loads := !strings.HasPrefix(name, "truncated") && name != "header-only"; loads != (err == nil) {
			t.Errorf("seed %s: FromShards error = %v, want loaded = %v", name, err, loads)
		}
		path := filepath.Join(dir, "seed-"+name)
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed corpus: %v (run go test -run TestFuzzCorpus -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("seed corpus %s is stale (run go test -run TestFuzzCorpus -update)", path)
		}
	}
}

// FuzzFromShards feeds arbitrary bytes, split into shards, to FromShards. It
// must never panic; a set that loads must answer every lookup without
// panicking, agree with Each, answer LookupBatch as Lookup, and re-serialise to the very bytes it came from
// (the encoding is canonical, so anything else means validation let slack
// through).
//
// The seeds are the files in testdata/fuzz/FuzzFromShards (see
// TestFuzzCorpus); run with go test -fuzz FuzzFromShards -fuzztime 3m.
func FuzzFromShards(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		shards, fromInput := splitShards(data)
		for _, view := range []bool{true, false} {
			s, err := fromShards(shards, view)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not wrap ErrCorrupt", err)
				}
				continue
			}
			// Random keys, and keys near the input's bytes.
			seed := xxhash.Sum64(data)
			rng := rand.New(rand.NewPCG(seed, uint64(len(data))))
			var probe []uint64
			for range 64 {
				probe = append(probe, rng.Uint64())
			}
			for i := 0; i+8 <= len(data); i += 8 {
				probe = append(probe, binary.LittleEndian.Uint64(data[i:]))
			}
			for _, k := range probe {
				s.Lookup(k)
			}
			n := 0
			s.Each(func(e Entry) bool {
				probe = append(probe, e.Key)
				n++
				if got, ok := s.Lookup(e.Key); !ok || got != e.Set {
					t.Fatalf("Each yields %#x -> %d, Lookup gives %d, %v", e.Key, e.Set, got, ok)
				}
				return true
			})
			if n != s.Len() {
				t.Fatalf("Each yields %d entries, Len() = %d", n, s.Len())
			}
			checkBatch(t, s, probe)
			for i := range fromInput { // fillers are canonical by construction
				if !bytes.Equal(s.AppendShard(nil, i), shards[i]) {
					t.Fatalf("shard %d loads but re-serialises differently", i)
				}
			}
		}
	})
}
