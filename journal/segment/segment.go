// Package segment is the edge's durable journal: one append-only log per
// stream, made of segment files.
//
// Appending never blocks the data plane for long: Append encodes the record
// into a buffer and returns; a committer goroutine writes the buffer and
// fsyncs it every few milliseconds or every N records (group commit), then
// advances the durable sequence number. Each record frame carries a CRC;
// each commit carries the hash-chain link after its last record. A full or
// old segment is sealed in the background: rewritten column by column,
// deflated and signed with the edge's Ed25519 key (see Batch), the form in
// which it ships to the control plane.
//
// On Open a torn tail (a write cut short by a crash) is truncated and
// reported, the chain of the live segment is re-verified, and the sealed
// segments' signatures and links are checked. Damage that is not a torn
// tail quarantines the file, keeps the valid records before it, and
// continues the chain after a gap marker: the journal never silently drops.
package segment

import (
	"compress/flate"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"vigie/atomicfile"
	"vigie/journal"
)

// Options configure one stream's log. Zero values take the defaults below.
type Options struct {
	// Dir holds this stream's segments (one directory per stream).
	Dir    string
	UAI    string
	Stream journal.Stream
	// Key seals segments; required.
	Key     ed25519.PrivateKey
	Log     *slog.Logger
	Now     func() time.Time
	Metrics *Metrics

	// CommitInterval is the longest a record waits for its fsync (5 ms).
	CommitInterval time.Duration
	// CommitRecords starts a commit early when this many wait (8192).
	CommitRecords int
	// MaxPending is the most bytes of encoded records waiting for a commit
	// (64 MiB); past it (the disk stalls), records are dropped and counted
	// in a gap marker.
	MaxPending int
	// SegmentRecords and SegmentAge bound a live segment (256 Ki records,
	// 10 minutes) before it is sealed. The archive verifies a batch whole
	// in memory, so this also bounds its memory per ingest.
	SegmentRecords uint64
	SegmentAge     time.Duration
	// MinFreeBytes is the free-space floor (256 MiB): under it, the log
	// stops writing, drops and counts records, and raises the disk
	// pressure metric until space comes back. Negative disables the check.
	MinFreeBytes int64
	// Level is the deflate level of sealed segments (flate.BestSpeed: the
	// columns do most of the work; higher levels gain 2-5 % for 5-20 times
	// the CPU, see TestSealedSize).
	Level int
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("journal: segment: no directory")
	}
	if o.Stream != journal.Connexions && o.Stream != journal.Navigation {
		return fmt.Errorf("journal: segment: unknown stream %d", o.Stream)
	}
	if len(o.Key) != ed25519.PrivateKeySize {
		return errors.New("journal: segment: no sealing key")
	}
	if o.UAI == "" || len(o.UAI) > maxUAI {
		return fmt.Errorf("journal: segment: bad UAI %q", o.UAI)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = 5 * time.Millisecond
	}
	if o.CommitRecords <= 0 {
		o.CommitRecords = 8192
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 64 << 20
	}
	if o.SegmentRecords == 0 {
		o.SegmentRecords = 256 << 10
	}
	if o.SegmentAge <= 0 {
		o.SegmentAge = 10 * time.Minute
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 256 << 20
	}
	if o.Level == 0 {
		o.Level = flate.BestSpeed
	}
	return nil
}

// Recovery is what Open found and did.
type Recovery struct {
	// TornBytes were truncated from the end of the live segment (or were
	// all of a segment cut while its header was being written).
	TornBytes int64
	// Quarantined are damaged files renamed *.corrupt.
	Quarantined []string
	// Resealed counts live segments left by a crash and sealed on open.
	Resealed int
	// Problems describe breaks between sealed segments (reported, kept).
	Problems []string
	// LastSeq is the last durable record after recovery.
	LastSeq uint64
	// Crash is the loss interval declared after an unclean stop (nil
	// after a clean one).
	Crash *CrashInterval
}

// Log is one stream's journal. Append is safe for concurrent use.
type Log struct {
	opt   Options
	chain journal.ChainID

	mu       sync.Mutex
	pend     []byte
	pendN    int
	nextSeq  uint64
	lost     int64
	pressure bool
	failing  bool
	closed   bool

	kick  chan struct{}
	full  chan struct{}
	flush chan struct{} // Sync: commit now
	stop  chan struct{}
	done  chan struct{}

	// Owned by the committer; segMu guards them against Tail and Sealed.
	segMu      sync.Mutex
	f          *os.File
	seg        liveHeader
	segPath    string
	segOff     int64
	segRecords uint64
	link       journal.Hash
	spare      []byte
	ch         *journal.Chainer

	durable atomic.Uint64
	dmu     sync.Mutex
	dcond   *sync.Cond

	// commitMu serializes commits and rotations (the committer's work)
	// with Rotate and Close called from outside.
	commitMu   sync.Mutex
	sealClosed bool
	sealq      chan string
	sealing    atomic.Int64
	sealWG     sync.WaitGroup
	recovery   Recovery
	lastFree   time.Time
	// liveLastTime is the latest record time of the live segment found
	// on Open (the start of a declared loss interval).
	liveLastTime time.Time
}

// chainFile names a log's identity: the same directory must never hold
// two chains, and a log must never be opened for another school or stream.
type chainFile struct {
	UAI    string `json:"uai"`
	Stream string `json:"stream"`
	Chain  string `json:"chain"`
}

// Open opens (creating if needed) and recovers the log in opt.Dir, then
// starts its committer and sealer.
func Open(opt Options) (*Log, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	l := &Log{opt: opt, kick: make(chan struct{}, 1), full: make(chan struct{}, 1), flush: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), sealq: make(chan string, 64), ch: journal.NewChainer()}
	l.dcond = sync.NewCond(&l.dmu)
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: %s: %w", opt.Stream, err)
	}
	if err := l.loadChain(); err != nil {
		return nil, err
	}
	unclean, err := l.wasRunning()
	if err != nil {
		return nil, err
	}
	if err := l.recover(); err != nil {
		return nil, err
	}
	l.recovery.LastSeq = l.durable.Load()
	if unclean {
		l.appendCrashMarker()
	}
	if err := l.markRunning(); err != nil {
		return nil, err
	}
	l.sealWG.Add(1)
	go l.sealer()
	go l.committer()
	if err := l.syncMarker(); err != nil {
		l.Close()
		return nil, l.errorf("crash marker: %w", err)
	}
	return l, nil
}

func (l *Log) errorf(format string, args ...any) error {
	return fmt.Errorf("journal: %s: "+format, append([]any{l.opt.Stream}, args...)...)
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

// Chain returns the log's chain identity.
func (l *Log) Chain() journal.ChainID { return l.chain }

// Stream returns the log's stream.
func (l *Log) Stream() journal.Stream { return l.opt.Stream }

// Recovery returns what Open found.
func (l *Log) Recovery() Recovery { return l.recovery }

// segName is the file name of the segment starting at firstSeq.
func segName(firstSeq uint64, ext string) string {
	return fmt.Sprintf("seg-%016d.%s", firstSeq, ext)
}

func parseSegName(name string) (uint64, string, bool) {
	base, ext, ok := strings.Cut(name, ".")
	if !ok || !strings.HasPrefix(base, "seg-") {
		return 0, "", false
	}
	n, err := strconv.ParseUint(base[4:], 10, 64)
	return n, ext, err == nil
}

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
				os.Remove(filepath.Join(l.opt.Dir, segName(first, "live")))
				continue
			}
			// The sealed file is damaged (crash mid-write cannot leave it:
			// it is renamed into place): seal again from the live one.
			os.Rename(filepath.Join(l.opt.Dir, segName(first, "sealed")), filepath.Join(l.opt.Dir, segName(first, "sealed.corrupt")))
			l.recovery.Quarantined = append(l.recovery.Quarantined, segName(first, "sealed"))
		}
		keep = append(keep, first)
	}
	lives = keep
	// Every live segment but the last was waiting to be sealed.
	for len(lives) > 1 {
		if err := l.sealFile(filepath.Join(l.opt.Dir, segName(lives[0], "live"))); err != nil {
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
		os.Rename(path, q)
		l.recovery.Quarantined = append(l.recovery.Quarantined, q)
		segs, _ := l.Sealed()
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

// Append queues r for the next group commit. It never blocks on the disk:
// when the log cannot take the record (disk full, disk stalled, closed),
// the record is counted and a gap marker takes its place in the chain.
func (l *Log) Append(r *journal.Record) { l.appendSeq(r) }

// appendSeq is Append returning the record's sequence number (0 when the
// record was dropped and counted).
func (l *Log) appendSeq(r *journal.Record) uint64 {
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
	if l.lost > 0 {
		l.appendGapLocked()
	}
	var ok bool
	if r.Stream != l.opt.Stream {
		rr := *r
		rr.Stream = l.opt.Stream
		l.pend, ok = appendRecordFrame(l.pend, &rr)
	} else {
		l.pend, ok = appendRecordFrame(l.pend, r)
	}
	if !ok {
		l.lost++
		l.mu.Unlock()
		l.opt.Metrics.Dropped.WithLabelValues(l.opt.Stream.String(), DropInvalid).Inc()
		return 0
	}
	seq := l.nextSeq
	l.accepted(wasEmpty)
	return seq
}

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
	maint := time.NewTicker(time.Second)
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
		if l.failing {
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
		l.f.Truncate(l.segOff)
		l.segMu.Unlock()
		l.mu.Lock()
		l.pend = append(buf[:recLen], l.pend...)
		l.pendN += n
		wasFailing := l.failing
		l.failing = true
		l.mu.Unlock()
		if !wasFailing {
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
	if l.failing {
		l.mu.Lock()
		l.failing = false
		l.mu.Unlock()
		l.opt.Log.Info("journal: commits succeed again", "stream", l.opt.Stream)
	}
	l.spare = buf[:0]
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

func (l *Log) sealer() {
	defer l.sealWG.Done()
	for path := range l.sealq {
		if err := l.sealFile(path); err != nil {
			l.opt.Log.Error("journal: seal", "stream", l.opt.Stream, "file", path, "err", err)
		}
		l.sealing.Add(-1)
	}
}

// sealFile seals one finished live segment.
func (l *Log) sealFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return l.errorf("%w", err)
	}
	res, err := scanLive(path, data, nil)
	var ce *CorruptError
	if errors.As(err, &ce) {
		// Seal what is valid, keep the file aside; the next segment's
		// header already carries the link after the last commit, so the
		// archive will see (and report) the break.
		l.opt.Metrics.Corrupt.WithLabelValues(l.opt.Stream.String()).Inc()
		l.opt.Log.Error("journal: damaged segment quarantined", "stream", l.opt.Stream, "err", ce,
			"offset", ce.Offset, "size", len(data), "valid_end", res.End, "records_kept", res.Records, "committed", res.Committed)
		if res.Records > 0 {
			if err := l.sealImage(path, data[:res.End], res.Header.FirstSeq); err != nil {
				return err
			}
		}
		q := path + ".corrupt"
		l.recovery.Quarantined = append(l.recovery.Quarantined, q)
		return os.Rename(path, q)
	}
	if err != nil {
		return l.errorf("%w", err)
	}
	if res.Records == 0 {
		os.Remove(path)
		return syncDir(l.opt.Dir)
	}
	if err := l.sealImage(path, data[:res.End], res.Header.FirstSeq); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return l.errorf("%w", err)
	}
	return syncDir(l.opt.Dir)
}

// sealImage writes the sealed form of a valid live segment image.
func (l *Log) sealImage(path string, img []byte, first uint64) error {
	var bb *batchBuilder
	_, err := scanLive(path, img, func(seq uint64, payload []byte, r *journal.Record) error {
		if bb == nil {
			h, _, _ := parseLiveHeader(img)
			bb = newBatchBuilder(h.UAI, h.Stream, h.Chain, h.FirstSeq, h.Prev)
		}
		bb.add(r, payload)
		return nil
	})
	if err != nil {
		return l.errorf("seal %s: %w", path, err)
	}
	if bb == nil {
		return nil
	}
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
	for {
		if l.sealing.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
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
	img := make([]byte, size)
	_, err = f.ReadAt(img, 0)
	f.Close()
	if err != nil {
		return nil, nil, l.errorf("%w", err)
	}
	h, _, err := parseLiveHeader(img)
	if err != nil {
		return nil, nil, l.errorf("%s: %w", path, err)
	}
	var bb *batchBuilder
	link := h.Prev
	ch := journal.NewChainer()
	_, err = scanLive(path, img, func(seq uint64, payload []byte, r *journal.Record) error {
		if seq < from {
			link = ch.Link(link, seq, payload)
			return nil
		}
		if bb == nil {
			bb = newBatchBuilder(h.UAI, h.Stream, h.Chain, seq, link)
		}
		bb.add(r, payload)
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
		syncDir(l.opt.Dir)
	}
	return n, freed, nil
}

// Close commits what is pending, stops the committer and the sealer, and
// closes the live segment (it is reopened and continued by the next Open).
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.commitMu.Lock()
	l.sealClosed = true
	close(l.sealq)
	l.commitMu.Unlock()
	l.sealWG.Wait()
	l.segMu.Lock()
	defer l.segMu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	l.mu.Lock()
	pending := l.pendN
	l.mu.Unlock()
	if pending > 0 {
		return l.errorf("closed with %d records not written (disk failing)", pending)
	}
	if err != nil {
		return err
	}
	// Everything appended is durable: the next Open starts clean.
	return l.markStopped()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

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
	img := make([]byte, size)
	_, err = f.ReadAt(img, 0)
	f.Close()
	if err != nil {
		return res, l.errorf("%s: %w", path, err)
	}
	sr, err := scanLive(path, img, func(_ uint64, _ []byte, r *journal.Record) error {
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

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.opt.Dir }

// Free returns the bytes available to the log's directory.
func (l *Log) Free() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.opt.Dir, &st); err != nil {
		return 0, l.errorf("%w", err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// LiveFirst returns the first sequence number of the live segment.
func (l *Log) LiveFirst() uint64 {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	return l.seg.FirstSeq
}

// PublicKey is the key the log's seals verify with.
func (l *Log) PublicKey() ed25519.PublicKey { return l.opt.Key.Public().(ed25519.PublicKey) }
