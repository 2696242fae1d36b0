package segment

// Opening a log: its chain identity, and the recovery of what a crash
// left (torn tails, damaged segments, live segments waiting to be sealed).

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"vigie/atomicfile"
	"vigie/journal"
)

// chainFile names a log's identity: the same directory must never hold
// two chains, and a log must never be opened for another school or stream.
type chainFile struct {
	UAI    string `json:"uai"`
	Stream string `json:"stream"`
	Chain  string `json:"chain"`
}

func (l *Log) loadChain() error {
	path := filepath.Join(l.opt.Dir, "chain.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		ents, _ := filepath.Glob(filepath.Join(l.opt.Dir, "seg-*"))
		if len(ents) > 0 {
			return l.errorf("%s is missing but %d segment files exist: refusing to start a second chain over them", path, len(ents))
		}
		if _, err := rand.Read(l.chain[:]); err != nil {
			return l.errorf("chain id: %w", err)
		}
		cf := chainFile{UAI: l.opt.UAI, Stream: l.opt.Stream.String(), Chain: l.chain.String()}
		data, _ = json.Marshal(cf)
		return atomicfile.Write(path, data, 0o600)
	}
	if err != nil {
		return l.errorf("%w", err)
	}
	var cf chainFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return l.errorf("%s: %w", path, err)
	}
	if cf.UAI != l.opt.UAI || cf.Stream != l.opt.Stream.String() {
		return l.errorf("%s belongs to %s/%s, not %s/%s", path, cf.UAI, cf.Stream, l.opt.UAI, l.opt.Stream)
	}
	if l.chain, err = journal.ParseChainID(cf.Chain); err != nil {
		return l.errorf("%s: %w", path, err)
	}
	return nil
}

// recover reads the directory, checks sealed segments, seals or removes
// leftover live segments, and reopens (or creates) the live one.
func (l *Log) recover() error {
	ents, err := os.ReadDir(l.opt.Dir)
	if err != nil {
		return l.errorf("%w", err)
	}
	var lives []uint64
	sealed := map[uint64]bool{}
	for _, e := range ents {
		first, ext, ok := parseSegName(e.Name())
		switch {
		case strings.HasPrefix(e.Name(), ".tmp-"):
			os.Remove(filepath.Join(l.opt.Dir, e.Name()))
		case !ok:
		case ext == "live":
			lives = append(lives, first)
		case ext == "sealed":
			sealed[first] = true
		}
	}
	sort.Slice(lives, func(i, j int) bool { return lives[i] < lives[j] })
	// A live file whose sealed form exists was sealed before the crash.
	keep := lives[:0]
	for _, first := range lives {
		if sealed[first] {
			if _, err := readSealedInfo(filepath.Join(l.opt.Dir, segName(first, "sealed")), l.opt.Key.Public().(ed25519.PublicKey)); err == nil {
				if err := os.Remove(filepath.Join(l.opt.Dir, segName(first, "live"))); err != nil {
					return l.errorf("remove sealed live segment: %w", err)
				}
				continue
			}
			// The sealed file is damaged (crash mid-write cannot leave it:
			// it is renamed into place): seal again from the live one.
			if err := os.Rename(filepath.Join(l.opt.Dir, segName(first, "sealed")), filepath.Join(l.opt.Dir, segName(first, "sealed.corrupt"))); err != nil {
				return l.errorf("quarantine: %w", err)
			}
			l.recovery.Quarantined = append(l.recovery.Quarantined, segName(first, "sealed"))
		}
		keep = append(keep, first)
	}
	lives = keep
	// Every live segment but the last was waiting to be sealed.
	for len(lives) > 1 {
		if err := l.sealFile(filepath.Join(l.opt.Dir, segName(lives[0], "live")), nil); err != nil {
			return err
		}
		l.recovery.Resealed++
		lives = lives[1:]
	}
	// A sealed segment that no longer verifies (damaged, or sealed with a
	// key this edge no longer has) is set aside, not allowed to stop the
	// edge: the break it leaves is reported and becomes a gap upstream.
	for first := range sealed {
		path := filepath.Join(l.opt.Dir, segName(first, "sealed"))
		if _, err := readSealedInfo(path, l.PublicKey()); err != nil {
			if _, serr := os.Stat(path); serr != nil {
				continue // renamed above
			}
			q := path + ".corrupt"
			if rerr := os.Rename(path, q); rerr != nil {
				return l.errorf("quarantine %s: %w", path, rerr)
			}
			l.recovery.Quarantined = append(l.recovery.Quarantined, q)
			l.opt.Metrics.Corrupt.WithLabelValues(l.opt.Stream.String()).Inc()
			l.opt.Log.Error("journal: sealed segment does not verify, set aside", "stream", l.opt.Stream, "file", path, "err", err)
		}
	}
	segs, err := l.Sealed()
	if err != nil {
		return err
	}
	prevLast := journal.Genesis(l.opt.UAI, l.opt.Stream, l.chain)
	next := uint64(1)
	for _, s := range segs {
		if s.FirstSeq != next || s.Prev != prevLast {
			p := fmt.Sprintf("sealed segment %d does not follow the previous one (expected sequence %d)", s.FirstSeq, next)
			l.recovery.Problems = append(l.recovery.Problems, p)
			l.opt.Log.Error("journal chain break between sealed segments", "stream", l.opt.Stream, "detail", p)
		}
		prevLast, next = s.Last, s.LastSeq+1
	}
	if len(lives) == 1 {
		return l.openLive(filepath.Join(l.opt.Dir, segName(lives[0], "live")), next, prevLast)
	}
	return l.newLive(next, prevLast, 0)
}

// openLive recovers the last live segment: truncate a torn tail, verify
// the chain, and continue appending to it.
func (l *Log) openLive(path string, wantFirst uint64, wantPrev journal.Hash) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return l.errorf("%w", err)
	}
	if first, _, _ := parseSegName(filepath.Base(path)); first == wantFirst && l.tornCreation(data, wantFirst, wantPrev) {
		// Left by a version that wrote the header in place (createLive
		// no longer can): nothing was ever committed here, so this is a
		// torn tail like any other, not damage and not a gap.
		if err := os.Remove(path); err != nil {
			return l.errorf("remove torn segment %s: %w", path, err)
		}
		l.recovery.TornBytes = int64(len(data))
		l.opt.Metrics.TornBytes.WithLabelValues(l.opt.Stream.String()).Add(float64(len(data)))
		l.opt.Log.Warn("journal: live segment cut while being created, recreated", "stream", l.opt.Stream, "file", path, "bytes", len(data))
		return l.newLive(wantFirst, wantPrev, 0)
	}
	res, err := scanLive(path, data, nil)
	var ce *CorruptError
	if errors.As(err, &ce) {
		return l.salvage(path, data, res, ce)
	}
	if err != nil {
		return l.errorf("%w", err)
	}
	if res.Header.FirstSeq != wantFirst || res.Header.Prev != wantPrev || res.Header.Chain != l.chain {
		p := fmt.Sprintf("live segment %d does not follow the sealed ones (expected sequence %d)", res.Header.FirstSeq, wantFirst)
		l.recovery.Problems = append(l.recovery.Problems, p)
		l.opt.Log.Error("journal chain break", "stream", l.opt.Stream, "detail", p)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return l.errorf("%w", err)
	}
	if res.End < res.Size {
		torn := res.Size - res.End
		if err := f.Truncate(res.End); err != nil {
			f.Close()
			return l.errorf("truncate torn tail of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return l.errorf("%w", err)
		}
		l.recovery.TornBytes = torn
		l.opt.Metrics.TornBytes.WithLabelValues(l.opt.Stream.String()).Add(float64(torn))
		l.opt.Log.Warn("journal: torn tail truncated after a crash", "stream", l.opt.Stream, "file", path,
			"bytes", torn, "records_kept", res.Records)
	}
	l.f, l.seg, l.segPath, l.segOff = f, res.Header, path, res.End
	l.segRecords, l.link = res.Records, res.Last
	l.liveLastTime = res.LastTime
	l.nextSeq = res.Header.FirstSeq + res.Records
	l.durable.Store(l.nextSeq - 1)
	return nil
}

// tornCreation reports whether data is what a crash leaves of a live
// segment whose header was being written in place: shorter than a whole
// header and, byte for byte, the start of the header this log writes for
// a segment starting at first after prev (the creation time and the
// checksum over it aside). Records are only committed after the header is
// synced, so no acknowledged record can be lost by dropping it; anything
// else, a whole header included, goes through the damage checks.
func (l *Log) tornCreation(data []byte, first uint64, prev journal.Hash) bool {
	want := (&liveHeader{Stream: l.opt.Stream, Chain: l.chain, FirstSeq: first, Prev: prev, UAI: l.opt.UAI}).append(nil)
	if len(data) >= len(want) {
		return false
	}
	for i, c := range data {
		if (i >= createdOff && i < createdOff+8) || i >= len(want)-4 {
			continue
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// salvage handles a damaged live segment: the valid records before the
// damage are sealed, the file is quarantined, and the chain continues from
// the last intact commit after the damage, with a gap marker for the
// records in between.
func (l *Log) salvage(path string, data []byte, res scanResult, ce *CorruptError) error {
	l.opt.Metrics.Corrupt.WithLabelValues(l.opt.Stream.String()).Inc()
	l.opt.Log.Error("journal: damaged segment quarantined", "stream", l.opt.Stream, "err", ce,
		"offset", ce.Offset, "size", len(data), "valid_end", res.End, "records_kept", res.Records, "committed", res.Committed)
	if res.Header.FirstSeq == 0 {
		// Even the header is gone: nothing to salvage, nothing to resume
		// from. Keep the file aside and start after the sealed ones.
		q := path + ".corrupt"
		if err := os.Rename(path, q); err != nil {
			return l.errorf("quarantine %s: %w", path, err)
		}
		l.recovery.Quarantined = append(l.recovery.Quarantined, q)
		// An unreadable directory must stop the open: restarting the
		// chain from genesis here would fork it silently.
		segs, err := l.Sealed()
		if err != nil {
			return err
		}
		next, prev := uint64(1), journal.Genesis(l.opt.UAI, l.opt.Stream, l.chain)
		if len(segs) > 0 {
			next, prev = segs[len(segs)-1].LastSeq+1, segs[len(segs)-1].Last
		}
		return l.newLive(next, prev, 1)
	}
	h := res.Header
	good := res.Records
	if good > 0 {
		if err := l.sealImage(path, data[:res.End], h.FirstSeq); err != nil {
			return err
		}
	}
	count, link, ok := lastCommit(data[res.End:])
	resume, prev := h.FirstSeq+good, res.Last
	lost := int64(0)
	if ok && count > good {
		resume, prev, lost = h.FirstSeq+count, link, int64(count-good)
	} else {
		lost = 1 // unknown how many: at least the damaged one
	}
	q := path + ".corrupt"
	if err := os.Rename(path, q); err != nil {
		return l.errorf("quarantine %s: %w", path, err)
	}
	l.recovery.Quarantined = append(l.recovery.Quarantined, q)
	return l.newLive(resume, prev, lost)
}

// lastCommit finds the last intact commit frame in b.
func lastCommit(b []byte) (uint64, journal.Hash, bool) {
	var link journal.Hash
	for end := len(b); ; {
		i := lastIndex(b[:end], commitMagic)
		if i < 0 {
			return 0, link, false
		}
		if validCommitAfter(b[i:min(len(b), i+commitSize)]) {
			copy(link[:], b[i+13:i+45])
			return leUint64(b[i+5:]), link, true
		}
		end = i
	}
}

func lastIndex(b, sep []byte) int { return strings.LastIndex(string(b), string(sep)) }

func leUint64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// newLive creates a fresh live segment starting at first. lost > 0 writes
// a gap marker as its first record.
func (l *Log) newLive(first uint64, prev journal.Hash, lost int64) error {
	h := liveHeader{Stream: l.opt.Stream, Chain: l.chain, FirstSeq: first, Prev: prev, Created: l.opt.Now(), UAI: l.opt.UAI}
	f, path, size, err := l.createLive(h)
	if err != nil {
		return err
	}
	l.segMu.Lock()
	l.f, l.seg, l.segPath, l.segOff, l.segRecords, l.link = f, h, path, size, 0, prev
	l.segMu.Unlock()
	l.mu.Lock()
	l.nextSeq = first
	l.lost += lost
	l.mu.Unlock()
	l.durable.Store(first - 1)
	return nil
}

// createLive creates the live segment file for h and returns it open for
// writing after its header. The header is written and synced under a
// ".tmp-" name (removed on open after a crash) and only then renamed: a
// kill at any point, during rotation as much as at open, leaves either no
// segment or one with a whole header, never a torn one that recovery
// would have to tell apart from damage.
func (l *Log) createLive(h liveHeader) (*os.File, string, int64, error) {
	path := filepath.Join(l.opt.Dir, segName(h.FirstSeq, "live"))
	tmp := filepath.Join(l.opt.Dir, ".tmp-"+segName(h.FirstSeq, "live"))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, "", 0, l.errorf("create %s: %w", path, err)
	}
	hdr := h.append(nil)
	if _, err = f.Write(hdr); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(l.opt.Dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		os.Remove(path)
		return nil, "", 0, l.errorf("create %s: %w", path, err)
	}
	return f, path, int64(len(hdr)), nil
}
