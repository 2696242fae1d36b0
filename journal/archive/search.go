package archive

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"vigie/journal"
	"vigie/journal/segment"
)

// A search by content (client, domain, NAT, MAC, user) reads a block the
// filter let through column by column: a pupil's device and most sites
// appear in every block of a school-day, so the filter rarely excludes
// one, but the records they hold are a few in a thousand. The columns the
// query looks at are inflated and tested first, each distinct value once;
// the records they select are then decoded alone, their links hashed from
// the block's marks (the link of every segment.MarkEvery-th record, kept
// with the block at ingest), and tested again in full with matchesContent
// and matchesIdentity, so the answer is the one decoding the whole block
// gives. A block stored without marks (before they existed, or of the
// archive's own encoding) is decoded whole once its columns select a
// record.

// selection is q's tests on a block's columns, for a block whose records'
// times run from tmin to tmax (µs). It may accept more records than q
// (the port of a NAT query, the end of a flow are checked on the decoded
// record), never fewer.
func (q Query) selection(tmin, tmax int64) segment.Selection {
	var sel segment.Selection
	from, to := micros(q.From), micros(q.To)
	if tmin < from || tmax >= to {
		zero := micros(time.Time{})
		sel.Time = func(t int64) bool {
			if t == 0 {
				// A record at 0 µs is stored at the zero time
				// (fromMicros), which is what the full scan tests.
				t = zero
			}
			return t >= from && t < to
		}
	}
	if q.Client.IsValid() {
		c := q.Client
		sel.Client = func(a netip.Addr) bool { return a == c }
	}
	if q.Domain != "" {
		d := normHost(q.Domain)
		sel.Host = func(h string) bool {
			h = normHost(h)
			return h == d || strings.HasSuffix(h, "."+d)
		}
	}
	if q.NAT.IsValid() {
		n := q.NAT.Unmap()
		sel.NAT = func(a netip.Addr) bool { return a.Unmap() == n }
	}
	if q.MAC != "" {
		mac := q.MAC
		sel.MAC = func(m string) bool { return strings.EqualFold(m, mac) }
	}
	if q.User != "" {
		user := q.User
		sel.User = func(u string) bool { return u == user }
	}
	return sel
}

// keeper returns the test a filtered scan applies to each decoded record
// of chain c, appending the records q selects to out (payloads copied).
func (q Query) keeper(c Chain, out *[]Stored) func(st *Stored, r *journal.Record) error {
	from, to := micros(q.From), micros(q.To)
	var dec journal.Decoder
	var scratch journal.Record
	return func(st *Stored, r *journal.Record) error {
		if t := micros(st.Time); t < from || t >= to {
			return nil
		}
		rec, err := recordOf(st, r, &dec, &scratch)
		if err != nil {
			return fmt.Errorf("archive: record %d of chain %d: %w", st.Seq, c.Ref, err)
		}
		if !q.matchesContent(rec) || !q.matchesIdentity(rec) {
			return nil
		}
		k := *st
		k.Payload = append([]byte(nil), st.Payload...)
		*out = append(*out, k)
		return nil
	}
}

// searchBlock applies keep to the records of one block that q may select:
// by columns for a batch, whole otherwise (see above). It reports how many
// records it decoded.
func searchBlock(q Query, kind int, tmin, tmax int64, data, marks []byte, bufs *segment.Buffers, keep func(st *Stored, r *journal.Record) error) (int, error) {
	if kind != kindBatch {
		n := 0
		err := decodeBlock(kind, data, func(st *Stored, r *journal.Record) error { n++; return keep(st, r) })
		return n, err
	}
	br, err := segment.OpenBatch(data, bufs)
	if err != nil {
		return 0, badBlock(err)
	}
	// keep copies what it keeps of each record (the payload, the host).
	defer br.Close()
	idx, err := br.Select(q.selection(tmin, tmax))
	if err != nil {
		return 0, badBlock(err)
	}
	if len(idx) == 0 {
		return 0, nil
	}
	if !segment.MarksFit(int(br.Batch().Count), len(marks)) {
		n := 0
		err := decodeBlock(kind, data, func(st *Stored, r *journal.Record) error { n++; return keep(st, r) })
		return n, err
	}
	var st Stored
	first := br.Batch().FirstSeq
	err = br.Pick(idx, marks, func(r *journal.Record, payload []byte, prev, link journal.Hash) error {
		// r's text shares the inflated body: the host gets a copy.
		st = Stored{Seq: r.Seq, Time: fromMicros(r.Time.UnixMicro()), Client: r.Client.Addr(), Host: strings.Clone(r.Host), Link: link, Payload: payload,
			// The record before is in the block, so still archived;
			// the batch's Prev may not be.
			Before: prev, BeforeKnown: r.Seq > first}
		return keep(&st, r)
	})
	return len(idx), badBlock(err)
}

// badBlock marks a batch's verification error as a damaged block, as
// decodeBlock does.
func badBlock(err error) error {
	var be *segment.BatchError
	if errors.As(err, &be) {
		return fmt.Errorf("%w: %v", errBadBlock, err)
	}
	return err
}
