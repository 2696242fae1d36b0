// Package bundle is the container a policy travels in from the académie to
// the schools: a small signed header that lists content-addressed sections,
// followed by the sections themselves, each 8-byte aligned so that the
// receiver can view them in place instead of parsing them.
//
// Layout (little-endian):
//
//	header   64 bytes: magic "VIGIEBND", version u16, flags u16, count u32,
//	         serial u64, created (Unix ns) i64, content hash [32]
//	table    count × 64 bytes: name [16] (NUL-padded), offset u64,
//	         length u64, SHA-256 [32]
//	sig      64 bytes: Ed25519 over header and table
//	sections each at an 8-byte aligned offset
//
// The content hash is the SHA-256 of the table, which holds the hash of
// every section: signing header and table therefore signs every byte, and
// an edge that already holds a section (same hash) need not fetch it again.
package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

const (
	magic      = "VIGIEBND"
	Version    = 1
	headerSize = 64
	entrySize  = 64
	sigSize    = ed25519.SignatureSize
	nameSize   = 16
	// MaxSections bounds the table so that a hostile count cannot make the
	// decoder allocate much.
	MaxSections = 1024
)

// Errors callers may test for with errors.Is.
var (
	ErrMagic     = errors.New("not a Vigie bundle (bad magic)")
	ErrVersion   = errors.New("unsupported bundle format version")
	ErrTruncated = errors.New("bundle truncated")
	ErrCorrupt   = errors.New("bundle corrupt")
	ErrHash      = errors.New("bundle content hash mismatch")
	ErrSignature = errors.New("bundle signature invalid")
)

// Section is one named, content-addressed part of a bundle.
type Section struct {
	Name string
	Data []byte
	Hash [32]byte
}

// Header is what a bundle says about itself.
type Header struct {
	Serial  uint64
	Created time.Time
	// Hash identifies the whole content (used as ETag).
	Hash [32]byte
}

// HashHex is the content hash in hexadecimal.
func (h Header) HashHex() string { return hex.EncodeToString(h.Hash[:]) }

// Bundle is a decoded, verified bundle. Section data alias the input.
type Bundle struct {
	Header
	Sections []Section
}

// Section returns the named section's data.
func (b *Bundle) Section(name string) ([]byte, bool) {
	for _, s := range b.Sections {
		if s.Name == name {
			return s.Data, true
		}
	}
	return nil, false
}

func align8(n int) int { return (n + 7) &^ 7 }

// Encode builds and signs a bundle from sections.
func Encode(serial uint64, created time.Time, sections []Section, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("bundle: encode: signing key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if len(sections) > MaxSections {
		return nil, fmt.Errorf("bundle: encode: %d sections, at most %d", len(sections), MaxSections)
	}
	seen := map[string]bool{}
	for _, s := range sections {
		if s.Name == "" || len(s.Name) > nameSize || bytes.IndexByte([]byte(s.Name), 0) >= 0 {
			return nil, fmt.Errorf("bundle: encode: bad section name %q", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("bundle: encode: duplicate section %q", s.Name)
		}
		seen[s.Name] = true
	}
	tableEnd := headerSize + entrySize*len(sections)
	off := align8(tableEnd + sigSize)
	size := off
	for _, s := range sections {
		size = align8(size) + len(s.Data)
	}
	out := make([]byte, size)
	copy(out, magic)
	binary.LittleEndian.PutUint16(out[8:], Version)
	binary.LittleEndian.PutUint32(out[12:], uint32(len(sections)))
	binary.LittleEndian.PutUint64(out[16:], serial)
	binary.LittleEndian.PutUint64(out[24:], uint64(created.UnixNano()))
	for i, s := range sections {
		off = align8(off)
		e := out[headerSize+i*entrySize:]
		copy(e[:nameSize], s.Name)
		binary.LittleEndian.PutUint64(e[16:], uint64(off))
		binary.LittleEndian.PutUint64(e[24:], uint64(len(s.Data)))
		h := sha256.Sum256(s.Data)
		copy(e[32:64], h[:])
		copy(out[off:], s.Data)
		off += len(s.Data)
	}
	content := sha256.Sum256(out[headerSize:tableEnd])
	copy(out[32:64], content[:])
	copy(out[tableEnd:], ed25519.Sign(key, out[:tableEnd]))
	return out, nil
}

// ReadHeader parses and verifies the signed header and table only: what an
// edge needs to learn which sections it lacks. pub may be nil to skip the
// signature (tools that only inspect).
func ReadHeader(data []byte, pub ed25519.PublicKey) (Header, []Section, error) {
	var keys []ed25519.PublicKey
	if pub != nil {
		keys = []ed25519.PublicKey{pub}
	}
	h, secs, _, err := readHeader(data, keys)
	return h, secs, err
}

// ReadHeaderKeys is ReadHeader for a receiver that pins several keys (an
// edge during a key rotation): the signature must verify with one of keys,
// whose index it returns. An empty keys is an error, never "unsigned is
// fine": skipping the signature is only ever asked for with ReadHeader(nil)
// or ReadTable.
func ReadHeaderKeys(data []byte, keys []ed25519.PublicKey) (Header, []Section, int, error) {
	if len(keys) == 0 {
		return Header{}, nil, -1, errors.New("bundle: no public key to verify the signature with")
	}
	return readHeader(data, keys)
}

// ReadTable is ReadHeader without the signature for a receiver that reads
// the table's rows in place (SectionSpan, SectionHash, SectionName)
// instead of as Sections: the same checks of layout and content hash, the
// header and the number of sections, and no allocation.
func ReadTable(data []byte) (Header, int, error) {
	return parseHead(data)
}

// ReadTableKeys is ReadHeaderKeys for a receiver that reads the table's
// rows in place: the signature must verify with one of keys, whose index
// it returns with the header and the number of sections. An empty keys
// is an error.
func ReadTableKeys(data []byte, keys []ed25519.PublicKey) (Header, int, int, error) {
	if len(keys) == 0 {
		return Header{}, 0, -1, errors.New("bundle: no public key to verify the signature with")
	}
	h, n, err := parseHead(data)
	if err != nil {
		return h, 0, -1, err
	}
	k, err := verify(data, n, keys)
	if err != nil {
		return Header{}, 0, -1, err
	}
	return h, n, k, nil
}

// readHeader parses the header and table, and checks the signature against
// keys unless there are none.
func readHeader(data []byte, keys []ed25519.PublicKey) (Header, []Section, int, error) {
	h, secs, err := parseHeader(data)
	if err != nil || len(keys) == 0 {
		return h, secs, -1, err
	}
	k, err := verify(data, len(secs), keys)
	if err != nil {
		return Header{}, nil, -1, err
	}
	return h, secs, k, nil
}

// verify checks the signature of a parsed head of n sections against
// keys, trying them in order (a rotation pins two or three: the cost of a
// refusal is one Ed25519 verification per key), and returns the index of
// the one that verifies.
func verify(data []byte, n int, keys []ed25519.PublicKey) (int, error) {
	tableEnd := headerSize + entrySize*n
	for i, pub := range keys {
		if len(pub) != ed25519.PublicKeySize {
			return -1, fmt.Errorf("bundle: public key %d has %d bytes, want %d", i, len(pub), ed25519.PublicKeySize)
		}
	}
	for i, pub := range keys {
		if ed25519.Verify(pub, data[:tableEnd], data[tableEnd:tableEnd+sigSize]) {
			return i, nil
		}
	}
	return -1, fmt.Errorf("bundle: %w", ErrSignature)
}

// parseHeader reads the header and table without looking at the signature.
func parseHeader(data []byte) (Header, []Section, error) {
	h, n, err := parseHead(data)
	if err != nil {
		return h, nil, err
	}
	secs := make([]Section, n)
	for i := range secs {
		e := data[headerSize+i*entrySize:]
		name := e[:nameSize]
		if j := bytes.IndexByte(name, 0); j >= 0 {
			name = name[:j]
		}
		secs[i].Name = string(name)
		copy(secs[i].Hash[:], e[32:64])
	}
	return h, secs, nil
}

// parseHead checks the header and the table's length and hash, and
// returns the header and the number of sections.
func parseHead(data []byte) (Header, int, error) {
	var h Header
	if len(data) < headerSize {
		return h, 0, fmt.Errorf("bundle: %w: %d bytes, the header alone is %d", ErrTruncated, len(data), headerSize)
	}
	if string(data[:8]) != magic {
		return h, 0, fmt.Errorf("bundle: %w", ErrMagic)
	}
	if v := binary.LittleEndian.Uint16(data[8:]); v != Version {
		return h, 0, fmt.Errorf("bundle: %w: %d (this program reads %d)", ErrVersion, v, Version)
	}
	n := binary.LittleEndian.Uint32(data[12:])
	if n > MaxSections {
		return h, 0, fmt.Errorf("bundle: %w: %d sections", ErrCorrupt, n)
	}
	tableEnd := headerSize + entrySize*int(n)
	if len(data) < tableEnd+sigSize {
		return h, 0, fmt.Errorf("bundle: %w: section table needs %d bytes, have %d", ErrTruncated, tableEnd+sigSize, len(data))
	}
	content := sha256.Sum256(data[headerSize:tableEnd])
	if !bytes.Equal(content[:], data[32:64]) {
		return h, 0, fmt.Errorf("bundle: %w", ErrHash)
	}
	h.Serial = binary.LittleEndian.Uint64(data[16:])
	h.Created = time.Unix(0, int64(binary.LittleEndian.Uint64(data[24:]))).UTC()
	copy(h.Hash[:], data[32:64])
	return h, int(n), nil
}

// Decode verifies a whole bundle (signature, content hash, every section's
// hash and bounds) and returns it. It never panics on bad input.
func Decode(data []byte, pub ed25519.PublicKey) (*Bundle, error) {
	h, secs, err := ReadHeader(data, pub)
	if err != nil {
		return nil, err
	}
	return decodeSections(data, h, secs)
}

// DecodeKeys is Decode for a receiver that pins several keys: it also
// returns the index in keys of the one that verified the signature (see
// ReadHeaderKeys).
func DecodeKeys(data []byte, keys []ed25519.PublicKey) (*Bundle, int, error) {
	h, secs, i, err := ReadHeaderKeys(data, keys)
	if err != nil {
		return nil, -1, err
	}
	b, err := decodeSections(data, h, secs)
	if err != nil {
		return nil, -1, err
	}
	return b, i, nil
}

// decodeSections checks every section of a bundle whose header and table
// were read (and verified) against its bounds and hash.
func decodeSections(data []byte, h Header, secs []Section) (*Bundle, error) {
	tableEnd := headerSize + entrySize*len(secs)
	for i := range secs {
		e := data[headerSize+i*entrySize:]
		off := binary.LittleEndian.Uint64(e[16:])
		n := binary.LittleEndian.Uint64(e[24:])
		if off < uint64(tableEnd+sigSize) || off%8 != 0 || off > uint64(len(data)) || n > uint64(len(data))-off {
			return nil, fmt.Errorf("bundle: %w: section %q at %d+%d outside the %d-byte file", ErrTruncated, secs[i].Name, off, n, len(data))
		}
		secs[i].Data = data[off : off+n : off+n]
		if sha256.Sum256(secs[i].Data) != secs[i].Hash {
			return nil, fmt.Errorf("bundle: %w: section %q", ErrHash, secs[i].Name)
		}
	}
	return &Bundle{Header: h, Sections: secs}, nil
}

// Manifest returns the signed head of an encoded bundle (header, table,
// signature): with it and the sections' bytes, Join rebuilds the bundle.
func Manifest(data []byte) ([]byte, error) {
	_, secs, err := ReadHeader(data, nil)
	if err != nil {
		return nil, err
	}
	return data[:headerSize+entrySize*len(secs)+sigSize], nil
}

// Join rebuilds a bundle from its manifest and its sections, fetched by
// hash with get (from a local cache or the control plane). The result is
// byte-identical to the original and still has to pass Decode.
func Join(manifest []byte, pub ed25519.PublicKey, get func(name string, hash [32]byte) ([]byte, error)) ([]byte, error) {
	_, secs, err := ReadHeader(manifest, pub)
	if err != nil {
		return nil, err
	}
	tableEnd := headerSize + entrySize*len(secs)
	if len(manifest) != tableEnd+sigSize {
		return nil, fmt.Errorf("bundle: %w: manifest of %d bytes, want %d", ErrCorrupt, len(manifest), tableEnd+sigSize)
	}
	datas := make([][]byte, len(secs))
	size := align8(tableEnd + sigSize)
	for i, s := range secs {
		e := manifest[headerSize+i*entrySize:]
		off := binary.LittleEndian.Uint64(e[16:])
		n := binary.LittleEndian.Uint64(e[24:])
		if off != uint64(align8(size)) || n > 1<<40 {
			return nil, fmt.Errorf("bundle: %w: section %q not where the layout puts it", ErrCorrupt, s.Name)
		}
		d, err := get(s.Name, s.Hash)
		if err != nil {
			return nil, fmt.Errorf("bundle: fetch section %q: %w", s.Name, err)
		}
		if uint64(len(d)) != n || sha256.Sum256(d) != s.Hash {
			return nil, fmt.Errorf("bundle: %w: fetched section %q", ErrHash, s.Name)
		}
		datas[i] = d
		size = align8(size) + len(d)
	}
	out := make([]byte, size)
	copy(out, manifest)
	off := align8(tableEnd + sigSize)
	for _, d := range datas {
		off = align8(off)
		copy(out[off:], d)
		off += len(d)
	}
	return out, nil
}
