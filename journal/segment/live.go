package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"vigie/journal"
)

// A live segment is the file being appended to:
//
//	header: "VGJLIVE1" | stream u8 | chain id [16] | first seq u64 |
//	        prev link [32] | created µs i64 | uai len u8 | uai | crc32c u32
//	frames: record  'R' | len u32 | canonical payload | crc32c u32
//	        commit  'C' "VGJC" | records u64 | link [32] | crc32c u32
//
// Each frame's CRC covers the whole frame before it. A commit frame ends
// every group commit: it carries the number of records of the segment so
// far and the chain link after the last one, so the chain is on disk at
// every fsync even though records do not repeat the 32-byte link (that
// would cost more than the whole record once sealed segments are
// compressed; the link is a function of the records, see journal.Hash).
// All integers are little endian.

var (
	liveMagic   = []byte("VGJLIVE1")
	commitMagic = []byte("CVGJC")
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

const (
	// headerFixed is the header's length before the UAI; createdOff is
	// where its creation time starts.
	headerFixed    = 8 + 1 + 16 + 8 + 32 + 8 + 1
	createdOff     = 8 + 1 + 16 + 8 + 32
	tagRecord      = 'R'
	recordOverhead = 1 + 4 + 4
	commitSize     = 5 + 8 + 32 + 4
	maxUAI         = 64
)

// liveHeader is what a live segment starts with.
type liveHeader struct {
	Stream   journal.Stream
	Chain    journal.ChainID
	FirstSeq uint64
	Prev     journal.Hash
	Created  time.Time
	UAI      string
}

func (h *liveHeader) append(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, liveMagic...)
	dst = append(dst, byte(h.Stream))
	dst = append(dst, h.Chain[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, h.FirstSeq)
	dst = append(dst, h.Prev[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.Created.UnixMicro()))
	dst = append(dst, byte(len(h.UAI)))
	dst = append(dst, h.UAI...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseLiveHeader returns the header and its length.
func parseLiveHeader(b []byte) (liveHeader, int, error) {
	var h liveHeader
	// The reasons say what was expected and what was found: they end up
	// in the quarantine log line, which is all an operator has to tell a
	// crash from damage.
	if len(b) < headerFixed {
		return h, 0, fmt.Errorf("short header: %d bytes, want at least %d", len(b), headerFixed)
	}
	if !bytes.Equal(b[:8], liveMagic) {
		return h, 0, fmt.Errorf("not a live segment: magic %q, want %q", b[:8], liveMagic)
	}
	n := int(b[headerFixed-1])
	if n > maxUAI {
		return h, 0, fmt.Errorf("UAI length %d, at most %d", n, maxUAI)
	}
	end := headerFixed + n
	if len(b) < end+4 {
		return h, 0, fmt.Errorf("short header: %d bytes, want %d", len(b), end+4)
	}
	if got, want := binary.LittleEndian.Uint32(b[end:]), crc32.Checksum(b[:end], castagnoli); got != want {
		return h, 0, fmt.Errorf("header checksum %08x, computed %08x", got, want)
	}
	h.Stream = journal.Stream(b[8])
	copy(h.Chain[:], b[9:25])
	h.FirstSeq = binary.LittleEndian.Uint64(b[25:33])
	copy(h.Prev[:], b[33:65])
	h.Created = time.UnixMicro(int64(binary.LittleEndian.Uint64(b[65:73]))).UTC()
	h.UAI = string(b[headerFixed:end])
	if h.Stream != journal.Connexions && h.Stream != journal.Navigation {
		return h, 0, fmt.Errorf("unknown stream %d", h.Stream)
	}
	if h.FirstSeq == 0 {
		return h, 0, errors.New("first sequence 0")
	}
	return h, end + 4, nil
}

// appendRecordFrame appends a record frame holding the canonical encoding
// of r. It returns dst unchanged and false if the record is too large.
func appendRecordFrame(dst []byte, r *journal.Record) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, tagRecord, 0, 0, 0, 0)
	dst = journal.AppendRecord(dst, r)
	n := len(dst) - start - 5
	if n > journal.MaxPayload {
		return dst[:start], false
	}
	binary.LittleEndian.PutUint32(dst[start+1:], uint32(n))
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), true
}

func appendCommitFrame(dst []byte, records uint64, link journal.Hash) []byte {
	start := len(dst)
	dst = append(dst, commitMagic...)
	dst = binary.LittleEndian.AppendUint64(dst, records)
	dst = append(dst, link[:]...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// scanResult is what reading a live segment found.
type scanResult struct {
	Header liveHeader
	// Records is the number of valid records, Last the link after them.
	Records uint64
	Last    journal.Hash
	// End is the offset just after the last valid frame; Size the file's.
	End, Size int64
	// Committed is the number of records covered by the last commit frame.
	Committed uint64
	FirstTime time.Time
	LastTime  time.Time
}

// CorruptError reports damage that is not a torn tail: data after the
// damage was committed, so truncating would lose acknowledged records.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("journal segment %s: corrupt at byte %d: %s", e.File, e.Offset, e.Reason)
}

// scanFunc sees each valid record of a live segment: its sequence number,
// canonical payload and chain link. payload and r are only valid during
// the call (the payload is a view of the scanner's window).
type scanFunc func(seq uint64, payload []byte, r *journal.Record, link journal.Hash) error

// scanLive reads a live segment image, verifying every frame's CRC, every
// record's encoding, and the chain against every commit frame. fn, when
// not nil, sees each record with its sequence number, payload and link.
//
// Invalid bytes at the end are a torn tail (a write cut short by a crash):
// the result's End says where valid data stops. Invalid bytes followed by a
// valid commit frame are corruption of committed data: *CorruptError.
func scanLive(name string, b []byte, fn scanFunc) (scanResult, error) {
	return scanFrames(name, memSource(b), int64(len(b)), fn, false)
}

// scanLiveFile is scanLive over the first size bytes of a file, read
// through a window of a few hundred kilobytes instead of whole: sealing a
// full segment (tens of megabytes) then costs the heap only the window.
func scanLiveFile(name string, f io.ReaderAt, size int64, fn scanFunc) (scanResult, error) {
	return scanFrames(name, &fileSource{r: f, size: size, buf: make([]byte, 0, scanWindow)}, size, fn, false)
}

// sealScan and sealScanFile are scanLive and scanLiveFile for a batch
// builder: the record's host is a view of the payload (see
// journal.Decoder.HostViews), which the builder copies into its
// dictionary when it is new. fn must keep nothing else of the record.
func sealScan(name string, b []byte, fn scanFunc) (scanResult, error) {
	return scanFrames(name, memSource(b), int64(len(b)), fn, true)
}

// sealScanFile takes its window from a (nil: the heap).
func sealScanFile(name string, f io.ReaderAt, size int64, a *arena, fn scanFunc) (scanResult, error) {
	return scanFrames(name, &fileSource{r: f, size: size, buf: a.bytes(scanWindow)}, size, fn, true)
}

// maxFrame is the longest frame; scanWindow holds several.
const (
	maxFrame   = recordOverhead + journal.MaxPayload
	scanWindow = 4 * maxFrame
)

// frameSource gives a live segment's bytes from an offset on.
type frameSource interface {
	// at returns the bytes from off on: at least want of them, or all
	// that are left.
	at(off int64, want int) ([]byte, error)
	// rest returns every byte from off to the end (the damage check).
	rest(off int64) ([]byte, error)
}

type memSource []byte

func (m memSource) at(off int64, _ int) ([]byte, error) { return m[off:], nil }
func (m memSource) rest(off int64) ([]byte, error)      { return m[off:], nil }

// fileSource reads a file through one window, refilled from the offset
// asked for when it does not hold enough.
type fileSource struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	base int64 // file offset of buf[0]
}

func (f *fileSource) at(off int64, want int) ([]byte, error) {
	end := min(off+int64(want), f.size)
	if off >= f.base && end <= f.base+int64(len(f.buf)) {
		return f.buf[off-f.base:], nil
	}
	n := min(int64(cap(f.buf)), f.size-off)
	f.buf, f.base = f.buf[:n], off
	if err := readFull(f.r, f.buf, off); err != nil {
		f.buf = f.buf[:0]
		return nil, err
	}
	return f.buf, nil
}

func (f *fileSource) rest(off int64) ([]byte, error) {
	b := make([]byte, f.size-off)
	return b, readFull(f.r, b, off)
}

// readFull is ReadAt, for which a whole read that ends the file may also
// say io.EOF.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	return err
}

// hostViews makes the records' hosts views of the payload (the scan's
// window): only for a fn that copies what it keeps.
func scanFrames(name string, src frameSource, size int64, fn scanFunc, hostViews bool) (scanResult, error) {
	var res scanResult
	res.Size = size
	head, err := src.at(0, headerFixed+maxUAI+4)
	if err != nil {
		return res, err
	}
	h, hl, err := parseLiveHeader(head)
	if err != nil {
		// A header is written and synced before any record: a bad one
		// means the file was cut while being created, or damaged.
		return res, &CorruptError{File: name, Offset: 0, Reason: err.Error()}
	}
	res.Header = h
	res.Last = h.Prev
	res.End = int64(hl)
	ch := journal.NewChainer()
	// The decoder shares the values records repeat (school, protocol,
	// verdict, hosts): sealing decodes a whole segment.
	dec := journal.Decoder{HostViews: hostViews}
	var rec journal.Record
	for off := int64(hl); off < size; {
		// Every frame fits in maxFrame bytes: a window that short holds
		// the end of the file, so "short" below means what it says.
		b, err := src.at(off, maxFrame)
		if err != nil {
			return res, err
		}
		bad := ""
		switch {
		case b[0] == tagRecord:
			if len(b) < recordOverhead {
				bad = "short record frame"
				break
			}
			n := int(binary.LittleEndian.Uint32(b[1:]))
			if n > journal.MaxPayload || len(b) < recordOverhead+n {
				bad = fmt.Sprintf("record length %d", n)
				break
			}
			frame := b[:5+n]
			if got, want := binary.LittleEndian.Uint32(b[5+n:]), crc32.Checksum(frame, castagnoli); got != want {
				bad = fmt.Sprintf("record checksum %08x, computed %08x", got, want)
				break
			}
			payload := frame[5:]
			if err := dec.Decode(payload, &rec); err != nil {
				bad = err.Error()
				break
			}
			if rec.Stream != h.Stream {
				bad = fmt.Sprintf("record of stream %s in a %s segment", rec.Stream, h.Stream)
				break
			}
			seq := h.FirstSeq + res.Records
			res.Last = ch.Link(res.Last, seq, payload)
			res.Records++
			if res.FirstTime.IsZero() || rec.Time.Before(res.FirstTime) {
				res.FirstTime = rec.Time
			}
			if rec.Time.After(res.LastTime) {
				res.LastTime = rec.Time
			}
			if fn != nil {
				rec.Seq = seq
				if err := fn(seq, payload, &rec, res.Last); err != nil {
					return res, err
				}
			}
			off += int64(recordOverhead + n)
		case bytes.HasPrefix(b, commitMagic):
			if len(b) < commitSize {
				bad = "short commit frame"
				break
			}
			frame := b[:commitSize-4]
			if got, want := binary.LittleEndian.Uint32(b[commitSize-4:]), crc32.Checksum(frame, castagnoli); got != want {
				bad = fmt.Sprintf("commit checksum %08x, computed %08x", got, want)
				break
			}
			count := binary.LittleEndian.Uint64(frame[5:])
			var link journal.Hash
			copy(link[:], frame[13:45])
			if count != res.Records || link != res.Last {
				// The frame itself is intact, so the records before it
				// are not what was committed: tampering or a bug.
				return res, &CorruptError{File: name, Offset: off,
					Reason: fmt.Sprintf("commit says %d records ending with link %s, found %d ending with %s", count, link.String()[:16], res.Records, res.Last.String()[:16])}
			}
			res.Committed = count
			off += commitSize
		default:
			bad = fmt.Sprintf("unknown frame tag 0x%02x", b[0])
		}
		if bad != "" {
			// Torn tail or corruption? Committed data after this point
			// proves corruption. Only damage gets here: reading the
			// rest whole is fine.
			after, err := src.rest(off + 1)
			if err != nil {
				return res, err
			}
			if i := bytes.Index(after, commitMagic); i >= 0 && validCommitAfter(after[i:]) {
				return res, &CorruptError{File: name, Offset: off,
					Reason: fmt.Sprintf("%s, followed by a valid commit frame (file is %d bytes)", bad, size)}
			}
			return res, nil
		}
		res.End = off
	}
	return res, nil
}

// validCommitAfter reports whether b holds a valid commit frame at or after
// its start.
func validCommitAfter(b []byte) bool {
	for {
		if len(b) >= commitSize && crc32.Checksum(b[:commitSize-4], castagnoli) == binary.LittleEndian.Uint32(b[commitSize-4:]) {
			return true
		}
		i := bytes.Index(b[1:], commitMagic)
		if i < 0 {
			return false
		}
		b = b[1+i:]
	}
}
