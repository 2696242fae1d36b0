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
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	// MaintainEvery is the period of the free-space and segment-age
	// checks (1s); tests shorten it rather than wait real seconds.
	MaintainEvery time.Duration
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
	if o.MaintainEvery <= 0 {
		o.MaintainEvery = time.Second
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
	closed   bool
	// failing is set while commits fail; the committer reads it without
	// l.mu (it backs off on it).
	failing atomic.Bool

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
	// groupPeak is the recent largest group, in bytes (it decays): the
	// spare buffer is sized from it.
	groupPeak int
	ch        *journal.Chainer

	durable atomic.Uint64
	dmu     sync.Mutex
	dcond   *sync.Cond

	// commitMu serializes commits and rotations (the committer's work)
	// with Rotate and Close called from outside.
	commitMu   sync.Mutex
	sealClosed bool
	sealq      chan string
	sealing    atomic.Int64
	sealedMu   sync.Mutex
	sealedCond *sync.Cond // broadcast when sealing drops
	sealWG     sync.WaitGroup
	// recovery is written by Open and, for segments quarantined while
	// sealing, by the sealer afterwards: recMu guards it.
	recMu    sync.Mutex
	recovery Recovery
	lastFree time.Time
	// freedAt is heapAllocated when the sealer last gave memory back.
	freedAt uint64
	// liveLastTime is the latest record time of the live segment found
	// on Open (the start of a declared loss interval).
	liveLastTime time.Time
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
	l.sealedCond = sync.NewCond(&l.sealedMu)
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

// Chain returns the log's chain identity.
func (l *Log) Chain() journal.ChainID { return l.chain }

// Stream returns the log's stream.
func (l *Log) Stream() journal.Stream { return l.opt.Stream }

// Recovery returns what Open found (and segments the sealer set aside
// since).
func (l *Log) Recovery() Recovery {
	l.recMu.Lock()
	defer l.recMu.Unlock()
	r := l.recovery
	r.Quarantined = append([]string(nil), r.Quarantined...)
	r.Problems = append([]string(nil), r.Problems...)
	return r
}

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
