package segment

// Verification of a whole log, sealed segments and live tail in order.

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"

	"vigie/journal"
)

// VerifyResult sums up a full verification.
type VerifyResult struct {
	Records  uint64
	Segments int
	LastSeq  uint64
	Last     journal.Hash
	// Breaks are discontinuities between segments (after quarantine).
	Breaks []string
}

// Verify re-reads every sealed segment (signature, body, chain) and the
// durable part of the live one, in order, checking that each continues the
// previous. fn, when not nil, sees every record. Damage inside a segment is
// an error naming the file; a break between segments is reported in the
// result (it is already recorded as a gap).
func (l *Log) Verify(fn func(r *journal.Record) error) (VerifyResult, error) {
	var res VerifyResult
	segs, err := l.Sealed()
	if err != nil {
		return res, err
	}
	pub := l.opt.Key.Public().(ed25519.PublicKey)
	res.Last = journal.Genesis(l.opt.UAI, l.opt.Stream, l.chain)
	next := uint64(1)
	follow := func(first uint64, prev journal.Hash, name string) {
		if first != next || prev != res.Last {
			res.Breaks = append(res.Breaks, fmt.Sprintf("%s starts at %d, expected %d", name, first, next))
		}
	}
	for _, s := range segs {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			return res, l.errorf("%w", err)
		}
		b, err := DecodeBatch(data, pub, func(r *journal.Record, _ []byte, _ journal.Hash) error {
			if fn != nil {
				return fn(r)
			}
			return nil
		})
		if err != nil {
			return res, l.errorf("%s: %w", s.Path, err)
		}
		follow(b.FirstSeq, b.Prev, filepath.Base(s.Path))
		res.Segments++
		res.Records += uint64(b.Count)
		res.Last, res.LastSeq, next = b.Last, b.LastSeq(), b.LastSeq()+1
	}
	l.segMu.Lock()
	path, size := l.segPath, l.segOff
	l.segMu.Unlock()
	f, err := os.Open(path)
	if err != nil {
		return res, l.errorf("%w", err)
	}
	defer f.Close()
	sr, err := scanLiveFile(path, f, size, func(_ uint64, _ []byte, r *journal.Record, _ journal.Hash) error {
		if fn != nil {
			return fn(r)
		}
		return nil
	})
	if err != nil {
		return res, l.errorf("%w", err)
	}
	if sr.End != sr.Size {
		return res, l.errorf("%s: invalid data at byte %d of the durable part", path, sr.End)
	}
	follow(sr.Header.FirstSeq, sr.Header.Prev, filepath.Base(path))
	res.Segments++
	res.Records += sr.Records
	if sr.Records > 0 {
		res.Last, res.LastSeq = sr.Last, sr.Header.FirstSeq+sr.Records-1
	}
	return res, nil
}
