package segment

// Sealing: finished live segments become compressed, signed batches, the
// form in which they ship; the tail of the live one ships the same way.

import (
	"compress/flate"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"vigie/atomicfile"
	"vigie/journal"
)

// SealedInfo describes a sealed segment file.
type SealedInfo struct {
	Path     string
	FirstSeq uint64
	LastSeq  uint64
	Last     journal.Hash
	Prev     journal.Hash
	Sealed   time.Time
	Size     int64
	// MaxTime is the latest record time in the segment.
	MaxTime time.Time
}

// Sealed lists the sealed segments in sequence order. Each header's
// signature is checked.
func (l *Log) Sealed() ([]SealedInfo, error) {
	ents, err := os.ReadDir(l.opt.Dir)
	if err != nil {
		return nil, l.errorf("%w", err)
	}
	pub := l.opt.Key.Public().(ed25519.PublicKey)
	var out []SealedInfo
	for _, e := range ents {
		first, ext, ok := parseSegName(e.Name())
		if !ok || ext != "sealed" {
			continue
		}
		path := filepath.Join(l.opt.Dir, e.Name())
		info, err := readSealedInfo(path, pub)
		if err != nil {
			return nil, l.errorf("%w", err)
		}
		if info.FirstSeq != first {
			return nil, l.errorf("%s holds records from %d", path, info.FirstSeq)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstSeq < out[j].FirstSeq })
	return out, nil
}

func readSealedInfo(path string, pub ed25519.PublicKey) (SealedInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return SealedInfo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SealedInfo{}, err
	}
	// The header and signature fit in 512 bytes; the body length check
	// needs the whole size, so parse against a view that fakes the body.
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return SealedInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	head = head[:n]
	b, err := parseHeaderOnly(head, st.Size(), pub)
	if err != nil {
		return SealedInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return SealedInfo{Path: path, FirstSeq: b.FirstSeq, LastSeq: b.LastSeq(), Last: b.Last, Prev: b.Prev, Sealed: b.Sealed, Size: st.Size(), MaxTime: b.MaxTime}, nil
}

// parseHeaderOnly checks a batch header and signature given only the first
// bytes of the file and its total size.
func parseHeaderOnly(head []byte, size int64, pub ed25519.PublicKey) (*Batch, error) {
	b, _, err := parseHeader(head, size, pub)
	return b, err
}

func (l *Log) sealer() {
	defer l.sealWG.Done()
	// One arena and one deflate writer serve every seal, the arena
	// emptied after each; both are made on the first seal (the stream
	// may never need one).
	var reuse *sealReuse
	defer func() {
		if reuse != nil {
			reuse.a.free()
		}
	}()
	for path := range l.sealq {
		if reuse == nil {
			reuse = &sealReuse{a: newArena(sealArenaSize)}
			// A bad level leaves zw nil: finish then reports it.
			reuse.zw, _ = kflate.NewWriter(io.Discard, l.opt.Level)
		}
		err := l.sealFile(path, reuse)
		reuse.a.reset()
		if err != nil {
			l.opt.Log.Error("journal: seal", "stream", l.opt.Stream, "file", path, "err", err)
		}
		// The data plane allocates next to nothing per query, so the
		// heap grows only by what the seals leave, and no collection
		// would come to give those pages back between seals, which is
		// where an edge spends its time. The seal itself works in the
		// arena (given back above), so it leaves little: once the heap
		// has allocated a few megabytes since the last time, collect and
		// give the pages back (a collection and a scavenge: a few
		// milliseconds, no longer at every seal).
		if n, ok := heapAllocated(); !ok || n-l.freedAt >= freeAfter {
			debug.FreeOSMemory()
			l.freedAt, _ = heapAllocated()
		}
		l.sealedMu.Lock()
		l.sealing.Add(-1)
		l.sealedCond.Broadcast()
		l.sealedMu.Unlock()
	}
}

// freeAfter is how much the heap may allocate (all of it garbage for the
// journal's part) before the sealer collects and gives the pages back.
const freeAfter = 4 << 20

// heapAllocated is the bytes allocated on the heap since the process
// started (runtime/metrics: no stop of the world); false when the runtime
// does not say.
func heapAllocated() (uint64, bool) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return s[0].Value.Uint64(), true
}

// sealFile seals one finished live segment. The file is read once,
// through a bounded window: each record is checked (CRC, encoding, chain)
// and goes into the batch in the same pass. The batch is built with
// reuse (nil: on the heap), whose arena the caller resets once sealFile
// returns.
func (l *Log) sealFile(path string, reuse *sealReuse) error {
	f, err := os.Open(path)
	if err != nil {
		return l.errorf("%w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return l.errorf("%w", err)
	}
	var bb *batchBuilder
	var a *arena
	if reuse != nil {
		a = reuse.a
	}
	res, err := sealScanFile(path, f, st.Size(), a, func(seq uint64, _ []byte, r *journal.Record, link journal.Hash) error {
		if bb == nil {
			h, err := readLiveHeader(f, st.Size())
			if err != nil {
				return err
			}
			bb = reuse.builder(newBatchBuilder(h.UAI, h.Stream, h.Chain, h.FirstSeq, h.Prev))
		}
		bb.addLinked(r, link)
		return nil
	})
	var ce *CorruptError
	if errors.As(err, &ce) {
		// Seal what is valid (the batch holds exactly the records before
		// the damage), keep the file aside; the next segment's header
		// already carries the link after the last commit, so the archive
		// will see (and report) the break.
		l.opt.Metrics.Corrupt.WithLabelValues(l.opt.Stream.String()).Inc()
		l.opt.Log.Error("journal: damaged segment quarantined", "stream", l.opt.Stream, "err", ce,
			"offset", ce.Offset, "size", st.Size(), "valid_end", res.End, "records_kept", res.Records, "committed", res.Committed)
		if bb != nil {
			if err := l.writeSealed(path, bb, res.Header.FirstSeq); err != nil {
				return err
			}
		}
		q := path + ".corrupt"
		l.recMu.Lock()
		l.recovery.Quarantined = append(l.recovery.Quarantined, q)
		l.recMu.Unlock()
		if err := os.Rename(path, q); err != nil {
			return l.errorf("quarantine %s: %w", path, err)
		}
		return syncDir(l.opt.Dir)
	}
	if err != nil {
		return l.errorf("%w", err)
	}
	if bb != nil {
		if err := l.writeSealed(path, bb, res.Header.FirstSeq); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil {
		return l.errorf("%w", err)
	}
	return syncDir(l.opt.Dir)
}

// readLiveHeader reads the header of a live segment file of size bytes.
func readLiveHeader(f io.ReaderAt, size int64) (liveHeader, error) {
	b := make([]byte, min(size, headerFixed+maxUAI+4))
	if err := readFull(f, b, 0); err != nil {
		return liveHeader{}, err
	}
	h, _, err := parseLiveHeader(b)
	return h, err
}

// sealImage writes the sealed form of a valid live segment image.
func (l *Log) sealImage(path string, img []byte, first uint64) error {
	var bb *batchBuilder
	_, err := sealScan(path, img, func(seq uint64, _ []byte, r *journal.Record, link journal.Hash) error {
		if bb == nil {
			h, _, _ := parseLiveHeader(img)
			bb = newBatchBuilder(h.UAI, h.Stream, h.Chain, h.FirstSeq, h.Prev)
		}
		bb.addLinked(r, link)
		return nil
	})
	if err != nil {
		return l.errorf("seal %s: %w", path, err)
	}
	if bb == nil {
		return nil
	}
	return l.writeSealed(path, bb, first)
}

// writeSealed finishes bb and writes it as the sealed segment starting at
// first.
func (l *Log) writeSealed(path string, bb *batchBuilder, first uint64) error {
	out, _, err := bb.finish(true, l.opt.Now(), l.opt.Key, l.opt.Level)
	if err != nil {
		return l.errorf("seal %s: %w", path, err)
	}
	dst := filepath.Join(l.opt.Dir, segName(first, "sealed"))
	if err := atomicfile.Write(dst, out, 0o600); err != nil {
		return l.errorf("seal %s: %w", path, err)
	}
	l.opt.Metrics.Sealed.WithLabelValues(l.opt.Stream.String()).Inc()
	l.opt.Metrics.SealedBytes.WithLabelValues(l.opt.Stream.String()).Add(float64(len(out)))
	return nil
}

// Rotate seals the live segment now (if it holds records). Tests and the
// shutdown of a decommissioned edge use it.
func (l *Log) Rotate(ctx context.Context) error {
	if err := l.Sync(ctx); err != nil {
		return err
	}
	done := make(chan error, 1)
	// Run on the committer's side of the fence: take the lock order the
	// committer uses and make sure no commit runs concurrently.
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return l.errorf("closed")
	}
	go func() { done <- l.rotateFromOutside() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rotateFromOutside rotates while holding commitMu.
func (l *Log) rotateFromOutside() error {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	if l.sealClosed {
		return l.errorf("closed")
	}
	l.segMu.Lock()
	empty := l.segRecords == 0
	l.segMu.Unlock()
	if empty {
		return nil
	}
	return l.rotate()
}

// WaitSealed waits until the sealer has processed every segment handed to
// it so far.
func (l *Log) WaitSealed(ctx context.Context) error {
	if l.sealing.Load() == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		l.sealedMu.Lock()
		l.sealedCond.Broadcast()
		l.sealedMu.Unlock()
	})
	defer stop()
	l.sealedMu.Lock()
	defer l.sealedMu.Unlock()
	for l.sealing.Load() != 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.sealedCond.Wait()
	}
	return nil
}

// Tail returns a signed, non-final batch of the durable records of the
// live segment from sequence from on, or nil when there are none. Records
// before the live segment are in sealed segments: ship those first.
func (l *Log) Tail(from uint64) ([]byte, *Batch, error) {
	l.segMu.Lock()
	path, size, first := l.segPath, l.segOff, l.seg.FirstSeq
	l.segMu.Unlock()
	if from < first {
		return nil, nil, l.errorf("tail from %d: the live segment starts at %d", from, first)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, l.errorf("%w", err)
	}
	defer f.Close()
	h, err := readLiveHeader(f, size)
	if err != nil {
		return nil, nil, l.errorf("%s: %w", path, err)
	}
	var bb *batchBuilder
	prev := h.Prev
	_, err = sealScanFile(path, f, size, nil, func(seq uint64, _ []byte, r *journal.Record, link journal.Hash) error {
		if seq < from {
			prev = link
			return nil
		}
		if bb == nil {
			bb = newBatchBuilder(h.UAI, h.Stream, h.Chain, seq, prev)
		}
		bb.addLinked(r, link)
		return nil
	})
	if err != nil {
		return nil, nil, l.errorf("tail: %w", err)
	}
	if bb == nil {
		return nil, nil, nil
	}
	// The tail ships often: favour speed over size.
	out, b, err := bb.finish(false, l.opt.Now(), l.opt.Key, flate.DefaultCompression)
	if err != nil {
		return nil, nil, l.errorf("tail: %w", err)
	}
	return out, b, nil
}

// Prune removes sealed segments wholly at or below ackedThrough that were
// sealed before olderThan. It never removes anything not acknowledged.
func (l *Log) Prune(ackedThrough uint64, olderThan time.Time) (int, int64, error) {
	segs, err := l.Sealed()
	if err != nil {
		return 0, 0, err
	}
	n, freed := 0, int64(0)
	for _, s := range segs {
		if s.LastSeq > ackedThrough || !s.Sealed.Before(olderThan) {
			continue
		}
		if err := os.Remove(s.Path); err != nil {
			return n, freed, l.errorf("%w", err)
		}
		n++
		freed += s.Size
	}
	if n > 0 {
		if err := syncDir(l.opt.Dir); err != nil {
			return n, freed, l.errorf("%w", err)
		}
	}
	return n, freed, nil
}
