package segment

import (
	"context"
	"errors"

	"vigie/journal"
)

var _ journal.DurableSink = (*Journal)(nil)

// ErrDropped is returned by AppendDurable when the log could not take the
// record (closed, disk full or stalled): it is counted in a gap marker.
var ErrDropped = errors.New("journal: record dropped (counted in a gap marker)")

// AppendDurable appends r and waits for its group commit. The commit is
// asked for at once rather than after the commit interval: a person is
// waiting for the page that quotes this record.
func (j *Journal) AppendDurable(ctx context.Context, r *journal.Record) error {
	l := j.log(r.Stream)
	if l == nil {
		j.Append(r)
		return ErrDropped
	}
	c := *r
	if c.Time.IsZero() {
		c.Time = l.opt.Now()
	}
	if c.UAI == "" {
		c.UAI = j.uai
	}
	seq := l.appendSeq(&c)
	if seq == 0 {
		return ErrDropped
	}
	select {
	case l.flush <- struct{}{}:
	default:
	}
	return l.WaitDurable(ctx, seq)
}
