package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"

	kflate "github.com/klauspost/compress/flate"

	"vigie/journal"
	"vigie/journal/segment"
)

// Block kinds: how a block's data is encoded.
const (
	// kindBatch: the edge's signed batch, byte for byte as it was
	// shipped (a sealed segment or an open tail). Reading it checks its
	// body hash and recomputes every link, so a damaged block is an
	// error, never fewer records; its signature can be checked again
	// with the edge's key at any time.
	kindBatch = 1
	// kindRecords: the archive's own encoding, for records that do not
	// come as one whole batch (part of a batch already held, what a purge
	// leaves of a block under a legal hold, an archive migrated from
	// per-record rows): deflated, per record the sequence delta, the
	// time delta, the payload and the link, which is left out when it
	// follows from the previous record's.
	kindRecords = 2
)

var errBadBlock = errors.New("damaged block")

// decodeBlock calls fn with each record of a block in sequence order. r
// is the decoded record when the encoding gives it for free (kindBatch),
// nil otherwise; s.Payload and r are only valid during the call.
func decodeBlock(kind int, data []byte, fn func(s *Stored, r *journal.Record) error) error {
	var s Stored
	switch kind {
	case kindBatch:
		_, err := segment.DecodeBatch(data, nil, func(r *journal.Record, payload []byte, link journal.Hash) error {
			s = Stored{Seq: r.Seq, Time: fromMicros(r.Time.UnixMicro()), Client: r.Client.Addr(), Host: r.Host, Link: link, Payload: payload}
			return fn(&s, r)
		})
		var be *segment.BatchError
		if errors.As(err, &be) {
			return fmt.Errorf("%w: %v", errBadBlock, err)
		}
		return err
	case kindRecords:
		zr := kflate.NewReader(bytes.NewReader(data))
		defer zr.Close()
		raw, err := io.ReadAll(io.LimitReader(zr, 1<<30))
		if err != nil {
			return fmt.Errorf("%w: %v", errBadBlock, err)
		}
		n, k := binary.Uvarint(raw)
		if k <= 0 {
			return fmt.Errorf("%w: no count", errBadBlock)
		}
		p := raw[k:]
		var seq uint64
		var t int64
		ch := journal.NewChainer()
		for i := uint64(0); i < n; i++ {
			d, k1 := binary.Uvarint(p)
			if k1 <= 0 {
				return fmt.Errorf("%w: record %d truncated", errBadBlock, i)
			}
			dt, k2 := binary.Varint(p[k1:])
			if k2 <= 0 {
				return fmt.Errorf("%w: record %d truncated", errBadBlock, i)
			}
			p = p[k1+k2:]
			l, k3 := binary.Uvarint(p)
			if k3 <= 0 || l >= uint64(len(p)-k3) {
				return fmt.Errorf("%w: record %d truncated", errBadBlock, i)
			}
			payload := p[k3 : k3+int(l)]
			p = p[k3+int(l):]
			seq += d
			t += dt
			prev := s.Link
			s = Stored{Seq: seq, Time: fromMicros(t), Payload: payload}
			switch p[0] {
			case 0:
				if i == 0 || d != 1 {
					return fmt.Errorf("%w: record %d has no link", errBadBlock, seq)
				}
				s.Link = ch.Link(prev, seq, payload)
				p = p[1:]
			case 1:
				if len(p) < 1+len(s.Link) {
					return fmt.Errorf("%w: record %d truncated", errBadBlock, seq)
				}
				copy(s.Link[:], p[1:])
				p = p[1+len(s.Link):]
			default:
				return fmt.Errorf("%w: record %d: bad link mode", errBadBlock, seq)
			}
			if err := fn(&s, nil); err != nil {
				return err
			}
		}
		if len(p) != 0 {
			return fmt.Errorf("%w: trailing bytes", errBadBlock)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown kind %d", errBadBlock, kind)
}

// recordOf returns the decoded record of s: r when the block gave it, else
// the payload decoded into dec.
func recordOf(s *Stored, r *journal.Record, dec *journal.Decoder, scratch *journal.Record) (*journal.Record, error) {
	if r != nil {
		return r, nil
	}
	if err := dec.Decode(s.Payload, scratch); err != nil {
		return nil, err
	}
	return scratch, nil
}

// encodedBlock is a block of kindRecords ready to store.
type encodedBlock struct {
	first, last uint64
	count       int
	tmin, tmax  int64
	tend        int64
	lastLink    journal.Hash
	filter      []byte
	data        []byte
}

// encodeRecords encodes recs (sorted by sequence, one chain) as one block
// of kindRecords. A payload that does not decode (only tests write such)
// is filtered by the Client and Host given with it.
func encodeRecords(recs []Stored) (encodedBlock, error) {
	eb := encodedBlock{first: recs[0].Seq, last: recs[len(recs)-1].Seq, count: len(recs), tmin: math.MaxInt64, tmax: math.MinInt64, tend: math.MinInt64,
		lastLink: recs[len(recs)-1].Link}
	raw := binary.AppendUvarint(nil, uint64(len(recs)))
	var fb filterBuilder
	var dec journal.Decoder
	var rec journal.Record
	ch := journal.NewChainer()
	var prevSeq uint64
	var prevT int64
	for i := range recs {
		r := &recs[i]
		t := micros(r.Time)
		eb.tmin, eb.tmax = min(eb.tmin, t), max(eb.tmax, t)
		raw = binary.AppendUvarint(raw, r.Seq-prevSeq)
		raw = binary.AppendVarint(raw, t-prevT)
		raw = binary.AppendUvarint(raw, uint64(len(r.Payload)))
		raw = append(raw, r.Payload...)
		if i > 0 && r.Seq == prevSeq+1 && ch.Link(recs[i-1].Link, r.Seq, r.Payload) == r.Link {
			raw = append(raw, 0)
		} else {
			raw = append(raw, 1)
			raw = append(raw, r.Link[:]...)
		}
		prevSeq, prevT = r.Seq, t
		if err := dec.Decode(r.Payload, &rec); err != nil {
			rec = journal.Record{Client: netip.AddrPortFrom(r.Client, 0), Host: r.Host}
		}
		eb.tend = max(eb.tend, t, micros(r.Time.Add(max(rec.Duration, 0))))
		fb.add(&rec)
	}
	var buf bytes.Buffer
	zw, err := kflate.NewWriter(&buf, 5)
	if err != nil {
		return eb, err
	}
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return eb, err
	}
	eb.data = buf.Bytes()
	eb.filter = fb.build()
	return eb, nil
}
