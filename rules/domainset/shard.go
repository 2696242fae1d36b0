package domainset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"
)

// Shard byte layout, version 1. All integers little-endian; every section
// starts 8-byte aligned relative to the start of the shard.
//
//	off  size        field
//	0    4           magic "VGDS"
//	4    1           version (1)
//	5    1           B, bucket bits, 16..26, identical in all shards
//	6    1           shard index, 0..255 (must match the position)
//	7    1           reserved, 0
//	8    4           count: entries in this shard
//	12   4           reserved, 0
//	16   4*(P+1)     uint32 bucket start offsets, P = 2^(B-8) buckets;
//	                 offsets[0] = 0, non-decreasing, offsets[P] = count
//	..   4           padding, 0 (4*(P+1) is 4 mod 8)
//	..   8*count     uint64 entries set<<48 | key&(1<<48-1), sorted by key
//
// Only shard-local facts are in a shard: no global count, no checksum of the
// whole set, so a change in one shard leaves the other 255 byte-identical.
// Integrity is the bundle's job (it is signed and content-addressed); the
// reserved bytes and padding must be zero so that the encoding is canonical.
const (
	shardMagic    = "VGDS"
	shardVersion  = 1
	shardHeader   = 16
	shardPaddings = 4
)

// littleEndian reports whether the host stores integers little-endian, so
// that shard bytes can be viewed as []uint32/[]uint64 in place. Big-endian
// hosts decode into fresh slices instead.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// ErrCorrupt is wrapped by every FromShards error about malformed bytes.
var ErrCorrupt = errors.New("corrupt shard")

// shardSize returns the serialised size of a shard with count entries.
func shardSize(b uint, count uint64) uint64 {
	per := uint64(1) << (b - shardBits)
	return shardHeader + 4*(per+1) + shardPaddings + 8*count
}

// AppendShard appends the serialised shard i (0..Shards-1) to dst and returns
// the extended slice. The bytes depend only on B and the shard's entries, so
// the same content always produces the same bytes. It panics if i is out of
// range, like an index expression.
func (s *Set) AppendShard(dst []byte, i int) []byte {
	if i < 0 || i >= Shards {
		panic(fmt.Sprintf("domainset: shard %d out of range [0, %d)", i, Shards))
	}
	sh := &s.shards[i]
	size := int(shardSize(s.bits, uint64(len(sh.ent))))
	dst = slices.Grow(dst, size)
	start := len(dst)
	dst = dst[:start+size]
	out := dst[start:]
	clear(out[:shardHeader])
	copy(out, shardMagic)
	out[4] = shardVersion
	out[5] = byte(s.bits)
	out[6] = byte(i)
	binary.LittleEndian.PutUint32(out[8:], uint32(len(sh.ent)))
	p := shardHeader
	for _, o := range sh.off {
		binary.LittleEndian.PutUint32(out[p:], o)
		p += 4
	}
	binary.LittleEndian.PutUint32(out[p:], 0)
	p += shardPaddings
	for _, e := range sh.ent {
		binary.LittleEndian.PutUint64(out[p:], e)
		p += 8
	}
	return dst
}

// FromShards views the Shards shard byte slices without copying when each
// slice is 8-byte aligned (it copies a misaligned slice into an aligned
// buffer, and decodes on big-endian hosts). The Set then refers to the
// caller's bytes: they must stay unmodified for the life of the Set.
//
// Everything is validated before the Set is returned: header fields, exact
// lengths, offset bounds and monotonicity, strict key order within each bucket
// and each entry's membership of its bucket. Any malformed input yields an
// error wrapping ErrCorrupt, never a panic, and a Set that loads answers
// Lookup exactly as the Set that wrote it.
func FromShards(shards [][]byte) (*Set, error) {
	return fromShards(shards, littleEndian)
}

// fromShards is FromShards with the choice between viewing and decoding made
// explicit, so tests cover the big-endian path on little-endian machines.
func fromShards(shards [][]byte, view bool) (*Set, error) {
	if len(shards) != Shards {
		return nil, fmt.Errorf("domainset: %w: got %d shards, want %d", ErrCorrupt, len(shards), Shards)
	}
	var s *Set
	for i, b := range shards {
		h, err := parseHeader(b)
		if err == nil {
			if s == nil {
				s = newSet(h.bits)
			}
			err = s.loadShard(i, b, h, view)
		}
		if err != nil {
			return nil, fmt.Errorf("domainset: shard %d: %w", i, err)
		}
	}
	s.buildFilter()
	return s, nil
}

// header is the decoded fixed part of a shard.
type header struct {
	bits  uint
	index int
	count uint64
}

// parseHeader checks the fields of a shard header that need no context.
func parseHeader(b []byte) (header, error) {
	if len(b) < shardHeader {
		return header{}, fmt.Errorf("%w: truncated header: %d bytes", ErrCorrupt, len(b))
	}
	if string(b[:4]) != shardMagic {
		return header{}, fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:4])
	}
	if b[4] != shardVersion {
		return header{}, fmt.Errorf("%w: unsupported version %d", ErrCorrupt, b[4])
	}
	h := header{bits: uint(b[5]), index: int(b[6]), count: uint64(binary.LittleEndian.Uint32(b[8:]))}
	if h.bits < MinBucketBits || h.bits > MaxBucketBits {
		return header{}, fmt.Errorf("%w: bucket bits %d out of range [%d, %d]", ErrCorrupt, h.bits, MinBucketBits, MaxBucketBits)
	}
	if b[7] != 0 || binary.LittleEndian.Uint32(b[12:]) != 0 {
		return header{}, fmt.Errorf("%w: reserved header bytes not zero", ErrCorrupt)
	}
	return h, nil
}

// loadShard validates the body of shard i and installs it into s.
func (s *Set) loadShard(i int, b []byte, h header, view bool) error {
	if h.bits != s.bits {
		return fmt.Errorf("%w: bucket bits %d differ from shard 0's %d", ErrCorrupt, h.bits, s.bits)
	}
	if h.index != i {
		return fmt.Errorf("%w: holds shard %d", ErrCorrupt, h.index)
	}
	if want := shardSize(h.bits, h.count); uint64(len(b)) != want {
		return fmt.Errorf("%w: %d bytes, want %d for %d entries", ErrCorrupt, len(b), want, h.count)
	}
	per := int(s.mask) + 1
	offAt := shardHeader
	padAt := offAt + 4*(per+1)
	entAt := padAt + shardPaddings
	if binary.LittleEndian.Uint32(b[padAt:]) != 0 {
		return fmt.Errorf("%w: padding not zero", ErrCorrupt)
	}

	var sh shard
	if view {
		if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 != 0 {
			b = alignedCopy(b)
		}
		sh.off = unsafe.Slice((*uint32)(unsafe.Pointer(&b[offAt])), per+1)
		if h.count > 0 {
			sh.ent = unsafe.Slice((*uint64)(unsafe.Pointer(&b[entAt])), h.count)
		}
	} else {
		sh.off = make([]uint32, per+1)
		for j := range sh.off {
			sh.off[j] = binary.LittleEndian.Uint32(b[offAt+4*j:])
		}
		sh.ent = make([]uint64, h.count)
		for j := range sh.ent {
			sh.ent[j] = binary.LittleEndian.Uint64(b[entAt+8*j:])
		}
	}

	// Offsets first, whole table: once they are known to climb from 0 to
	// count, every bucket slice below is in bounds.
	if sh.off[0] != 0 || uint64(sh.off[per]) != h.count {
		return fmt.Errorf("%w: offsets span [%d, %d], want [0, %d]", ErrCorrupt, sh.off[0], sh.off[per], h.count)
	}
	for j := range per {
		if sh.off[j] > sh.off[j+1] {
			return fmt.Errorf("%w: bucket %d: offsets decrease from %d to %d", ErrCorrupt, j, sh.off[j], sh.off[j+1])
		}
	}
	// With B > 16, B-16 bits of the bucket number are stored inside the low
	// 48 bits of each entry; they must name the entry's own bucket, or
	// Lookup would never reach it and Each would report a key that is not
	// in the set.
	bb := s.bits
	inLow := uint64(1)<<(bb-16) - 1
	for j := range per {
		want := (uint64(i)<<(bb-shardBits) | uint64(j)) & inLow
		var prev uint64
		for k, e := range sh.ent[sh.off[j]:sh.off[j+1]] {
			low := e & lowMask
			if low>>(64-bb) != want {
				return fmt.Errorf("%w: bucket %d: entry %#x outside its bucket", ErrCorrupt, j, e)
			}
			if k > 0 && low <= prev {
				return fmt.Errorf("%w: bucket %d: entries not strictly sorted", ErrCorrupt, j)
			}
			prev = low
		}
	}
	s.shards[i] = sh
	s.n += len(sh.ent)
	s.held += len(b)
	return nil
}

// alignedCopy copies b into a fresh 8-byte-aligned buffer.
func alignedCopy(b []byte) []byte {
	words := make([]uint64, (len(b)+7)/8)
	out := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(b))
	copy(out, b)
	return out
}
