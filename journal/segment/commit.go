package segment

// Appending and group commit: records wait in memory for the committer,
// which writes and fsyncs them together and advances the durable sequence.

import (
	"context"
	"sync"
	"syscall"
	"time"

	"vigie/journal"
)

// Append queues r for the next group commit. It never blocks on the disk:
// when the log cannot take the record (disk full, disk stalled, closed),
// the record is counted and a gap marker takes its place in the chain.
func (l *Log) Append(r *journal.Record) { l.appendSeq(r) }

// appendSeq is Append returning the record's sequence number (0 when the
// record was dropped and counted).
func (l *Log) appendSeq(r *journal.Record) uint64 {
	// Encode and checksum before taking l.mu, the lock every DNS and
	// proxy goroutine shares: under it, only a copy.
	fp := framePool.Get().(*[]byte)
	defer framePool.Put(fp)
	var ok bool
	if r.Stream != l.opt.Stream {
		rr := *r
		rr.Stream = l.opt.Stream
		*fp, ok = appendRecordFrame((*fp)[:0], &rr)
	} else {
		*fp, ok = appendRecordFrame((*fp)[:0], r)
	}
	l.mu.Lock()
	wasEmpty := l.pendN == 0
	if l.closed || l.pressure || len(l.pend) >= l.opt.MaxPending {
		reason := DropOverload
		switch {
		case l.closed:
			reason = DropClosed
		case l.pressure:
			reason = DropDisk
		}
		l.lost++
		l.mu.Unlock()
		l.opt.Metrics.Dropped.WithLabelValues(l.opt.Stream.String(), reason).Inc()
		return 0
	}
	if !ok {
		l.lost++
		l.mu.Unlock()
		l.opt.Metrics.Dropped.WithLabelValues(l.opt.Stream.String(), DropInvalid).Inc()
		return 0
	}
	if l.lost > 0 {
		l.appendGapLocked()
	}
	l.pend = append(l.pend, *fp...)
	seq := l.nextSeq
	l.accepted(wasEmpty)
	return seq
}

// framePool holds the buffers records are encoded into before they are
// copied into the pending group.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// accepted finishes an append under l.mu and releases it; the first
// record of a group wakes the committer.
func (l *Log) accepted(wasEmpty bool) {
	l.nextSeq++
	l.pendN++
	n := l.pendN
	l.mu.Unlock()
	if wasEmpty {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	} else if n == l.opt.CommitRecords {
		select {
		case l.full <- struct{}{}:
		default:
		}
	}
}

// appendGapLocked writes the gap marker for the records lost so far.
func (l *Log) appendGapLocked() {
	g := journal.Record{Stream: l.opt.Stream, Time: l.opt.Now(), UAI: l.opt.UAI, Proto: "journal", Verdict: "gap", Lost: l.lost}
	l.pend, _ = appendRecordFrame(l.pend, &g)
	l.opt.Log.Warn("journal: gap recorded", "stream", l.opt.Stream, "lost", l.lost)
	l.lost = 0
	l.nextSeq++
	l.pendN++
}

// Durable returns the sequence number of the last record known to be on
// disk (0 when none).
func (l *Log) Durable() uint64 { return l.durable.Load() }

// WaitDurable waits until record seq is durable or ctx ends.
func (l *Log) WaitDurable(ctx context.Context, seq uint64) error {
	if l.durable.Load() >= seq {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		l.dmu.Lock()
		l.dcond.Broadcast()
		l.dmu.Unlock()
	})
	defer stop()
	l.dmu.Lock()
	defer l.dmu.Unlock()
	for l.durable.Load() < seq {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.dcond.Wait()
	}
	return nil
}

// Sync commits what is pending and waits for it to be durable.
func (l *Log) Sync(ctx context.Context) error {
	l.mu.Lock()
	want := l.nextSeq - 1
	l.mu.Unlock()
	select {
	case l.flush <- struct{}{}:
	default:
	}
	return l.WaitDurable(ctx, want)
}

// committer is the only writer of the live segment.
func (l *Log) committer() {
	defer close(l.done)
	maint := time.NewTicker(l.opt.MaintainEvery)
	defer maint.Stop()
	for {
		select {
		case <-l.stop:
			l.locked(l.commit)
			return
		case <-maint.C:
			l.locked(l.maintain)
			l.locked(l.commit)
			continue
		case <-l.kick:
			// Gather a group: wait for the interval unless the group
			// fills or someone waits for it (Sync).
			t := time.NewTimer(l.opt.CommitInterval)
			select {
			case <-t.C:
			case <-l.full:
				t.Stop()
			case <-l.flush:
				t.Stop()
			case <-l.stop:
				t.Stop()
			}
		case <-l.full:
		case <-l.flush:
		}
		l.locked(l.commit)
		if l.failing.Load() {
			// Back off while the disk refuses writes; appends keep
			// buffering up to MaxPending and count beyond.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-l.stop:
			}
		}
	}
}

func (l *Log) locked(f func()) {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	f()
}

// maintain checks free space and the live segment's age.
func (l *Log) maintain() {
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.opt.Dir, &st); err == nil {
		free := int64(st.Bavail) * int64(st.Bsize)
		l.mu.Lock()
		floor := l.opt.MinFreeBytes
		under := free < floor
		changed := under != l.pressure
		l.pressure = under
		if !under && l.lost > 0 {
			l.appendGapLocked()
		}
		l.mu.Unlock()
		if changed {
			v := 0.0
			if under {
				v = 1
				l.opt.Log.Error("journal: disk pressure, records are dropped and counted until space comes back", "stream", l.opt.Stream, "free_bytes", free, "floor_bytes", floor)
			} else {
				l.opt.Log.Warn("journal: disk pressure over", "stream", l.opt.Stream, "free_bytes", free)
			}
			l.opt.Metrics.DiskPressure.WithLabelValues(l.opt.Stream.String()).Set(v)
		}
	}
	l.segMu.Lock()
	old := l.segRecords > 0 && l.opt.Now().Sub(l.seg.Created) >= l.opt.SegmentAge
	l.segMu.Unlock()
	if old {
		if err := l.rotate(); err != nil {
			l.opt.Log.Error("journal: rotate", "stream", l.opt.Stream, "err", err)
		}
	}
}

// commit writes and fsyncs what is pending.
func (l *Log) commit() {
	l.mu.Lock()
	buf, n := l.pend, l.pendN
	if n == 0 {
		l.mu.Unlock()
		return
	}
	first := l.nextSeq - uint64(n)
	l.pend, l.pendN = l.spare[:0], 0
	l.mu.Unlock()

	l.segMu.Lock()
	link := l.link
	for off, seq := 0, first; off < len(buf); seq++ {
		size := int(leUint32(buf[off+1:]))
		link = l.ch.Link(link, seq, buf[off+5:off+5+size])
		off += recordOverhead + size
	}
	recLen := len(buf)
	buf = appendCommitFrame(buf, l.segRecords+uint64(n), link)
	start := time.Now()
	_, err := l.f.WriteAt(buf, l.segOff)
	if err == nil {
		err = syscall.Fdatasync(int(l.f.Fd()))
	}
	if err != nil {
		// Undo a partial write so the file stays a valid prefix, and put
		// the records back in front of what arrived since.
		// A failed truncate leaves bytes past segOff: the next commit
		// writes over them, and recovery cuts whatever no commit frame
		// covers, so it is reported, not fatal.
		if terr := l.f.Truncate(l.segOff); terr != nil {
			l.opt.Log.Error("journal: cannot cut a failed write back", "stream", l.opt.Stream, "offset", l.segOff, "err", terr)
		}
		l.segMu.Unlock()
		l.mu.Lock()
		l.pend = append(buf[:recLen], l.pend...)
		l.pendN += n
		l.mu.Unlock()
		if !l.failing.Swap(true) {
			l.opt.Log.Error("journal: commit failed, records kept in memory and retried", "stream", l.opt.Stream, "err", err)
		}
		return
	}
	l.opt.Metrics.FsyncSeconds.WithLabelValues(l.opt.Stream.String()).Observe(time.Since(start).Seconds())
	l.segOff += int64(len(buf))
	l.segRecords += uint64(n)
	l.link = link
	full := l.segRecords >= l.opt.SegmentRecords
	l.segMu.Unlock()
	if l.failing.Swap(false) {
		l.opt.Log.Info("journal: commits succeed again", "stream", l.opt.Stream)
	}
	// Keep the buffer for the group after next, unless a burst or a
	// slow disk blew it up far past what groups need now: pending
	// memory then goes back to that size instead of staying at the
	// peak for the life of the process. groupPeak forgets a burst
	// within a few dozen commits (an eighth per commit).
	l.groupPeak = max(len(buf), l.groupPeak-l.groupPeak/8)
	if keep := max(2*l.groupPeak, minSpare); cap(buf) <= keep {
		l.spare = buf[:0]
	} else {
		l.spare = make([]byte, 0, keep/2)
	}
	l.opt.Metrics.Records.WithLabelValues(l.opt.Stream.String()).Add(float64(n))
	l.opt.Metrics.Commits.WithLabelValues(l.opt.Stream.String()).Inc()
	l.dmu.Lock()
	l.durable.Store(first + uint64(n) - 1)
	l.dcond.Broadcast()
	l.dmu.Unlock()
	if full {
		if err := l.rotate(); err != nil {
			l.opt.Log.Error("journal: rotate", "stream", l.opt.Stream, "err", err)
		}
	}
}

// minSpare is the group buffer always kept for reuse: a 5 ms group at
// 100,000 records per second is about 50 KiB.
const minSpare = 64 << 10

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// rotate closes the live segment and starts the next; the sealer seals the
// old one. Called by the committer only.
func (l *Log) rotate() error {
	l.segMu.Lock()
	old, oldPath := l.f, l.segPath
	next := l.seg.FirstSeq + l.segRecords
	prev := l.link
	l.segMu.Unlock()
	l.mu.Lock()
	// Records appended since the last commit keep their sequence numbers:
	// they are committed into the new segment, which starts right after
	// the old one's last committed record.
	pendingFirst := l.nextSeq - uint64(l.pendN)
	l.mu.Unlock()
	if pendingFirst != next {
		return l.errorf("rotate: pending records start at %d, segment ends before %d", pendingFirst, next)
	}
	h := liveHeader{Stream: l.opt.Stream, Chain: l.chain, FirstSeq: next, Prev: prev, Created: l.opt.Now(), UAI: l.opt.UAI}
	// Created like the first one: rotation runs during sustained writes,
	// so this is where a kill -9 most often lands between creating a file
	// and writing its header.
	f, path, size, err := l.createLive(h)
	if err != nil {
		return err
	}
	l.segMu.Lock()
	l.f, l.seg, l.segPath, l.segOff, l.segRecords = f, h, path, size, 0
	l.segMu.Unlock()
	old.Close()
	if l.sealClosed {
		return nil // sealed by the next Open
	}
	l.sealing.Add(1)
	l.sealq <- oldPath
	return nil
}
