package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
	"unicode/utf8"
	"unsafe"

	"vigie/journal"
)

// The body of a batch stores records column by column before deflate:
// times as deltas, text and addresses through a per-batch dictionary (a
// school sees a few thousand hosts and a few hundred clients a day, so
// most values are one- or two-byte references), ports as two raw bytes.
// Like values then sit next to each other and deflate does the rest; this
// is what brings a sealed record well under 40 bytes.

const (
	colStream = iota
	colTime
	colUAI
	colClient
	colClientPort
	colMAC
	colUser
	colNAT
	colNATPort
	colProto
	colDest
	colDestPort
	colDuration
	colBytesIn
	colBytesOut
	colHost
	colURL
	colMethod
	colQType
	colRCode
	colStatus
	colVerdict
	colCategory
	colReference
	colLatency
	colLost
	numCols
)

// The flow columns (zone, drop reason, link) follow the others only in a
// batch where some record has one: batches written before they existed,
// and batches of the DNS filter and proxy alone, keep their layout.
const (
	colZone = numCols + iota
	colReason
	colLink
	numAllCols
)

type columnWriter struct {
	cols  [numAllCols]column
	dicts [numAllCols]dict
	// arena holds the columns and dictionaries (nil: the heap).
	arena *arena
	// last and lastID remember each column's previous value: most repeat
	// from one record to the next (school, protocol, verdict, client),
	// and comparing strings that the decoder shares is cheaper than
	// hashing them. lastAddr does the same for the address columns.
	last     [numAllCols]string
	lastID   [numAllCols]uint32
	prev     [numAllCols]string
	prevID   [numAllCols]uint32
	lastAddr [numAllCols]netip.Addr
	// lastView is the copy of the last value written by view (one
	// column: the host).
	lastView []byte
	// flows is set once a record has a flow field: the flow columns are
	// written from then on (a DNS or proxy batch never holds them).
	flows    bool
	records  int
	lastTime int64
	scratch  []byte
}

// init makes the writer allocate its columns and dictionaries in a (nil:
// the heap). Nothing is allocated yet.
func (w *columnWriter) init(a *arena) {
	w.arena = a
	for i := range w.cols {
		w.cols[i].a = a
	}
}

func (w *columnWriter) str(c int, s string) {
	if id := w.lastID[c]; id != 0 && s == w.last[c] {
		w.cols[c].uvarint(uint64(id))
		return
	}
	// Verdicts, response codes and categories alternate between two
	// values: the one before last saves a dictionary lookup.
	if id := w.prevID[c]; id != 0 && s == w.prev[c] {
		w.cols[c].uvarint(uint64(id))
		w.last[c], w.prev[c] = w.prev[c], w.last[c]
		w.lastID[c], w.prevID[c] = id, w.lastID[c]
		return
	}
	w.prev[c], w.prevID[c] = w.last[c], w.lastID[c]
	w.last[c], w.lastID[c] = s, w.ref(c, s)
}

// view is str for a value that may be a view of a buffer the caller
// reuses (the sealer's hosts are views of its read window, see sealScan):
// the last value is remembered as a copy, and the dictionary copies a
// new value.
func (w *columnWriter) view(c int, s string) {
	if id := w.lastID[c]; id != 0 && s == string(w.lastView) {
		w.cols[c].uvarint(uint64(id))
		return
	}
	w.lastID[c] = w.ref(c, s)
	w.lastView = append(w.lastView[:0], s...)
}

// ref writes the reference to s, or s itself the first time, and returns
// its id.
func (w *columnWriter) ref(c int, s string) uint32 {
	col, d := &w.cols[c], &w.dicts[c]
	id, slot, hi := d.lookup(col, s)
	if id != 0 {
		col.uvarint(uint64(id))
		return id
	}
	col.uvarint(0)
	col.uvarint(uint64(len(s)))
	// The dictionary points at the copy just written into the column
	// (chunks never move, and written bytes never change): no second
	// copy per value.
	return d.insert(w.arena, col, slot, hi, col.text(s))
}

func (w *columnWriter) addr(c, portCol int, ap netip.AddrPort) {
	w.cols[portCol].uint16(ap.Port())
	a := ap.Addr()
	if id := w.lastID[c]; id != 0 && a == w.lastAddr[c] {
		w.cols[c].uvarint(uint64(id))
		return
	}
	b := w.scratch[:0]
	switch {
	case !a.IsValid():
		b = append(b, 0)
	case a.Is4():
		v := a.As4()
		b = append(append(b, 4), v[:]...)
	case a.Zone() != "":
		v := a.As16()
		b = append(append(b, 7), v[:]...)
		b = append(b, a.Zone()...)
	default:
		v := a.As16()
		b = append(append(b, 6), v[:]...)
	}
	w.scratch = b
	// ref copies b into the column when it is new: the view need not
	// outlive the call.
	w.lastAddr[c], w.lastID[c] = a, w.ref(c, unsafe.String(&b[0], len(b)))
}

func (w *columnWriter) int(c int, v int64) { w.cols[c].varint(v) }

func (w *columnWriter) add(r *journal.Record) {
	w.cols[colStream].byte(byte(r.Stream))
	t := r.Time.UnixMicro()
	w.int(colTime, t-w.lastTime)
	w.lastTime = t
	w.str(colUAI, r.UAI)
	w.addr(colClient, colClientPort, r.Client)
	w.str(colMAC, r.MAC)
	w.str(colUser, r.User)
	w.addr(colNAT, colNATPort, r.NAT)
	w.str(colProto, r.Proto)
	w.addr(colDest, colDestPort, r.Dest)
	w.int(colDuration, r.Duration.Microseconds())
	w.int(colBytesIn, r.BytesIn)
	w.int(colBytesOut, r.BytesOut)
	w.view(colHost, r.Host)
	w.str(colURL, r.URL)
	w.str(colMethod, r.Method)
	w.str(colQType, r.QType)
	w.str(colRCode, r.RCode)
	w.int(colStatus, int64(r.Status))
	w.str(colVerdict, r.Verdict)
	w.str(colCategory, r.Category)
	w.str(colReference, r.Reference)
	w.int(colLatency, r.UpstreamLatency.Microseconds())
	w.int(colLost, r.Lost)
	if !w.flows && (r.Zone != "" || r.Reason != "" || r.Link != "") {
		// The first flow record: the records before it had empty flow
		// fields, written now as they would have been one by one.
		w.flows = true
		for c := colZone; c <= colLink; c++ {
			for range w.records {
				w.str(c, "")
			}
		}
	}
	if w.flows {
		w.str(colZone, r.Zone)
		w.str(colReason, r.Reason)
		w.str(colLink, r.Link)
	}
	w.records++
}

// columns are the columns a batch stores: the flow columns only when some
// record has one.
func (w *columnWriter) columns() []column {
	if w.flows {
		return w.cols[:]
	}
	return w.cols[:numCols]
}

// size is the length of the column bytes (see bytes).
func (w *columnWriter) size() int {
	n := 0
	cols := w.columns()
	for i := range cols {
		n += uvarintLen(uint64(cols[i].n)) + cols[i].n
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// writeTo writes the column bytes (see bytes) to dst piece by piece.
func (w *columnWriter) writeTo(dst io.Writer) error {
	var lb [binary.MaxVarintLen64]byte
	cols := w.columns()
	for i := range cols {
		if _, err := dst.Write(binary.AppendUvarint(lb[:0], uint64(cols[i].n))); err != nil {
			return err
		}
		for _, p := range cols[i].chunks {
			if _, err := dst.Write(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// bytes is every column, each preceded by its length: the body of a batch
// before deflate.
func (w *columnWriter) bytes() []byte {
	var b bytes.Buffer
	b.Grow(w.size())
	w.writeTo(&b)
	return b.Bytes()
}

// column is one column's bytes, in chunks that are never moved: a full
// segment's columns reach megabytes, and a slice grown by append would
// hold up to twice its length and leave each smaller copy to the
// collector. Chunks start small (a shipped tail holds a few records) and
// double up to columnChunk.
type column struct {
	chunks [][]byte
	n      int
	a      *arena
}

const columnChunk = 16 << 10

// room returns the last chunk with room for k more bytes.
func (c *column) room(k int) *[]byte {
	if len(c.chunks) > 0 {
		if last := &c.chunks[len(c.chunks)-1]; cap(*last)-len(*last) >= k {
			return last
		}
	}
	size := 256
	if len(c.chunks) > 0 {
		size = min(2*cap(c.chunks[len(c.chunks)-1]), columnChunk)
	}
	c.chunks = append(c.chunks, c.a.bytes(max(size, k)))
	return &c.chunks[len(c.chunks)-1]
}

func (c *column) uvarint(v uint64) {
	p := c.room(binary.MaxVarintLen64)
	n := len(*p)
	*p = binary.AppendUvarint(*p, v)
	c.n += len(*p) - n
}

func (c *column) varint(v int64) {
	p := c.room(binary.MaxVarintLen64)
	n := len(*p)
	*p = binary.AppendVarint(*p, v)
	c.n += len(*p) - n
}

func (c *column) byte(v byte) {
	p := c.room(1)
	*p = append(*p, v)
	c.n++
}

func (c *column) uint16(v uint16) {
	p := c.room(2)
	*p = binary.BigEndian.AppendUint16(*p, v)
	c.n += 2
}

// text appends s and returns where it is (see at): the bytes are never
// written again, and a chunk never moves. A chunk holds at most
// columnChunk bytes or one value (at most journal.MaxURL), so offsets and
// lengths fit in 16 bits.
func (c *column) text(s string) uint64 {
	if s == "" {
		return 0
	}
	p := c.room(len(s))
	start := len(*p)
	*p = append(*p, s...)
	c.n += len(s)
	return uint64(len(c.chunks)-1)<<32 | uint64(start)<<16 | uint64(len(s))
}

// at returns the value that text wrote at position p.
func (c *column) at(p uint64) string {
	n := int(p & 0xffff)
	if n == 0 {
		return ""
	}
	return unsafe.String(&c.chunks[p>>32][(p>>16)&0xffff], n)
}

type columnReader struct {
	cols     [numAllCols][]byte
	dicts    [numAllCols][]string
	flows    bool
	lastTime int64
}

func newColumnReader(raw []byte, count int) (*columnReader, error) {
	cr := &columnReader{}
	for i := range cr.cols {
		if i == numCols {
			if len(raw) == 0 {
				break
			}
			cr.flows = true
		}
		n, k := binary.Uvarint(raw)
		if k <= 0 || n > uint64(len(raw)-k) {
			return nil, fmt.Errorf("column %d: bad length", i)
		}
		cr.cols[i] = raw[k : k+int(n)]
		raw = raw[k+int(n):]
	}
	if len(raw) != 0 {
		return nil, fmt.Errorf("%d bytes after the columns", len(raw))
	}
	if len(cr.cols[colStream]) != count {
		return nil, fmt.Errorf("stream column holds %d records, header says %d", len(cr.cols[colStream]), count)
	}
	return cr, nil
}

var errColumn = errors.New("bad column data")

func (cr *columnReader) uvarint(c int) (uint64, error) {
	v, k := binary.Uvarint(cr.cols[c])
	if k <= 0 {
		return 0, fmt.Errorf("column %d: %w", c, errColumn)
	}
	cr.cols[c] = cr.cols[c][k:]
	return v, nil
}

func (cr *columnReader) int(c int) (int64, error) {
	v, k := binary.Varint(cr.cols[c])
	if k <= 0 {
		return 0, fmt.Errorf("column %d: %w", c, errColumn)
	}
	cr.cols[c] = cr.cols[c][k:]
	return v, nil
}

func (cr *columnReader) str(c, max int) (string, error) { return cr.value(c, max, true) }

// value reads a dictionary-coded value; text must be UTF-8, addresses not.
func (cr *columnReader) value(c, max int, text bool) (string, error) {
	id, err := cr.uvarint(c)
	if err != nil {
		return "", err
	}
	if id != 0 {
		if id > uint64(len(cr.dicts[c])) {
			return "", fmt.Errorf("column %d: reference %d to an unknown value", c, id)
		}
		return cr.dicts[c][id-1], nil
	}
	n, err := cr.uvarint(c)
	if err != nil {
		return "", err
	}
	if n > uint64(max) || n > uint64(len(cr.cols[c])) {
		return "", fmt.Errorf("column %d: text length %d", c, n)
	}
	s := string(cr.cols[c][:n])
	cr.cols[c] = cr.cols[c][n:]
	if text && !utf8.ValidString(s) {
		return "", fmt.Errorf("column %d: text is not UTF-8", c)
	}
	cr.dicts[c] = append(cr.dicts[c], s)
	return s, nil
}

func (cr *columnReader) addr(c, portCol int) (netip.AddrPort, error) {
	s, err := cr.value(c, 17+64, false)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p := cr.cols[portCol]
	if len(p) < 2 {
		return netip.AddrPort{}, fmt.Errorf("column %d: %w", portCol, errColumn)
	}
	port := binary.BigEndian.Uint16(p)
	cr.cols[portCol] = p[2:]
	var a netip.Addr
	switch {
	case s == "\x00":
		if port != 0 {
			return netip.AddrPort{}, fmt.Errorf("column %d: port without address", portCol)
		}
		return netip.AddrPort{}, nil
	case len(s) == 5 && s[0] == 4:
		a = netip.AddrFrom4([4]byte([]byte(s[1:])))
	case len(s) == 17 && s[0] == 6:
		a = netip.AddrFrom16([16]byte([]byte(s[1:])))
	case len(s) > 17 && s[0] == 7 && utf8.ValidString(s[17:]):
		a = netip.AddrFrom16([16]byte([]byte(s[1:17]))).WithZone(s[17:])
	default:
		return netip.AddrPort{}, fmt.Errorf("column %d: bad address", c)
	}
	return netip.AddrPortFrom(a, port), nil
}

func (cr *columnReader) next(r *journal.Record) error {
	*r = journal.Record{}
	var err error
	setErr := func(e error) {
		if err == nil {
			err = e
		}
	}
	s := func(c, max int) string {
		v, e := cr.str(c, max)
		setErr(e)
		return v
	}
	ad := func(c, pc int) netip.AddrPort {
		v, e := cr.addr(c, pc)
		setErr(e)
		return v
	}
	in := func(c int) int64 {
		v, e := cr.int(c)
		setErr(e)
		return v
	}
	r.Stream = journal.Stream(cr.cols[colStream][0])
	cr.cols[colStream] = cr.cols[colStream][1:]
	cr.lastTime += in(colTime)
	r.Time = time.UnixMicro(cr.lastTime).UTC()
	r.UAI = s(colUAI, journal.MaxField)
	r.Client = ad(colClient, colClientPort)
	r.MAC = s(colMAC, journal.MaxField)
	r.User = s(colUser, journal.MaxField)
	r.NAT = ad(colNAT, colNATPort)
	r.Proto = s(colProto, journal.MaxField)
	r.Dest = ad(colDest, colDestPort)
	r.Duration = time.Duration(in(colDuration)) * time.Microsecond
	r.BytesIn = in(colBytesIn)
	r.BytesOut = in(colBytesOut)
	r.Host = s(colHost, journal.MaxField)
	r.URL = s(colURL, journal.MaxURL)
	r.Method = s(colMethod, journal.MaxField)
	r.QType = s(colQType, journal.MaxField)
	r.RCode = s(colRCode, journal.MaxField)
	r.Status = int(in(colStatus))
	r.Verdict = s(colVerdict, journal.MaxField)
	r.Category = s(colCategory, journal.MaxField)
	r.Reference = s(colReference, journal.MaxField)
	r.UpstreamLatency = time.Duration(in(colLatency)) * time.Microsecond
	r.Lost = in(colLost)
	if cr.flows {
		r.Zone = s(colZone, journal.MaxField)
		r.Reason = s(colReason, journal.MaxField)
		r.Link = s(colLink, journal.MaxField)
	}
	return err
}

func (cr *columnReader) done() error {
	for i, c := range cr.cols {
		if len(c) != 0 {
			return fmt.Errorf("column %d: %d bytes left over", i, len(c))
		}
	}
	return nil
}
