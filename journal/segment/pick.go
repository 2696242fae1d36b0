package segment

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"time"
	"unicode/utf8"
	"unsafe"

	"vigie/journal"
)

// Reading chosen records of a batch. A requisition asks for one client or
// one domain: the archive needs the few records that hold it, with their
// links, not every record of every batch of the day. A BatchReader
// inflates the body only as far as the columns a Selection looks at and
// tests each distinct value of a column once, through the batch's
// dictionary; Pick then inflates the rest and materialises only the
// records asked for. A record's link is hashed from the nearest mark
// before it (the link of every MarkEvery-th record, which the archive
// keeps beside the batch), not from the start of the batch.

// MarkEvery is how many records apart the marks of a batch archived now
// are. A search of one device picks a few hundred records a batch, each
// in a run of its own: every record of those runs is decoded and hashed,
// so the shorter the run the cheaper the search, at 32 bytes of marks a
// run (1 B a record at 32).
const MarkEvery = 32

// oldMarkEvery is how far apart the marks of batches archived before
// MarkEvery was 32 are; Pick reads both (marksEvery tells them apart).
const oldMarkEvery = 64

func markCount(count, every int) int { return max(count-1, 0) / every }

// MarkCount is how many marks a batch of count records has: the links of
// records MarkEvery-1, 2*MarkEvery-1, ... (indexes from 0), before the
// last record, whose link the header holds.
func MarkCount(count int) int { return markCount(count, MarkEvery) }

// IsMark reports whether the link of record i (from 0) of a batch of
// count records is one of its marks.
func IsMark(i, count int) bool { return (i+1)%MarkEvery == 0 && i+1 < count }

// marksEvery returns how many records apart the marks of a batch of count
// records are, from the length of its marks (l bytes), or 0 if l fits
// neither spacing. The two never give the same length for a batch with
// marks: one at 64 means more than 64 records, so at least two at 32.
func marksEvery(count, l int) int {
	for _, every := range []int{MarkEvery, oldMarkEvery} {
		if l == markCount(count, every)*len(journal.Hash{}) {
			return every
		}
	}
	return 0
}

// MarksFit reports whether l bytes of marks fit a batch of count records,
// at either spacing.
func MarksFit(count, l int) bool { return marksEvery(count, l) != 0 }

// BatchReader reads a batch column by column. Not safe for concurrent use.
type BatchReader struct {
	b    *Batch
	inf  *inflater
	bufs *Buffers
	// raw is the body inflated so far, in bufs.raw's array: never
	// reallocated (cols point into it).
	raw []byte
	// cols are the columns located so far (ncols of them); the flow
	// columns stay nil in a batch without them.
	cols  [numAllCols][]byte
	ncols int
	pos   int
	flows bool
}

// Buffers are the memory a BatchReader reads a batch in: the inflated
// body, the records Pick decodes, a column's values. A search reads a
// score of batches a school-day, each inflating to megabytes and picking
// tens of thousands of records: it gives the same Buffers to each reader
// in turn, and drops them when it is done. The zero value is ready.
type Buffers struct {
	raw  []byte
	recs []journal.Record
	vals []string
	need []int
}

// OpenBatch checks a batch's body against the hash in its header and
// returns a reader of its columns, in bufs (nil: new ones) until Close.
// The signature is not checked: the archive checked it when it stored the
// batch.
func OpenBatch(data []byte, bufs *Buffers) (*BatchReader, error) {
	b, body, err := ParseBatchHeader(data, nil)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(body) != b.BodyHash {
		return nil, batchErr("body hash mismatch (segment %d of %s %s altered)", b.FirstSeq, b.UAI, b.Stream)
	}
	if bufs == nil {
		bufs = new(Buffers)
	}
	if cap(bufs.raw) < int(b.RawLen) {
		bufs.raw = make([]byte, 0, b.RawLen)
	}
	inf := getInflater(body)
	return &BatchReader{b: b, inf: inf, bufs: bufs, raw: bufs.raw[:0]}, nil
}

// Close ends the reader's use of its Buffers. Nothing it returned
// (records, payloads, values) may be used after.
func (br *BatchReader) Close() {
	if br.inf != nil {
		putInflater(br.inf)
		br.inf = nil
	}
	if br.bufs != nil {
		// The records point into the body: cleared, so that a
		// reader of the next batch starts from zero values.
		clear(br.bufs.recs)
		br.bufs.recs = br.bufs.recs[:0]
		br.bufs, br.raw = nil, nil
	}
}

// Batch is the batch's header.
func (br *BatchReader) Batch() *Batch { return br.b }

// fill inflates the body up to n bytes (at most the whole body), reading
// ahead a little so that small columns do not cost a call each.
func (br *BatchReader) fill(n int) error {
	total := int(br.b.RawLen)
	n = min(n, total)
	have := len(br.raw)
	if have >= n {
		return nil
	}
	n = min(max(n, have+64<<10), total)
	br.raw = br.raw[:n]
	if _, err := io.ReadFull(br.inf.zr, br.raw[have:n]); err != nil {
		br.raw = br.raw[:have]
		return batchErr("body: inflated fewer bytes than the header's %d: %v", total, err)
	}
	return nil
}

// locate makes columns 0 to c available.
func (br *BatchReader) locate(c int) error {
	total := int(br.b.RawLen)
	for br.ncols <= c && br.ncols < numAllCols {
		if br.ncols == numCols {
			if br.pos == total {
				br.ncols = numAllCols
				break
			}
			br.flows = true
		}
		if err := br.fill(br.pos + binary.MaxVarintLen64); err != nil {
			return err
		}
		n, k := binary.Uvarint(br.raw[br.pos:])
		if k <= 0 || n > uint64(total-br.pos-k) {
			return batchErr("body: column %d: bad length", br.ncols)
		}
		start, end := br.pos+k, br.pos+k+int(n)
		if err := br.fill(end); err != nil {
			return err
		}
		br.cols[br.ncols] = br.raw[start:end:end]
		br.pos = end
		if br.ncols == colStream && int(n) != int(br.b.Count) {
			return batchErr("body: stream column holds %d records, header says %d", n, br.b.Count)
		}
		br.ncols++
	}
	if br.ncols == numAllCols && br.pos != total {
		return batchErr("body: %d bytes after the columns", total-br.pos)
	}
	return nil
}

// Selection chooses records by the values of a few columns; a nil test
// accepts every value. Each test of a dictionary-coded column (client,
// MAC, user, NAT, host) sees each distinct value of a batch once; Time
// sees each record's time in microseconds.
type Selection struct {
	Time   func(us int64) bool
	Client func(netip.Addr) bool
	MAC    func(string) bool
	User   func(string) bool
	NAT    func(netip.Addr) bool
	Host   func(string) bool
}

// Select returns the indexes (from 0, ascending) of the records every
// test of sel accepts. It inflates the body only as far as the last
// column it looks at.
func (br *BatchReader) Select(sel Selection) ([]int, error) {
	n := int(br.b.Count)
	keep := make([]bool, n)
	for i := range keep {
		keep[i] = true
	}
	if sel.Time != nil {
		if err := br.locate(colTime); err != nil {
			return nil, err
		}
		col := br.cols[colTime]
		var t int64
		for i := range keep {
			d, k := binary.Varint(col)
			if k <= 0 {
				return nil, columnErr(colTime, i)
			}
			col = col[k:]
			t += d
			if !sel.Time(t) {
				keep[i] = false
			}
		}
	}
	text := func(f func(string) bool) func([]byte) (bool, error) {
		return func(v []byte) (bool, error) { return f(string(v)), nil }
	}
	addr := func(f func(netip.Addr) bool) func([]byte) (bool, error) {
		return func(v []byte) (bool, error) {
			a, ok := addrValue(v)
			if !ok {
				return false, fmt.Errorf("bad address")
			}
			return f(a), nil
		}
	}
	for _, t := range []struct {
		c, max int
		test   func([]byte) (bool, error)
	}{
		{colClient, maxAddrValue, nil}, {colMAC, journal.MaxField, nil}, {colUser, journal.MaxField, nil},
		{colNAT, maxAddrValue, nil}, {colHost, journal.MaxField, nil},
	} {
		switch {
		case t.c == colClient && sel.Client != nil:
			t.test = addr(sel.Client)
		case t.c == colMAC && sel.MAC != nil:
			t.test = text(sel.MAC)
		case t.c == colUser && sel.User != nil:
			t.test = text(sel.User)
		case t.c == colNAT && sel.NAT != nil:
			t.test = addr(sel.NAT)
		case t.c == colHost && sel.Host != nil:
			t.test = text(sel.Host)
		}
		if t.test == nil {
			continue
		}
		if err := br.locate(t.c); err != nil {
			return nil, err
		}
		if err := selectDict(br.cols[t.c], t.c, t.max, t.test, keep); err != nil {
			return nil, err
		}
	}
	var out []int
	for i, k := range keep {
		if k {
			out = append(out, i)
		}
	}
	return out, nil
}

// selectDict walks dictionary-coded column c and clears keep[i] where
// record i's value fails test (called once per distinct value).
func selectDict(col []byte, c, maxLen int, test func([]byte) (bool, error), keep []bool) error {
	var ok []bool
	for i := range keep {
		id, k := binary.Uvarint(col)
		if k <= 0 {
			return columnErr(c, i)
		}
		col = col[k:]
		if id == 0 {
			l, k := binary.Uvarint(col)
			if k <= 0 || l > uint64(maxLen) || l > uint64(len(col)-k) {
				return columnErr(c, i)
			}
			a, err := test(col[k : k+int(l)])
			if err != nil {
				return batchErr("body: column %d, record %d: %v", c, i, err)
			}
			col = col[k+int(l):]
			ok = append(ok, a)
			id = uint64(len(ok))
		} else if id > uint64(len(ok)) {
			return batchErr("body: column %d, record %d: reference %d to an unknown value", c, i, id)
		}
		if !ok[id-1] {
			keep[i] = false
		}
	}
	return nil
}

func columnErr(c, i int) error { return batchErr("body: column %d, record %d: %v", c, i, errColumn) }

// maxAddrValue is the longest encoded address (an IPv6 address with a
// zone).
const maxAddrValue = 17 + 64

// addrValue decodes an address of an address column's dictionary.
func addrValue(v []byte) (netip.Addr, bool) {
	switch {
	case len(v) == 1 && v[0] == 0:
		return netip.Addr{}, true
	case len(v) == 5 && v[0] == 4:
		return netip.AddrFrom4([4]byte(v[1:])), true
	case len(v) == 17 && v[0] == 6:
		return netip.AddrFrom16([16]byte(v[1:])), true
	case len(v) > 17 && v[0] == 7 && utf8.Valid(v[17:]):
		return netip.AddrFrom16([16]byte(v[1:17])).WithZone(string(v[17:])), true
	}
	return netip.Addr{}, false
}

// Pick decodes the records at idx (indexes from 0, ascending, as Select
// returns them) and calls fn with each, its canonical payload, the link
// before it (the header's Prev for the first record) and its own link, in
// order. marks are the batch's marks (MarkCount of them, or as many
// oldMarkEvery apart for a batch archived before, each
// link after the other). Pick decodes and hashes the whole run of
// MarkEvery records around each record asked for and checks that the run
// ends with the next mark (or the batch's last link), so that a damaged
// block or mark is an error, never a wrong link. r and payload are only
// valid during the call (r's text shares the reader's inflated body).
func (br *BatchReader) Pick(idx []int, marks []byte, fn func(r *journal.Record, payload []byte, prev, link journal.Hash) error) error {
	n := int(br.b.Count)
	every := marksEvery(n, len(marks))
	if every == 0 {
		return batchErr("%d bytes of marks for %d records, want %d", len(marks), n, MarkCount(n)*len(journal.Hash{}))
	}
	if len(idx) == 0 {
		return nil
	}
	// need: every record of each run that holds a record asked for.
	need := br.bufs.need[:0]
	defer func() { br.bufs.need = need[:0] }()
	for k, i := range idx {
		if i < 0 || i >= n || k > 0 && i <= idx[k-1] {
			return fmt.Errorf("journal batch: pick: index %d out of order or range", i)
		}
		if w := i / every; len(need) == 0 || need[len(need)-1]/every != w {
			for j := w * every; j < min((w+1)*every, n); j++ {
				need = append(need, j)
			}
		}
	}
	if err := br.locate(numAllCols - 1); err != nil {
		return err
	}
	var one [1]byte
	if k, _ := io.ReadFull(br.inf.zr, one[:]); k != 0 {
		return batchErr("body: inflates to more than the header's %d bytes", br.b.RawLen)
	}
	bufs := br.bufs
	if cap(bufs.recs) < len(need) {
		bufs.recs = make([]journal.Record, len(need))
	}
	// Zero: Close cleared what an earlier batch used.
	bufs.recs = bufs.recs[:len(need)]
	p := picker{need: need, recs: bufs.recs, last: need[len(need)-1], vals: bufs.vals[:0]}
	defer func() { bufs.vals = p.vals[:0] }()
	if err := p.decode(br); err != nil {
		return err
	}
	// Each run: hash it, check its end, then deliver what was asked.
	ch := journal.NewChainer()
	var buf []byte
	type picked struct {
		j          int
		from, to   int
		prev, link journal.Hash
	}
	var out []picked
	k := 0
	for start := 0; start < len(need); {
		w := need[start] / every
		end := start + min(every, n-w*every)
		link := br.b.Prev
		if w > 0 {
			copy(link[:], marks[(w-1)*len(link):])
		}
		buf, out = buf[:0], out[:0]
		for j := start; j < end; j++ {
			r := &p.recs[j]
			seq := br.b.FirstSeq + uint64(need[j])
			if r.Stream != br.b.Stream {
				return batchErr("record %d: stream %s in a %s batch", seq, r.Stream, br.b.Stream)
			}
			from, prev := len(buf), link
			// Canonical as ingest found it, or the link below fails.
			buf = journal.AppendCanonical(buf, r)
			link = ch.Link(link, seq, buf[from:])
			r.Seq = seq
			if k < len(idx) && idx[k] == need[j] {
				out = append(out, picked{j: j, from: from, to: len(buf), prev: prev, link: link})
				k++
			}
		}
		want := br.b.Last
		if w < markCount(n, every) {
			copy(want[:], marks[w*len(want):])
		}
		if link != want {
			return batchErr("chain broken: records %d-%d do not end with their mark", br.b.FirstSeq+uint64(w*every), br.b.FirstSeq+uint64(need[end-1]))
		}
		for _, o := range out {
			if err := fn(&p.recs[o.j], buf[o.from:o.to], o.prev, o.link); err != nil {
				return err
			}
		}
		start = end
	}
	return nil
}

// picker decodes the records at need (ascending indexes), column after
// column: each column is walked from its first record to the last one
// needed, and only the values of the records needed are materialised.
type picker struct {
	need []int
	recs []journal.Record
	last int
	// vals is the column dict walks (kept for the next).
	vals []string
}

func (p *picker) decode(br *BatchReader) error {
	n := int(br.b.Count)
	for _, c := range []int{colClientPort, colNATPort, colDestPort} {
		if len(br.cols[c]) != 2*n {
			return batchErr("body: column %d holds %d bytes for %d ports", c, len(br.cols[c]), n)
		}
	}
	for j, i := range p.need {
		p.recs[j].Stream = journal.Stream(br.cols[colStream][i])
	}
	if err := p.times(br.cols[colTime]); err != nil {
		return err
	}
	for _, c := range []struct {
		c, port int
		set     func(r *journal.Record, ap netip.AddrPort)
	}{
		{colClient, colClientPort, func(r *journal.Record, ap netip.AddrPort) { r.Client = ap }},
		{colNAT, colNATPort, func(r *journal.Record, ap netip.AddrPort) { r.NAT = ap }},
		{colDest, colDestPort, func(r *journal.Record, ap netip.AddrPort) { r.Dest = ap }},
	} {
		if err := p.addrs(br.cols[c.c], br.cols[c.port], c.c, c.set); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		c   int
		set func(r *journal.Record, v int64)
	}{
		{colDuration, func(r *journal.Record, v int64) { r.Duration = time.Duration(v) * time.Microsecond }},
		{colBytesIn, func(r *journal.Record, v int64) { r.BytesIn = v }},
		{colBytesOut, func(r *journal.Record, v int64) { r.BytesOut = v }},
		{colStatus, func(r *journal.Record, v int64) { r.Status = int(v) }},
		{colLatency, func(r *journal.Record, v int64) { r.UpstreamLatency = time.Duration(v) * time.Microsecond }},
		{colLost, func(r *journal.Record, v int64) { r.Lost = v }},
	} {
		if err := p.ints(br.cols[c.c], c.c, c.set); err != nil {
			return err
		}
	}
	texts := []struct {
		c, max int
		set    func(r *journal.Record, s string)
	}{
		{colUAI, journal.MaxField, func(r *journal.Record, s string) { r.UAI = s }},
		{colMAC, journal.MaxField, func(r *journal.Record, s string) { r.MAC = s }},
		{colUser, journal.MaxField, func(r *journal.Record, s string) { r.User = s }},
		{colProto, journal.MaxField, func(r *journal.Record, s string) { r.Proto = s }},
		{colHost, journal.MaxField, func(r *journal.Record, s string) { r.Host = s }},
		{colURL, journal.MaxURL, func(r *journal.Record, s string) { r.URL = s }},
		{colMethod, journal.MaxField, func(r *journal.Record, s string) { r.Method = s }},
		{colQType, journal.MaxField, func(r *journal.Record, s string) { r.QType = s }},
		{colRCode, journal.MaxField, func(r *journal.Record, s string) { r.RCode = s }},
		{colVerdict, journal.MaxField, func(r *journal.Record, s string) { r.Verdict = s }},
		{colCategory, journal.MaxField, func(r *journal.Record, s string) { r.Category = s }},
		{colReference, journal.MaxField, func(r *journal.Record, s string) { r.Reference = s }},
	}
	if br.flows {
		texts = append(texts, []struct {
			c, max int
			set    func(r *journal.Record, s string)
		}{
			{colZone, journal.MaxField, func(r *journal.Record, s string) { r.Zone = s }},
			{colReason, journal.MaxField, func(r *journal.Record, s string) { r.Reason = s }},
			{colLink, journal.MaxField, func(r *journal.Record, s string) { r.Link = s }},
		}...)
	}
	for _, c := range texts {
		if err := p.texts(br.cols[c.c], c.c, c.max, c.set); err != nil {
			return err
		}
	}
	return nil
}

// ints walks a varint column up to the last record needed and sets the
// values of the records needed.
func (p *picker) ints(col []byte, c int, set func(r *journal.Record, v int64)) error {
	i := 0
	for j, want := range p.need {
		if want > i {
			col = skipVarints(col, want-i)
			i = want
		}
		v, k := binary.Varint(col)
		if k <= 0 {
			return columnErr(c, i)
		}
		col = col[k:]
		set(&p.recs[j], v)
		i++
	}
	return nil
}

// skipVarints skips n varints of col, eight bytes at a time where it can:
// a varint ends at each byte below 0x80. It stops early at the end of col
// (the next read then fails). The varints skipped are not checked: no
// record delivered is made of them, and the batch's body hash and the
// links of the records delivered are.
func skipVarints(col []byte, n int) []byte {
	for len(col) >= 8 {
		ends := bits.OnesCount64(^binary.LittleEndian.Uint64(col) & 0x8080808080808080)
		if ends >= n {
			break
		}
		n -= ends
		col = col[8:]
	}
	for n > 0 && len(col) > 0 {
		if col[0] < 0x80 {
			n--
		}
		col = col[1:]
	}
	return col
}

// skipRefs is skipVarints for a dictionary-coded column, whose varints
// are references to values: eight bytes are skipped at once only when
// none is zero, for a new value (a zero reference, its length and its
// bytes) is read by the caller, and when they end a reference. It returns
// what is left of col, at a reference's start, and how many of the n
// references are left to skip.
func skipRefs(col []byte, n int) ([]byte, int) {
	for len(col) >= 8 {
		w := binary.LittleEndian.Uint64(col)
		if (w-0x0101010101010101)&^w&0x8080808080808080 != 0 || w>>63 != 0 {
			// A zero byte, or the word ends inside a reference: the
			// caller reads from a reference's start.
			break
		}
		ends := bits.OnesCount64(^w & 0x8080808080808080)
		if ends >= n {
			break
		}
		n -= ends
		col = col[8:]
	}
	return col, n
}

// times walks the time column (deltas) up to the last record needed.
func (p *picker) times(col []byte) error {
	j := 0
	var t int64
	for i := 0; i <= p.last; i++ {
		v, k := binary.Varint(col)
		if k <= 0 {
			return columnErr(colTime, i)
		}
		col = col[k:]
		t += v
		if p.need[j] == i {
			p.recs[j].Time = time.UnixMicro(t).UTC()
			j++
		}
	}
	return nil
}

// dict walks a dictionary-coded column up to the last record needed and
// calls use with each needed record's position in need and its value's
// id (from 0) in vals, the column's values (views of the column's bytes).
func (p *picker) dict(col []byte, c, maxLen int, use func(j int, id int, vals []string) error) error {
	vals := p.vals[:0]
	defer func() { p.vals = vals[:0] }()
	j := 0
	for i := 0; i <= p.last; i++ {
		if gap := p.need[j] - i; gap >= 8 {
			// Most records walked are not needed: skip their references
			// eight bytes at a time, up to the next new value.
			rest, left := skipRefs(col, gap)
			col, i = rest, p.need[j]-left
		}
		var id uint64
		if len(col) > 0 && col[0] < 0x80 {
			// Most references are one byte.
			id, col = uint64(col[0]), col[1:]
		} else {
			v, k := binary.Uvarint(col)
			if k <= 0 {
				return columnErr(c, i)
			}
			id, col = v, col[k:]
		}
		if id == 0 {
			l, k := binary.Uvarint(col)
			if k <= 0 || l > uint64(maxLen) || l > uint64(len(col)-k) {
				return columnErr(c, i)
			}
			v := col[k : k+int(l)]
			col = col[k+int(l):]
			vals = append(vals, unsafe.String(unsafe.SliceData(v), len(v)))
			id = uint64(len(vals))
		} else if id > uint64(len(vals)) {
			return batchErr("body: column %d, record %d: reference %d to an unknown value", c, i, id)
		}
		if p.need[j] == i {
			if err := use(j, int(id-1), vals); err != nil {
				return batchErr("body: column %d, record %d: %v", c, i, err)
			}
			j++
		}
	}
	return nil
}

// texts decodes a text column. The values are views of the inflated
// body, which is never written again: nothing is copied.
func (p *picker) texts(col []byte, c, maxLen int, set func(r *journal.Record, s string)) error {
	return p.dict(col, c, maxLen, func(j, id int, vals []string) error {
		// Not checked for UTF-8 here: the run's link proves every value
		// delivered is what the archive decoded and checked at ingest.
		set(&p.recs[j], vals[id])
		return nil
	})
}

// addrs decodes an address column and its port column.
func (p *picker) addrs(col, ports []byte, c int, set func(r *journal.Record, ap netip.AddrPort)) error {
	return p.dict(col, c, maxAddrValue, func(j, id int, vals []string) error {
		i := p.need[j]
		port := binary.BigEndian.Uint16(ports[2*i:])
		v := vals[id]
		a, ok := addrValue(unsafe.Slice(unsafe.StringData(v), len(v)))
		switch {
		case !ok:
			return fmt.Errorf("bad address")
		case !a.IsValid() && port != 0:
			return fmt.Errorf("port without address")
		case a.IsValid():
			set(&p.recs[j], netip.AddrPortFrom(a, port))
		}
		return nil
	})
}
