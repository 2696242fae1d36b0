package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// The sync wire format lives here, next to the bundle layout it depends
// on: the control plane writes it (controlplane/publish) and the edge
// reads it (proxy/policysync), and neither reads a table row by raw offsets.

// DeltaContentType marks a response made of frames: each a little-endian
// u32 length then that many bytes, the first frame the signed manifest or
// a patch of the previous one (see ManifestPatch), the others whole
// sections (identified by their hash).
const DeltaContentType = "application/vnd.vigie.delta"

// PatchMagic starts a manifest patch.
const PatchMagic = "VIGIEPAT"

// The table row's fields (entrySize bytes each): name, offset, length,
// SHA-256. A patch carries a row's length and hash together, as the
// bytes from rowLen to the row's end.
const (
	rowOff  = 16
	rowLen  = 24
	rowHash = 32
	// patchRow is one changed row in a patch: its index (u32) then its
	// length and hash.
	patchRow = 4 + entrySize - rowLen
)

// row returns table row i of a manifest or bundle whose table the caller
// has checked holds it.
func row(data []byte, i int) []byte {
	return data[headerSize+i*entrySize : headerSize+(i+1)*entrySize]
}

// SectionSpan is where section i of a verified manifest says it sits in
// the bundle: its offset and length.
func SectionSpan(manifest []byte, i int) (off, size uint64) {
	r := row(manifest, i)
	return binary.LittleEndian.Uint64(r[rowOff:]), binary.LittleEndian.Uint64(r[rowLen:])
}

// SectionHash is the SHA-256 that row i of a verified manifest's table
// gives its section.
func SectionHash(manifest []byte, i int) [32]byte {
	return [32]byte(row(manifest, i)[rowHash:])
}

// SectionName is the name row i of a verified manifest's table gives
// its section.
func SectionName(manifest []byte, i int) string {
	name := row(manifest, i)[:nameSize]
	if j := bytes.IndexByte(name, 0); j >= 0 {
		name = name[:j]
	}
	return string(name)
}

// ManifestSize is the length of the signed head (header, section table,
// signature) of a bundle or manifest of n sections: where a manifest ends
// and a bundle's first section may start.
func ManifestSize(n int) int { return headerSize + entrySize*n + sigSize }

// Peek reads the serial and content hash a bundle or manifest claims,
// without verifying anything: it names a refused bundle. It returns 0 and
// "" for input shorter than a header.
func Peek(data []byte) (serial uint64, contentHash string) {
	if len(data) < headerSize {
		return 0, ""
	}
	return binary.LittleEndian.Uint64(data[16:]), hex.EncodeToString(data[32:64])
}

// ManifestPatch describes cur as changes to old, when both list the same
// sections by name in the same order (a policy change, not a format
// change): the new header, the new signature, then the number of changed
// table rows and, for each, its index (u32), length (u64) and SHA-256.
// Offsets are not sent: the layout derives them from the lengths. The
// receiver rebuilds the manifest and checks its signature, so a patch can
// only ever yield the manifest the académie signed. A one-domain change
// patches three rows: about 250 bytes instead of the 16 KiB table.
func ManifestPatch(old, cur []byte) ([]byte, bool) {
	_, os, err := ReadHeader(old, nil)
	if err != nil {
		return nil, false
	}
	_, ns, err := ReadHeader(cur, nil)
	if err != nil || len(os) != len(ns) {
		return nil, false
	}
	tableEnd := headerSize + entrySize*len(ns)
	if len(old) < tableEnd+sigSize || len(cur) < tableEnd+sigSize {
		return nil, false
	}
	out := append([]byte(PatchMagic), cur[:headerSize]...)
	out = append(out, cur[tableEnd:tableEnd+sigSize]...)
	var rows []byte
	n := 0
	for i := range ns {
		if os[i].Name != ns[i].Name {
			return nil, false
		}
		or, nr := row(old, i), row(cur, i)
		if string(or[rowLen:]) == string(nr[rowLen:]) { // same length and hash
			continue
		}
		rows = binary.LittleEndian.AppendUint32(rows, uint32(i))
		rows = append(rows, nr[rowLen:]...)
		n++
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(n))
	return append(out, rows...), true
}

// ApplyPatch applies patch to old, the manifest in force, and returns the
// new manifest. old was verified when its bundle was applied, so only its
// shape is checked here; the caller verifies the result's signature, which
// is what proves it.
func ApplyPatch(old, patch []byte) ([]byte, error) {
	if len(old) < headerSize {
		return nil, errors.New("no manifest in force to patch")
	}
	n := int(binary.LittleEndian.Uint32(old[12:]))
	if n > MaxSections {
		return nil, errors.New("manifest in force is corrupt")
	}
	tableEnd := headerSize + entrySize*n
	if len(old) != tableEnd+sigSize {
		return nil, errors.New("manifest in force has trailing bytes")
	}
	p, ok := cutPrefix(patch, PatchMagic)
	if !ok || len(p) < headerSize+sigSize+4 {
		return nil, errors.New("patch truncated")
	}
	newHeader, newSig := p[:headerSize], p[headerSize:headerSize+sigSize]
	if int(binary.LittleEndian.Uint32(newHeader[12:])) != n {
		return nil, errors.New("patch changes the number of sections")
	}
	changes := int(binary.LittleEndian.Uint32(p[headerSize+sigSize:]))
	rows := p[headerSize+sigSize+4:]
	if changes > n || len(rows) != changes*patchRow {
		return nil, fmt.Errorf("patch of %d rows in %d bytes", changes, len(rows))
	}
	out := make([]byte, len(old))
	copy(out, old)
	copy(out, newHeader)
	for i := 0; i < changes; i++ {
		r := rows[i*patchRow : (i+1)*patchRow]
		idx := int(binary.LittleEndian.Uint32(r))
		if idx >= n {
			return nil, fmt.Errorf("patch names row %d of %d", idx, n)
		}
		copy(row(out, idx)[rowLen:], r[4:])
	}
	// Offsets as Encode lays sections out: 8-byte aligned, in table
	// order, after the signature.
	off := uint64(align8(tableEnd + sigSize))
	for i := 0; i < n; i++ {
		e := row(out, i)
		off = (off + 7) &^ 7
		binary.LittleEndian.PutUint64(e[rowOff:], off)
		size := binary.LittleEndian.Uint64(e[rowLen:])
		if size > 1<<40 {
			return nil, errors.New("patch gives a section of absurd size")
		}
		off += size
	}
	copy(out[tableEnd:], newSig)
	return out, nil
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return nil, false
	}
	return b[len(prefix):], true
}

// IsPatch says whether the first frame of a delta is a manifest patch
// rather than a whole manifest.
func IsPatch(first []byte) bool {
	_, ok := cutPrefix(first, PatchMagic)
	return ok
}

// AppendFrame appends d to b as one frame of a delta answer.
func AppendFrame(b, d []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d)))
	return append(b, d...)
}

// SplitFrames reads a delta answer: frames of a little-endian u32 length
// and that many bytes. The first is the manifest or its patch (verified by
// the caller); the others are sections, indexed by their hash so that
// only those the manifest names are ever used.
func SplitFrames(b []byte) (first []byte, sections map[[32]byte][]byte, err error) {
	sections = map[[32]byte][]byte{}
	for isFirst := true; len(b) > 0; isFirst = false {
		if len(b) < 4 {
			return nil, nil, errors.New("delta answer: truncated frame length")
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, nil, fmt.Errorf("delta answer: frame of %d bytes, %d left", n, len(b))
		}
		f := b[:n:n]
		b = b[n:]
		if isFirst {
			first = f
			continue
		}
		if len(sections) >= MaxSections {
			return nil, nil, errors.New("delta answer: too many frames")
		}
		sections[sha256.Sum256(f)] = f
	}
	if first == nil {
		return nil, nil, errors.New("delta answer: empty")
	}
	return first, sections, nil
}
