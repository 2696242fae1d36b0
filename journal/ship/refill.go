package ship

import (
	"context"
	"errors"
	"fmt"
	"os"

	"vigie/journal/segment"
)

// gap is a run of sequence numbers the archive lacks.
type gap struct {
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

func (g gap) overlaps(first, last uint64) bool { return g.First <= last && first <= g.Last }

// refill ships again what the archive says it lacks and this edge still
// holds: sealed segments already acknowledged once, and the part of the
// live segment before the acknowledged end. It happens when the archive
// was restored from a backup older than its acknowledgements. Records
// pruned locally cannot come back; their gap stays open and alerts.
func (s *Shipper) refill(ctx context.Context, l *segment.Log, segs []segment.SealedInfo) error {
	st := s.state[l]
	if len(st.missing) == 0 {
		return nil
	}
	missing := st.missing
	var errs []error
	shipped := 0
	for _, sg := range segs {
		if sg.LastSeq > st.Acked {
			break // not acknowledged yet: the normal round ships it
		}
		want := false
		for _, g := range missing {
			want = want || g.overlaps(sg.FirstSeq, sg.LastSeq)
		}
		if !want {
			continue
		}
		data, err := os.ReadFile(sg.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("ship: refill: %w", err))
			continue
		}
		if err := s.post(ctx, l, data, sg.FirstSeq, sg.LastSeq); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil || isTransport(err) {
				return errors.Join(errs...)
			}
			continue
		}
		shipped++
	}
	// Acknowledged records of the live segment.
	if first := l.LiveFirst(); first <= st.Acked {
		from := uint64(0)
		for _, g := range missing {
			if g.overlaps(first, st.Acked) {
				f := max(g.First, first)
				if from == 0 || f < from {
					from = f
				}
			}
		}
		if from > 0 {
			data, b, err := l.Tail(from)
			switch {
			case err != nil:
				errs = append(errs, err)
			case b != nil:
				if err := s.post(ctx, l, data, b.FirstSeq, b.LastSeq()); err != nil {
					errs = append(errs, err)
				} else {
					shipped++
				}
			}
		}
	}
	if shipped > 0 {
		s.opt.Log.Warn("journal: the archive lacked acknowledged records, shipped them again", "stream", l.Stream(), "batches", shipped, "missing", missing)
	}
	return errors.Join(errs...)
}
