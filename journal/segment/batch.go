package segment

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"vigie/journal"
)

// A batch is a signed, compressed run of consecutive records of one chain:
// a sealed segment is a batch written to disk (Final set), and the open tail
// shipped to the control plane is a batch too (Final unset). The same bytes
// travel from the edge's disk to the archive, which verifies them with the
// edge's public key before storing anything.
//
//	"VGJBAT01" | header | signature [64] | body
//	header: stream u8 | final u8 | uai len u8 | uai | chain id [16] |
//	        first seq u64 | count u32 | prev link [32] | last link [32] |
//	        min time µs i64 | max time µs i64 | sealed µs i64 |
//	        raw len u32 | body len u32 | body sha256 [32]
//
// The signature is Ed25519 over magic and header; the header fixes the
// body by its SHA-256, and the body, once inflated, must rebuild exactly
// count records whose chain goes from prev to last.

var batchMagic = []byte("VGJBAT01")

// Limits on what a batch may claim, so hostile input cannot make a reader
// allocate without bound.
const (
	MaxBatchRecords = 4 << 20
	maxRawLen       = 1 << 30
)

// Batch is a decoded batch header.
type Batch struct {
	Stream   journal.Stream
	Final    bool
	UAI      string
	Chain    journal.ChainID
	FirstSeq uint64
	Count    uint32
	Prev     journal.Hash
	Last     journal.Hash
	MinTime  time.Time
	MaxTime  time.Time
	Sealed   time.Time
	RawLen   uint32
	BodyLen  uint32
	BodyHash [32]byte
}

// LastSeq is the sequence number of the batch's last record.
func (b *Batch) LastSeq() uint64 { return b.FirstSeq + uint64(b.Count) - 1 }

func (b *Batch) appendHeader(dst []byte) []byte {
	dst = append(dst, batchMagic...)
	final := byte(0)
	if b.Final {
		final = 1
	}
	dst = append(dst, byte(b.Stream), final, byte(len(b.UAI)))
	dst = append(dst, b.UAI...)
	dst = append(dst, b.Chain[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, b.FirstSeq)
	dst = binary.LittleEndian.AppendUint32(dst, b.Count)
	dst = append(dst, b.Prev[:]...)
	dst = append(dst, b.Last[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(b.MinTime.UnixMicro()))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(b.MaxTime.UnixMicro()))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(b.Sealed.UnixMicro()))
	dst = binary.LittleEndian.AppendUint32(dst, b.RawLen)
	dst = binary.LittleEndian.AppendUint32(dst, b.BodyLen)
	return append(dst, b.BodyHash[:]...)
}

// BatchError says what is wrong with a batch; the archive answers it to
// the edge and records it.
type BatchError struct{ Reason string }

func (e *BatchError) Error() string { return "journal batch: " + e.Reason }

func batchErr(format string, args ...any) error {
	return &BatchError{Reason: fmt.Sprintf(format, args...)}
}

// ParseBatchHeader reads the header and checks the signature with pub (no
// check when pub is nil: use that only to learn who claims to have sent a
// batch before looking up their key). It returns the header and the body.
func ParseBatchHeader(data []byte, pub ed25519.PublicKey) (*Batch, []byte, error) {
	b, hdrEnd, err := parseHeader(data, int64(len(data)), pub)
	if err != nil {
		return nil, nil, err
	}
	return b, data[hdrEnd:], nil
}

// parseHeader parses the header and signature at the start of head, for a
// batch of total bytes, and returns where the body starts.
func parseHeader(head []byte, total int64, pub ed25519.PublicKey) (*Batch, int, error) {
	const fixedA = 8 + 3
	if len(head) < fixedA || !bytes.Equal(head[:8], batchMagic) {
		return nil, 0, batchErr("bad magic (not a Vigie journal batch)")
	}
	var b Batch
	b.Stream = journal.Stream(head[8])
	if b.Stream != journal.Connexions && b.Stream != journal.Navigation {
		return nil, 0, batchErr("unknown stream %d", head[8])
	}
	switch head[9] {
	case 0:
	case 1:
		b.Final = true
	default:
		return nil, 0, batchErr("bad final flag %d", head[9])
	}
	n := int(head[10])
	const fixedB = 16 + 8 + 4 + 32 + 32 + 8 + 8 + 8 + 4 + 4 + 32
	if n > maxUAI || len(head) < fixedA+n+fixedB+ed25519.SignatureSize {
		return nil, 0, batchErr("short header")
	}
	p := head[fixedA:]
	b.UAI = string(p[:n])
	p = p[n:]
	copy(b.Chain[:], p)
	b.FirstSeq = binary.LittleEndian.Uint64(p[16:])
	b.Count = binary.LittleEndian.Uint32(p[24:])
	copy(b.Prev[:], p[28:60])
	copy(b.Last[:], p[60:92])
	b.MinTime = time.UnixMicro(int64(binary.LittleEndian.Uint64(p[92:]))).UTC()
	b.MaxTime = time.UnixMicro(int64(binary.LittleEndian.Uint64(p[100:]))).UTC()
	b.Sealed = time.UnixMicro(int64(binary.LittleEndian.Uint64(p[108:]))).UTC()
	b.RawLen = binary.LittleEndian.Uint32(p[116:])
	b.BodyLen = binary.LittleEndian.Uint32(p[120:])
	copy(b.BodyHash[:], p[124:156])
	hdrEnd := fixedA + n + fixedB
	sig := head[hdrEnd : hdrEnd+ed25519.SignatureSize]
	bodyStart := hdrEnd + ed25519.SignatureSize
	switch {
	case b.FirstSeq == 0:
		return nil, 0, batchErr("first sequence 0")
	case b.Count == 0 || b.Count > MaxBatchRecords:
		return nil, 0, batchErr("record count %d", b.Count)
	case b.FirstSeq+uint64(b.Count) < b.FirstSeq:
		return nil, 0, batchErr("sequence overflow")
	case b.RawLen > maxRawLen:
		return nil, 0, batchErr("raw length %d", b.RawLen)
	case int64(b.BodyLen) != total-int64(bodyStart):
		return nil, 0, batchErr("body is %d bytes, header says %d", total-int64(bodyStart), b.BodyLen)
	}
	if pub != nil && !ed25519.Verify(pub, head[:hdrEnd], sig) {
		return nil, 0, batchErr("bad signature (not signed by the edge of %s)", b.UAI)
	}
	return &b, bodyStart, nil
}

// DecodeBatch verifies a batch completely: signature (when pub is not nil),
// body hash, every record's encoding, and the chain from Prev to Last. fn
// sees each record, its canonical payload and its link, in order; r and
// payload are only valid during the call.
//
// The archive runs this on every batch it ingests and every block a
// search reads, so the loop avoids work per record: the body is inflated
// into a pooled buffer by a pooled reader, and each link is one SHA-256
// over one buffer that holds the previous link, the sequence number and
// the payload encoded right after them.
func DecodeBatch(data []byte, pub ed25519.PublicKey, fn func(r *journal.Record, payload []byte, link journal.Hash) error) (*Batch, error) {
	b, body, err := ParseBatchHeader(data, pub)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(body) != b.BodyHash {
		return nil, batchErr("body hash mismatch (segment %d of %s %s altered)", b.FirstSeq, b.UAI, b.Stream)
	}
	raw, err := inflate(body, int(b.RawLen))
	if err != nil {
		return nil, batchErr("body: %v", err)
	}
	// Nothing decoded keeps a reference into raw: the column reader
	// copies every value it returns.
	defer putRaw(raw)
	cols, err := newColumnReader(*raw, int(b.Count))
	if err != nil {
		return nil, batchErr("body: %v", err)
	}
	link := b.Prev
	// linked is link(n-1) | uint64be(n) | payload(n): SHA-256 of it is
	// link(n) (journal.Chainer's definition, without its copies).
	linked := make([]byte, chainPrefix, chainPrefix+512)
	var r journal.Record
	for i := uint32(0); i < b.Count; i++ {
		if err := cols.next(&r); err != nil {
			return nil, batchErr("record %d: %v", b.FirstSeq+uint64(i), err)
		}
		if r.Stream != b.Stream {
			return nil, batchErr("record %d: stream %s in a %s batch", b.FirstSeq+uint64(i), r.Stream, b.Stream)
		}
		seq := b.FirstSeq + uint64(i)
		copy(linked, link[:])
		binary.BigEndian.PutUint64(linked[len(link):chainPrefix], seq)
		// The reader gives only canonical values (text checked as it
		// enters its dictionaries): no need to clean them again.
		linked = journal.AppendCanonical(linked[:chainPrefix], &r)
		link = sha256.Sum256(linked)
		r.Seq = seq
		if fn != nil {
			if err := fn(&r, linked[chainPrefix:], link); err != nil {
				return nil, err
			}
		}
	}
	if err := cols.done(); err != nil {
		return nil, batchErr("body: %v", err)
	}
	if link != b.Last {
		return nil, batchErr("chain broken: records %d-%d do not end with the sealed link", b.FirstSeq, b.LastSeq())
	}
	return b, nil
}

// chainPrefix is what a link hashes before the payload: the previous
// link and the sequence number.
const chainPrefix = len(journal.Hash{}) + 8

// inflaters are deflate readers kept between batches: a new one
// allocates its tables and its 32 KiB window.
var inflaters sync.Pool

type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser
}

// raws are inflated bodies kept between batches (a sealed segment's is a
// few megabytes); larger ones are left to the collector.
var raws sync.Pool

const maxPooledRaw = 32 << 20

func putRaw(raw *[]byte) {
	if cap(*raw) <= maxPooledRaw {
		raws.Put(raw)
	}
}

// getInflater returns a pooled deflate reader of body.
func getInflater(body []byte) *inflater {
	inf, _ := inflaters.Get().(*inflater)
	if inf == nil {
		inf = &inflater{}
		inf.src.Reset(body)
		inf.zr = kflate.NewReader(&inf.src)
	} else {
		inf.src.Reset(body)
		inf.zr.(kflate.Resetter).Reset(&inf.src, nil)
	}
	return inf
}

func putInflater(inf *inflater) {
	inf.src.Reset(nil)
	inflaters.Put(inf)
}

// inflate inflates body, which must give exactly rawLen bytes, into a
// pooled buffer the caller gives back with putRaw.
func inflate(body []byte, rawLen int) (*[]byte, error) {
	inf := getInflater(body)
	defer putInflater(inf)
	raw, _ := raws.Get().(*[]byte)
	if raw == nil {
		raw = new([]byte)
	}
	if cap(*raw) < rawLen {
		// The header's claim is only trusted up to what a batch may
		// hold; beyond the first 64 MiB the buffer grows as data comes.
		*raw = make([]byte, 0, min(rawLen, 64<<20))
	}
	buf := (*raw)[:0]
	for len(buf) < rawLen {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := inf.zr.Read(buf[len(buf):min(cap(buf), rawLen)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*raw = buf
			putRaw(raw)
			return nil, err
		}
	}
	*raw = buf
	if len(buf) != rawLen {
		putRaw(raw)
		return nil, fmt.Errorf("inflated %d bytes, header says %d", len(buf), rawLen)
	}
	// Read one byte more than announced to detect a lie without
	// inflating a bomb, and reach the stream's end to check its last
	// block.
	var one [1]byte
	if n, err := io.ReadAtLeast(inf.zr, one[:], 1); n > 0 || err != io.EOF {
		putRaw(raw)
		if n > 0 {
			return nil, fmt.Errorf("inflated more than the %d bytes the header says", rawLen)
		}
		return nil, err
	}
	return raw, nil
}

// batchBuilder accumulates records and produces a signed batch.
type batchBuilder struct {
	b    Batch
	cols columnWriter
	ch   *journal.Chainer
	// zw, when set, is the deflate writer finish reuses (made at the
	// level finish is given).
	zw *kflate.Writer
}

func newBatchBuilder(uai string, s journal.Stream, chain journal.ChainID, firstSeq uint64, prev journal.Hash) *batchBuilder {
	bb := &batchBuilder{ch: journal.NewChainer()}
	bb.b = Batch{Stream: s, UAI: uai, Chain: chain, FirstSeq: firstSeq, Prev: prev, Last: prev}
	bb.cols.init(nil)
	return bb
}

// inArena makes bb keep its columns, dictionaries and sealed bytes in a
// (see arena); call it before adding any record. The batch finish returns
// is then valid only until a is reset.
func (bb *batchBuilder) inArena(a *arena) *batchBuilder {
	bb.cols.init(a)
	return bb
}

// sealReuse is what the sealer keeps from one seal to the next: the arena
// and the deflate writer (about a megabyte of tables and window, which
// each seal otherwise allocated anew and left to the collector). A nil
// *sealReuse builds on the heap.
type sealReuse struct {
	a  *arena
	zw *kflate.Writer
}

// builder returns a batch builder that uses r's arena and writer.
func (r *sealReuse) builder(bb *batchBuilder) *batchBuilder {
	if r == nil {
		return bb
	}
	bb.zw = r.zw
	return bb.inArena(r.a)
}

// add appends one decoded record whose canonical payload is payload.
func (bb *batchBuilder) add(r *journal.Record, payload []byte) {
	seq := bb.b.FirstSeq + uint64(bb.b.Count)
	bb.addLinked(r, bb.ch.Link(bb.b.Last, seq, payload))
}

// addLinked appends one decoded record whose link (computed by whoever
// verified it, scanLive) is link: the chain is hashed once per record.
func (bb *batchBuilder) addLinked(r *journal.Record, link journal.Hash) {
	bb.b.Last = link
	bb.b.Count++
	if bb.b.MinTime.IsZero() || r.Time.Before(bb.b.MinTime) {
		bb.b.MinTime = r.Time
	}
	if r.Time.After(bb.b.MaxTime) {
		bb.b.MaxTime = r.Time
	}
	bb.cols.add(r)
}

// finish compresses and signs the batch. The header's length does not
// depend on its values, so the body is deflated straight after room left
// for the header and signature, which are filled in last: sealing a full
// segment neither joins its columns into one buffer nor copies the body.
func (bb *batchBuilder) finish(final bool, sealed time.Time, key ed25519.PrivateKey, level int) ([]byte, *Batch, error) {
	if bb.b.Count == 0 {
		return nil, nil, errors.New("journal batch: no records")
	}
	b := bb.b
	b.Final = final
	b.Sealed = sealed
	head := len(b.appendHeader(nil)) + ed25519.SignatureSize
	raw := bb.cols.size()
	// Sealed records are a fraction of their columns (TestSealedSize):
	// a quarter avoids most regrowth without holding much unused.
	out := bytes.NewBuffer(bb.cols.arena.bytes(head + raw/4 + 4096)[:head])
	zw := bb.zw
	if zw != nil {
		zw.Reset(out)
	} else {
		var err error
		if zw, err = kflate.NewWriter(out, level); err != nil {
			return nil, nil, err
		}
	}
	if err := bb.cols.writeTo(zw); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	data := out.Bytes()
	body := data[head:]
	b.RawLen = uint32(raw)
	b.BodyLen = uint32(len(body))
	b.BodyHash = sha256.Sum256(body)
	hdr := b.appendHeader(data[:0])
	copy(data[len(hdr):head], ed25519.Sign(key, hdr))
	return data, &b, nil
}

// BatchPrefixLen is how many bytes BatchHeadLen needs.
const BatchPrefixLen = 8 + 3

// BatchHeadLen says, from a batch's first BatchPrefixLen bytes, how long its
// magic, header and signature are: a receiver reads that much, learns the
// whole length with BatchLen and checks it before reading the body.
func BatchHeadLen(prefix []byte) (int, error) {
	if len(prefix) < BatchPrefixLen || !bytes.Equal(prefix[:8], batchMagic) {
		return 0, batchErr("bad magic (not a Vigie journal batch)")
	}
	n := int(prefix[10])
	if n > maxUAI {
		return 0, batchErr("short header")
	}
	return BatchPrefixLen + n + batchFixedLen + ed25519.SignatureSize, nil
}

// batchFixedLen is the header after the UAI (see the layout above).
const batchFixedLen = 16 + 8 + 4 + 32 + 32 + 8 + 8 + 8 + 4 + 4 + 32

// BatchLen is the whole length a batch claims, from its head (the
// BatchHeadLen first bytes). Nothing is verified: the claim only bounds
// what a receiver agrees to read.
func BatchLen(head []byte) (int64, error) {
	hl, err := BatchHeadLen(head)
	if err != nil {
		return 0, err
	}
	if len(head) < hl {
		return 0, batchErr("short header")
	}
	bodyLen := binary.LittleEndian.Uint32(head[hl-ed25519.SignatureSize-32-4:])
	return int64(hl) + int64(bodyLen), nil
}
