package segment

import (
	"context"
	"errors"
	"path/filepath"

	"vigie/journal"
)

// Journal is the edge's journal: one Log per stream under one directory
// (Dir/connexions, Dir/navigation). It is the journal.Sink the DNS filter
// and the proxy write through.
type Journal struct {
	uai string
	// logs is indexed by stream (an array: Append runs on every query).
	logs [journal.Navigation + 1]*Log
}

var _ journal.Sink = (*Journal)(nil)

// OpenJournal opens both streams. opt.Dir is the journal's root and
// opt.Stream is ignored; every other option applies to both logs.
func OpenJournal(opt Options) (*Journal, error) {
	j := &Journal{uai: opt.UAI}
	if opt.Metrics == nil {
		opt.Metrics = NewMetrics(nil)
	}
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		o := opt
		o.Stream = s
		o.Dir = filepath.Join(opt.Dir, s.String())
		l, err := Open(o)
		if err != nil {
			j.Close()
			return nil, err
		}
		j.logs[s] = l
	}
	return j, nil
}

// Append routes r to its stream's log. A record without a time gets the
// log's clock; one without a UAI gets the edge's.
func (j *Journal) Append(r *journal.Record) {
	l := j.log(r.Stream)
	if l == nil {
		// An unknown stream is a bug in the caller; count it as a loss
		// on the connexions stream so it shows in the chain.
		l = j.logs[journal.Connexions]
		l.mu.Lock()
		l.lost++
		l.mu.Unlock()
		l.opt.Metrics.Dropped.WithLabelValues(r.Stream.String(), DropInvalid).Inc()
		return
	}
	if r.Time.IsZero() || r.UAI == "" {
		c := *r
		if c.Time.IsZero() {
			c.Time = l.opt.Now()
		}
		if c.UAI == "" {
			c.UAI = j.uai
		}
		l.Append(&c)
		return
	}
	l.Append(r)
}

// EncodesOnAppend says that Append has encoded the record (into its own
// buffer) by the time it returns: a caller may pass text that it reuses
// right after, such as a view of a packet buffer, without copying it.
func (j *Journal) EncodesOnAppend() {}

// Log returns one stream's log.
func (j *Journal) Log(s journal.Stream) *Log { return j.log(s) }

func (j *Journal) log(s journal.Stream) *Log {
	if int(s) >= len(j.logs) {
		return nil
	}
	return j.logs[s]
}

// Sync waits until everything appended so far is durable.
func (j *Journal) Sync(ctx context.Context) error {
	var errs []error
	for _, l := range j.logs {
		if l != nil {
			errs = append(errs, l.Sync(ctx))
		}
	}
	return errors.Join(errs...)
}

// Close closes both logs.
func (j *Journal) Close() error {
	var errs []error
	for _, l := range j.logs {
		if l != nil {
			errs = append(errs, l.Close())
		}
	}
	return errors.Join(errs...)
}
