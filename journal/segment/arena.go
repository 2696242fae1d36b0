package segment

import (
	"hash/maphash"
	"syscall"
	"unsafe"
)

// arena is memory outside the Go heap for one seal's columns,
// dictionaries and compressed body: a full segment's are megabytes, all
// dropped at once when the sealed file is written. From the heap they
// were garbage the size of the segment at every seal, and the collections
// they caused marked the whole heap at the data plane's expense; here
// nothing is collected, and reset gives the pages back to the kernel
// (MADV_DONTNEED) so that memory between seals stays what it was.
//
// The memory is only bytes and integers: nothing in it points into the
// Go heap, which the collector would not see. A nil *arena, or one that
// is full, allocates from the heap instead.
type arena struct {
	mem []byte
	off int
}

// sealArenaSize is the address space reserved for a seal: a 256 Ki-record
// DNS segment uses about 20 MiB of it (pages are only backed once
// touched). A larger seal continues on the heap.
const sealArenaSize = 256 << 20

// newArena reserves size bytes, or returns nil (the heap is used) when
// the kernel refuses.
func newArena(size int) *arena {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	return &arena{mem: mem}
}

// bytes returns an empty slice with capacity n.
func (a *arena) bytes(n int) []byte {
	if a == nil || n > len(a.mem)-a.off {
		return make([]byte, 0, n)
	}
	b := a.mem[a.off : a.off : a.off+n]
	a.off += n
	return b
}

// words returns n zeroed uint64s.
func (a *arena) words(n int) []uint64 {
	if a != nil {
		a.off = (a.off + 7) &^ 7
	}
	if a == nil || 8*n > len(a.mem)-a.off {
		return make([]uint64, n)
	}
	w := unsafe.Slice((*uint64)(unsafe.Pointer(&a.mem[a.off])), n)
	a.off += 8 * n
	// Fresh pages read as zero; pages used before a reset were given
	// back, so they read as zero too.
	return w
}

// reset forgets everything allocated (no slice from the arena may be used
// after it) and gives the pages back to the kernel.
func (a *arena) reset() {
	if a == nil || a.off == 0 {
		return
	}
	// Whole pages only: mem starts on a page boundary.
	end := (a.off + pageSize - 1) &^ (pageSize - 1)
	if err := syscall.Madvise(a.mem[:min(end, len(a.mem))], syscall.MADV_DONTNEED); err != nil {
		// The pages stay resident but must read as zero again.
		clear(a.mem[:a.off])
	}
	a.off = 0
}

// free unmaps the arena.
func (a *arena) free() {
	if a != nil {
		syscall.Munmap(a.mem)
		a.mem, a.off = nil, 0
	}
}

var pageSize = syscall.Getpagesize()

// dict gives each distinct value of a column its id (1, 2, ... in order of
// first appearance). The values themselves are in the column's chunks;
// the dictionary keeps their positions, in the arena, not strings in a
// map: a segment of DNS records holds a hundred thousand distinct names.
type dict struct {
	// slots is an open-addressing table: 0 is empty, else the value's
	// hash in the high 32 bits and its id in the low 32.
	slots []uint64
	// pos[id-1] is where the value is: chunk<<32 | offset<<16 | length.
	pos []uint64
	n   int
}

var dictSeed = maphash.MakeSeed()

// lookup returns the id of s, or 0 and the slot where it would go.
func (d *dict) lookup(col *column, s string) (uint32, int, uint32) {
	h := maphash.String(dictSeed, s)
	hi := uint32(h >> 32)
	if len(d.slots) == 0 {
		return 0, 0, hi
	}
	mask := len(d.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		e := d.slots[i]
		if e == 0 {
			return 0, i, hi
		}
		if uint32(e>>32) == hi {
			id := uint32(e)
			if col.at(d.pos[id-1]) == s {
				return id, i, hi
			}
		}
	}
}

// insert records s, just written to col at position p, under the next
// id, in the slot lookup returned, and returns the id.
func (d *dict) insert(a *arena, col *column, slot int, hi uint32, p uint64) uint32 {
	if 4*(d.n+1) > 3*len(d.slots) {
		d.grow(a, col)
		// The table changed: find the slot again (the value is new).
		mask := len(d.slots) - 1
		slot = -1
		for i := int(d.hashOf(col, p)) & mask; ; i = (i + 1) & mask {
			if d.slots[i] == 0 {
				slot = i
				break
			}
		}
	}
	if d.n == len(d.pos) {
		pos := a.words(max(2*len(d.pos), 16))
		copy(pos, d.pos)
		d.pos = pos
	}
	d.pos[d.n] = p
	d.n++
	id := uint32(d.n)
	d.slots[slot] = uint64(hi)<<32 | uint64(id)
	return id
}

func (d *dict) hashOf(col *column, p uint64) uint64 {
	return maphash.String(dictSeed, col.at(p))
}

// grow doubles the table (the old one stays in the arena until reset).
func (d *dict) grow(a *arena, col *column) {
	slots := a.words(max(2*len(d.slots), 16))
	mask := len(slots) - 1
	for id := 1; id <= d.n; id++ {
		h := d.hashOf(col, d.pos[id-1])
		i := int(h) & mask
		for slots[i] != 0 {
			i = (i + 1) & mask
		}
		slots[i] = uint64(uint32(h>>32))<<32 | uint64(id)
	}
	d.slots = slots
}
