package domainset

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// shardsOf serialises every shard of s into its own freshly allocated slice
// (Go's allocator returns 8-byte-aligned blocks for these sizes).
func shardsOf(s *Set) [][]byte {
	out := make([][]byte, Shards)
	for i := range out {
		out[i] = s.AppendShard(nil, i)
	}
	return out
}

// misaligned returns copies of shards that start one byte past an 8-byte
// boundary, to drive FromShards' copying path.
func misaligned(shards [][]byte) [][]byte {
	out := make([][]byte, len(shards))
	for i, b := range shards {
		buf := make([]byte, len(b)+1)
		copy(buf[1:], b)
		out[i] = buf[1:]
	}
	return out
}

// randomEntries returns n entries with distinct random keys.
func randomEntries(rng *rand.Rand, n int) []Entry {
	seen := make(map[uint64]bool, n)
	out := make([]Entry, 0, n)
	for len(out) < n {
		k := rng.Uint64()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, Entry{Key: k, Set: uint16(rng.Uint32())})
	}
	return out
}

// checkSet verifies s against the expected entries: Len, every hit, the given
// misses and Each's order.
func checkSet(t *testing.T, s *Set, want []Entry, absent []uint64) {
	t.Helper()
	if s.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", s.Len(), len(want))
	}
	for _, e := range want {
		got, ok := s.Lookup(e.Key)
		if !ok || got != e.Set {
			t.Fatalf("Lookup(%#016x) = %d, %v; want %d, true", e.Key, got, ok, e.Set)
		}
	}
	for _, k := range absent {
		if got, ok := s.Lookup(k); ok {
			t.Fatalf("Lookup(%#016x) = %d, true; want absent", k, got)
		}
	}
	sorted := slices.Clone(want)
	slices.SortFunc(sorted, func(a, b Entry) int { return cmpKey(a.Key, b.Key) })
	var each []Entry
	s.Each(func(e Entry) bool { each = append(each, e); return true })
	if !slices.Equal(each, sorted) {
		t.Fatalf("Each() = %d entries out of order or different from the %d built", len(each), len(sorted))
	}
}

// roundTrips checks that s survives serialisation through every load path
// (view, misaligned copy, big-endian-style decode) byte for byte.
func roundTrips(t *testing.T, s *Set, want []Entry, absent []uint64) {
	t.Helper()
	shards := shardsOf(s)
	paths := []struct {
		name   string
		shards [][]byte
		view   bool
	}{
		{"aligned", shards, true},
		{"misaligned", misaligned(shards), true},
		{"decoded", shards, false},
	}
	for _, p := range paths {
		got, err := fromShards(p.shards, p.view)
		if err != nil {
			t.Fatalf("%s: FromShards: %v", p.name, err)
		}
		if got.Bits() != s.Bits() {
			t.Fatalf("%s: Bits() = %d, want %d", p.name, got.Bits(), s.Bits())
		}
		checkSet(t, got, want, absent)
		for i := range Shards {
			if b := got.AppendShard(nil, i); !bytes.Equal(b, shards[i]) {
				t.Fatalf("%s: shard %d re-serialises differently", p.name, i)
			}
		}
	}
}

func TestFingerprintIsStable(t *testing.T) {
	// Part of the bundle format: these values must never change.
	tests := []struct {
		name string
		want uint64
	}{
		{"", 0xef46db3751d8e999},
		{"example.fr", 0x355ac927abb40d8e},
		{"ac-paris.fr", 0xab2f51461b1cfccf},
	}
	for _, tt := range tests {
		if got := Fingerprint(tt.name); got != tt.want {
			t.Errorf("Fingerprint(%q) = %#016x, want %#016x", tt.name, got, tt.want)
		}
	}
}

func TestBuildLookup(t *testing.T) {
	const low = 0x0000_1234_5678_9abc
	sameBucket := func(n int) []Entry {
		// n keys sharing the top 26 bits, bunched at the bottom of the
		// bucket's range: interpolation guesses badly and must still find
		// them all.
		var es []Entry
		for i := range n {
			es = append(es, Entry{Key: 0xabcd_ef00_0000_0000 | uint64(i*i), Set: uint16(i)})
		}
		return es
	}
	tests := []struct {
		name   string
		bits   int // 0: BucketBits
		in     []Entry
		absent []uint64
	}{
		{name: "empty", absent: []uint64{0, 1, ^uint64(0), Fingerprint("example.fr")}},
		{
			name:   "one entry",
			in:     []Entry{{Key: Fingerprint("example.fr"), Set: 7}},
			absent: []uint64{0, Fingerprint("example.com"), Fingerprint("example.fr") ^ 1},
		},
		{
			name: "collisions in low 48 bits",
			in: []Entry{
				{Key: 0x0000<<48 | low, Set: 1},
				{Key: 0x0001<<48 | low, Set: 2},
				{Key: 0x00ff<<48 | low, Set: 3},
				{Key: 0x8000<<48 | low, Set: 4},
				{Key: 0xffff<<48 | low, Set: 5},
			},
			absent: []uint64{0x0002<<48 | low, 0x7fff<<48 | low, low + 1},
		},
		{
			name: "keys differing only in top bits",
			bits: 20,
			in: []Entry{
				{Key: low, Set: 1},
				{Key: low | 1<<63, Set: 2},
				{Key: low | 1<<56, Set: 3},
				{Key: low | 1<<48, Set: 4},
				{Key: low | 1<<47, Set: 5}, // inside the stored bits when B = 20
				{Key: low | 1<<46, Set: 6},
			},
			absent: []uint64{low | 1<<62, low | 1<<55, low | 1<<45},
		},
		{
			name:   "extreme keys",
			in:     []Entry{{Key: 0, Set: 1}, {Key: ^uint64(0), Set: 2}, {Key: 1 << 63, Set: 3}},
			absent: []uint64{1, ^uint64(0) - 1, 1<<63 - 1},
		},
		{
			name:   "max set index",
			in:     []Entry{{Key: 42, Set: 65535}, {Key: 43, Set: 0}, {Key: 1 << 60, Set: 65534}},
			absent: []uint64{41, 44},
		},
		{
			name:   "crowded bucket B=16",
			in:     sameBucket(2000),
			absent: []uint64{0xabcd_ef00_0000_0000 | 2, 0xabcd_ef00_0000_0000 | 2000*2000, 0xabcd_ef3f_ffff_ffff},
		},
		{
			name:   "crowded bucket B=20",
			bits:   20,
			in:     sameBucket(300),
			absent: []uint64{0xabcd_ef00_0000_0000 | 3, 0xabcd_ef3f_ffff_ffff, 0xabcd_eeff_ffff_ffff},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			b := tt.bits
			if b == 0 {
				b = BucketBits(len(in))
			}
			s, err := BuildBits(in, b)
			if err != nil {
				t.Fatalf("BuildBits: %v", err)
			}
			if !slices.IsSortedFunc(in, func(a, b Entry) int { return cmpKey(a.Key, b.Key) }) {
				t.Errorf("Build did not sort its input in place")
			}
			checkSet(t, s, tt.in, tt.absent)
			roundTrips(t, s, tt.in, tt.absent)
		})
	}
}

func cmpKey(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []Entry
		bits int
		want string
	}{
		{"duplicate", []Entry{{Key: 5, Set: 1}, {Key: 0xdead_beef, Set: 2}, {Key: 5, Set: 3}}, 16, "duplicate key 0x0000000000000005"},
		{"duplicate high key", []Entry{{Key: 0xdead_beef_0000_0001}, {Key: 0xdead_beef_0000_0001}}, 20, "duplicate key 0xdeadbeef00000001"},
		{"bits too small", nil, 15, "bucket bits 15 out of range"},
		{"bits too large", nil, 27, "bucket bits 27 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildBits(tt.in, tt.bits)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("BuildBits error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestBucketBits(t *testing.T) {
	tests := []struct{ n, want int }{
		{0, 16}, {1, 16}, {370_000, 16}, {1 << 22, 16}, {1<<23 - 1, 16},
		{5_000_000, 16}, {1 << 23, 17}, {1 << 30, 24}, {1 << 40, 26},
	}
	for _, tt := range tests {
		if got := BucketBits(tt.n); got != tt.want {
			t.Errorf("BucketBits(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// TestAgainstMap compares the set with a map on random keys for several B.
func TestAgainstMap(t *testing.T) {
	const n = 100_000
	rng := rand.New(rand.NewPCG(1, 2))
	in := randomEntries(rng, n)
	ref := make(map[uint64]uint16, n)
	for _, e := range in {
		ref[e.Key] = e.Set
	}
	var absent []uint64
	for len(absent) < n {
		if k := rng.Uint64(); ref[k] == 0 {
			if _, ok := ref[k]; !ok {
				absent = append(absent, k)
			}
		}
	}
	for _, b := range []int{BucketBits(n), 17, 19} {
		t.Run(fmt.Sprintf("B=%d", b), func(t *testing.T) {
			s, err := BuildBits(slices.Clone(in), b)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range ref {
				if got, ok := s.Lookup(k); !ok || got != want {
					t.Fatalf("Lookup(%#x) = %d, %v; want %d, true", k, got, ok, want)
				}
			}
			for _, k := range absent {
				if _, ok := s.Lookup(k); ok {
					t.Fatalf("Lookup(%#x) found an absent key", k)
				}
			}
			loaded, err := FromShards(shardsOf(s))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range absent[:1000] {
				if _, ok := loaded.Lookup(k); ok {
					t.Fatalf("loaded Lookup(%#x) found an absent key", k)
				}
			}
			checkSet(t, loaded, in, nil)
		})
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	in := randomEntries(rng, 10_000)
	s, err := Build(slices.Clone(in))
	if err != nil {
		t.Fatal(err)
	}
	v, err := FromShards(shardsOf(s))
	if err != nil {
		t.Fatal(err)
	}
	for name, set := range map[string]*Set{"built": s, "viewed": v} {
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			set.Lookup(in[i%len(in)].Key)
			set.Lookup(rng.Uint64())
			i++
		})
		if allocs != 0 {
			t.Errorf("%s: Lookup allocates %v times per run", name, allocs)
		}
	}
}

// TestFromShardsIsZeroCopy checks that aligned input is viewed in place and
// misaligned input is not aliased.
func TestFromShardsIsZeroCopy(t *testing.T) {
	in := randomEntries(rand.New(rand.NewPCG(5, 6)), 5000)
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	shards := shardsOf(s)
	entAt := int(shardSize(s.bits, 0))
	aliases := func(set *Set, shards [][]byte, i int) bool {
		b := shards[i]
		return unsafe.SliceData(set.shards[i].ent) == (*uint64)(unsafe.Pointer(&b[entAt]))
	}
	v, err := FromShards(shards)
	if err != nil {
		t.Fatal(err)
	}
	mis := misaligned(shards)
	m, err := FromShards(mis)
	if err != nil {
		t.Fatal(err)
	}
	for i := range Shards {
		if len(s.shards[i].ent) == 0 {
			continue
		}
		if !aliases(v, shards, i) {
			t.Fatalf("shard %d: aligned input was copied", i)
		}
		if aliases(m, mis, i) {
			t.Fatalf("shard %d: misaligned input was viewed in place", i)
		}
	}
}

// TestOneChangeOneShard is the transfer-size property the control plane
// relies on: editing one domain rewrites exactly one shard's bytes.
func TestOneChangeOneShard(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	base := randomEntries(rng, 20_000)
	extra := randomEntries(rng, 1)[0]
	const pinned = 18
	tests := []struct {
		name   string
		edit   func([]Entry) ([]Entry, uint64) // edited copy, key of the touched entry
		bits   int
		shards int // shards expected to differ
	}{
		{"change category set", func(es []Entry) ([]Entry, uint64) { es[123].Set ^= 0x55; return es, es[123].Key }, 0, 1},
		{"add a domain", func(es []Entry) ([]Entry, uint64) { return append(es, extra), extra.Key }, 0, 1},
		{"remove a domain", func(es []Entry) ([]Entry, uint64) { k := es[77].Key; return slices.Delete(es, 77, 78), k }, 0, 1},
		{"add with pinned B", func(es []Entry) ([]Entry, uint64) { return append(es, extra), extra.Key }, pinned, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bits := tt.bits
			if bits == 0 {
				bits = BucketBits(len(base))
			}
			before, err := BuildBits(slices.Clone(base), bits)
			if err != nil {
				t.Fatal(err)
			}
			edited, key := tt.edit(slices.Clone(base))
			after, err := BuildBits(edited, bits)
			if err != nil {
				t.Fatal(err)
			}
			a, b := shardsOf(before), shardsOf(after)
			var changed []int
			var total, diff int
			for i := range Shards {
				total += len(b[i])
				if !bytes.Equal(a[i], b[i]) {
					changed = append(changed, i)
					diff += len(b[i])
				}
			}
			if len(changed) != tt.shards || changed[0] != int(key>>56) {
				t.Fatalf("changed shards %v, want only shard %d", changed, key>>56)
			}
			t.Logf("rewrote %d of %d bytes (%.2f%%)", diff, total, 100*float64(diff)/float64(total))
		})
	}
}

// TestBucketBitsChangeRewritesAll documents why BuildBits exists: letting B
// follow the size across a power of two rewrites every shard.
func TestBucketBitsChangeRewritesAll(t *testing.T) {
	in := randomEntries(rand.New(rand.NewPCG(9, 10)), 1000)
	a, _ := BuildBits(slices.Clone(in), 16)
	b, _ := BuildBits(slices.Clone(in), 17)
	if bytes.Equal(a.AppendShard(nil, 0), b.AppendShard(nil, 0)) {
		t.Fatal("shards with different B serialise identically")
	}
}

func TestAppendShardAppends(t *testing.T) {
	s, _ := Build([]Entry{{Key: 1, Set: 1}})
	prefix := []byte("prefix")
	got := s.AppendShard(prefix, 0)
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], s.AppendShard(nil, 0)) {
		t.Fatal("AppendShard does not append after dst's content")
	}
	// Spare capacity holding stale bytes must be fully overwritten.
	dirty := bytes.Repeat([]byte{0xff}, 1<<20)[:0]
	if got := s.AppendShard(dirty, 0); !bytes.Equal(got, s.AppendShard(nil, 0)) {
		t.Fatal("AppendShard leaves stale bytes of dst's capacity in the shard")
	}
	for _, i := range []int{-1, Shards} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendShard(%d) did not panic", i)
				}
			}()
			s.AppendShard(nil, i)
		}()
	}
}

// TestFromShardsCorrupt damages valid shards one way at a time: each must be
// reported as ErrCorrupt, on every load path, without a panic.
func TestFromShardsCorrupt(t *testing.T) {
	const bits = 17 // > 16, so bucket bits are stored inside entries
	in := randomEntries(rand.New(rand.NewPCG(11, 12)), 20_000)
	s, err := BuildBits(in, bits)
	if err != nil {
		t.Fatal(err)
	}
	per := 1 << (bits - shardBits)
	offAt := shardHeader
	entAt := int(shardSize(bits, 0))
	le32 := func(b []byte, at int, v uint32) {
		b[at], b[at+1], b[at+2], b[at+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	// firstBucket returns the byte offset of the entries of the first bucket
	// of shard b holding at least two entries.
	firstBucket := func(b []byte) int {
		o := func(j int) int {
			at := offAt + 4*j
			return int(uint32(b[at]) | uint32(b[at+1])<<8 | uint32(b[at+2])<<16 | uint32(b[at+3])<<24)
		}
		for j := range per {
			if o(j+1)-o(j) >= 2 {
				return entAt + 8*o(j)
			}
		}
		t.Fatal("no bucket with two entries")
		return 0
	}
	tests := []struct {
		name    string
		corrupt func(sh [][]byte) [][]byte
		want    string
	}{
		{"too few shards", func(sh [][]byte) [][]byte { return sh[:Shards-1] }, "got 255 shards"},
		{"too many shards", func(sh [][]byte) [][]byte { return append(sh, sh[0]) }, "got 257 shards"},
		{"nil shard", func(sh [][]byte) [][]byte { sh[9] = nil; return sh }, "shard 9: corrupt shard: truncated header"},
		{"truncated header", func(sh [][]byte) [][]byte { sh[3] = sh[3][:10]; return sh }, "truncated header"},
		{"truncated entries", func(sh [][]byte) [][]byte { sh[3] = sh[3][:len(sh[3])-8]; return sh }, "want"},
		{"truncated mid-entry", func(sh [][]byte) [][]byte { sh[3] = sh[3][:len(sh[3])-3]; return sh }, "want"},
		{"truncated offsets", func(sh [][]byte) [][]byte { sh[3] = sh[3][:100]; return sh }, "want"},
		{"trailing bytes", func(sh [][]byte) [][]byte { sh[3] = append(sh[3], make([]byte, 8)...); return sh }, "want"},
		{"wrong magic", func(sh [][]byte) [][]byte { sh[0][0] = 'X'; return sh }, "bad magic"},
		{"wrong version", func(sh [][]byte) [][]byte { sh[0][4] = 2; return sh }, "unsupported version 2"},
		{"B too small", func(sh [][]byte) [][]byte { sh[0][5] = 15; return sh }, "bucket bits 15 out of range"},
		{"B too large", func(sh [][]byte) [][]byte { sh[0][5] = 27; return sh }, "bucket bits 27 out of range"},
		{"B max", func(sh [][]byte) [][]byte { sh[0][5] = 255; return sh }, "bucket bits 255 out of range"},
		{"B differs between shards", func(sh [][]byte) [][]byte { sh[200][5] = 16; return sh }, "differ from shard 0"},
		{"wrong shard index", func(sh [][]byte) [][]byte { sh[4], sh[5] = sh[5], sh[4]; return sh }, "shard 4: corrupt shard: holds shard 5"},
		{"reserved byte", func(sh [][]byte) [][]byte { sh[0][7] = 1; return sh }, "reserved"},
		{"reserved word", func(sh [][]byte) [][]byte { sh[0][15] = 1; return sh }, "reserved"},
		{"padding", func(sh [][]byte) [][]byte { sh[0][entAt-1] = 1; return sh }, "padding"},
		{"count too large", func(sh [][]byte) [][]byte { le32(sh[0], 8, 1<<32-1); return sh }, "want"},
		{"first offset not zero", func(sh [][]byte) [][]byte { le32(sh[6], offAt, 1); return sh }, "offsets span [1,"},
		{"last offset not count", func(sh [][]byte) [][]byte { le32(sh[6], offAt+4*per, 1); return sh }, "offsets span"},
		{"offset out of range", func(sh [][]byte) [][]byte { le32(sh[6], offAt+4*(per/2), 1<<31); return sh }, "offsets decrease"},
		{"offsets decrease", func(sh [][]byte) [][]byte { le32(sh[6], offAt+4*(per-1), 0); return sh }, "offsets decrease"},
		{"entries unsorted", func(sh [][]byte) [][]byte {
			at := firstBucket(sh[8])
			a, b := slices.Clone(sh[8][at:at+8]), slices.Clone(sh[8][at+8:at+16])
			copy(sh[8][at:], b)
			copy(sh[8][at+8:], a)
			return sh
		}, "not strictly sorted"},
		{"duplicate entry", func(sh [][]byte) [][]byte {
			at := firstBucket(sh[8])
			copy(sh[8][at+8:at+16], sh[8][at:at+8])
			return sh
		}, "not strictly sorted"},
		{"entry outside its bucket", func(sh [][]byte) [][]byte {
			sh[8][entAt+5] ^= 0x80 // bit 47: the bucket bit stored when B = 17
			return sh
		}, "outside its bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, view := range []bool{true, false} {
				shards := tt.corrupt(shardsOf(s))
				inputs := [][][]byte{shards}
				if view && len(shards) == Shards {
					inputs = append(inputs, misaligned(shards))
				}
				for _, input := range inputs {
					got, err := fromShards(input, view)
					if err == nil {
						t.Fatalf("view=%v: loaded a corrupt set of %d entries", view, got.Len())
					}
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
						t.Fatalf("view=%v: error %q, want ErrCorrupt containing %q", view, err, tt.want)
					}
				}
			}
		})
	}
}
