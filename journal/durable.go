package journal

import "context"

// DurableSink is a Sink that can also say when a record is on disk. The
// proxy appends a refusal through it and sends the block page only once
// the record, with the reference the page shows, is durable: a reference
// a pupil reads out always exists in the journal.
type DurableSink interface {
	Sink
	// AppendDurable appends r and waits until it is durable or ctx ends.
	// It does not keep r.
	AppendDurable(ctx context.Context, r *Record) error
}

// AppendDurable appends r to every sink, waiting on the first durable one.
func (t Tee) AppendDurable(ctx context.Context, r *Record) error {
	var err error
	waited := false
	for _, s := range t {
		if d, ok := s.(DurableSink); ok && !waited {
			waited = true
			err = d.AppendDurable(ctx, r)
			continue
		}
		s.Append(r)
	}
	return err
}

var _ DurableSink = Tee(nil)
