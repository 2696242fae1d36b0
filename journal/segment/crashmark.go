package segment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"vigie/journal"
)

// runningFile exists in a log's directory while a process has the log
// open. Finding it on Open means the previous process stopped without
// closing the log (killed, power cut): the records it had appended but
// not yet committed are gone, and the chain must say so.
const runningFile = "running"

// CrashInterval is the loss interval a crash marker declared on Open.
type CrashInterval struct {
	From, To time.Time
	// Seq is the marker's sequence number.
	Seq uint64
}

func (l *Log) wasRunning() (bool, error) {
	_, err := os.Stat(filepath.Join(l.opt.Dir, runningFile))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, l.errorf("%w", err)
}

// markRunning creates the running file durably: a crash from now on is
// detected by the next Open.
func (l *Log) markRunning() error {
	path := filepath.Join(l.opt.Dir, runningFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return l.errorf("%w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(l.opt.Dir)
	}
	if err != nil {
		return l.errorf("mark running: %w", err)
	}
	return nil
}

// markStopped removes the running file once everything appended is
// durable: the next Open starts clean.
func (l *Log) markStopped() error {
	if err := os.Remove(filepath.Join(l.opt.Dir, runningFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return l.errorf("mark stopped: %w", err)
	}
	if err := syncDir(l.opt.Dir); err != nil {
		return l.errorf("mark stopped: %w", err)
	}
	return nil
}

// lastDurableTime is the latest record time of the last durable segment
// (the live one when it holds records, else the last sealed one), or the
// live segment's creation when the log holds no record at all.
func (l *Log) lastDurableTime() time.Time {
	if !l.liveLastTime.IsZero() {
		return l.liveLastTime
	}
	if segs, err := l.Sealed(); err == nil && len(segs) > 0 {
		if t := segs[len(segs)-1].MaxTime; !t.IsZero() {
			return t
		}
	}
	return l.seg.Created
}

// appendSkew bounds how much earlier than the latest durable record a
// lost record can be stamped. A DNS record is stamped when its query
// arrives and appended once answered, after an upstream that may take its
// whole timeout (2 s by default); many goroutines append, so the log's
// order is that of the appends, not of the stamps. A record stamped a
// little before the last durable one may still have been waiting for its
// append when the process died: the declared interval starts that much
// earlier.
const appendSkew = 2 * time.Second

// appendCrashMarker queues the marker of an unclean stop, before the
// committer starts: it is the first record after the recovered ones.
func (l *Log) appendCrashMarker() {
	from, to := l.lastDurableTime().Add(-appendSkew), l.opt.Now()
	m := journal.CrashMarker(l.opt.UAI, l.opt.Stream, from, to)
	seq := l.appendSeq(&m)
	l.recovery.Crash = &CrashInterval{From: from, To: to, Seq: seq}
	l.opt.Metrics.Crashes.WithLabelValues(l.opt.Stream.String()).Inc()
	l.opt.Log.Warn("journal: unclean stop, loss interval declared in the chain", "stream", l.opt.Stream,
		"from", from, "to", to, "marker_seq", seq)
}

// syncMarker waits for the crash marker to be durable before the edge
// serves again.
func (l *Log) syncMarker() error {
	if l.recovery.Crash == nil || l.recovery.Crash.Seq == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.Sync(ctx)
}
