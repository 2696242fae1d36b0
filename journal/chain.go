package journal

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
)

// Hash is a link of a stream's hash chain: the SHA-256 of the previous
// link, the record's sequence number and its canonical payload. A chain
// starts from Genesis, which names the school, the stream and the chain's
// random identity (a new one each time an edge starts an empty journal), so
// two chains never share a link.
//
// The chain is a property of the records, not of the files: segments keep
// it at every group commit and seal it with the edge's signature, the
// archive keeps every link, and an export carries, for each record, the
// link before it and its own, so any copy can be checked offline.
type Hash [32]byte

// String is the lowercase hex form used in manifests and exports.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads the hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("journal: hash %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("journal: hash %q: %w", s, err)
	}
	return h, nil
}

// ChainID identifies one chain of one stream of one school.
type ChainID [16]byte

// String is the hex form.
func (c ChainID) String() string { return hex.EncodeToString(c[:]) }

// ParseChainID reads the hex form.
func ParseChainID(s string) (ChainID, error) {
	var c ChainID
	if len(s) != 32 {
		return c, fmt.Errorf("journal: chain id %q: want 32 hex digits", s)
	}
	if _, err := hex.Decode(c[:], []byte(s)); err != nil {
		return c, fmt.Errorf("journal: chain id %q: %w", s, err)
	}
	return c, nil
}

// Genesis is the link before a chain's first record (sequence 1).
func Genesis(uai string, s Stream, id ChainID) Hash {
	h := sha256.New()
	h.Write([]byte("vigie journal chain v1\x00"))
	h.Write([]byte(uai))
	h.Write([]byte{0, byte(s)})
	h.Write(id[:])
	var out Hash
	h.Sum(out[:0])
	return out
}

// Chainer computes links without allocating; the zero value is not ready,
// use NewChainer. Not safe for concurrent use.
type Chainer struct {
	h hash.Hash
	// Scratch space inside the Chainer, so that nothing passed to the
	// hash escapes to the heap.
	prev, out Hash
	buf       [8]byte
}

// NewChainer returns a Chainer.
func NewChainer() *Chainer { return &Chainer{h: sha256.New()} }

// Link returns the link of the record with sequence number seq and
// canonical payload, following prev.
func (c *Chainer) Link(prev Hash, seq uint64, payload []byte) Hash {
	c.h.Reset()
	c.prev = prev
	c.h.Write(c.prev[:])
	binary.BigEndian.PutUint64(c.buf[:], seq)
	c.h.Write(c.buf[:])
	c.h.Write(payload)
	c.h.Sum(c.out[:0])
	return c.out
}

// Link is Chainer.Link for occasional use.
func Link(prev Hash, seq uint64, payload []byte) Hash {
	return NewChainer().Link(prev, seq, payload)
}
