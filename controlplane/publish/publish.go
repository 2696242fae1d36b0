// Package publish turns the RSSI's draft into signed, numbered policy
// bundles and serves them to edges. Publishing validates the draft, compiles
// it with the rules engine, signs it with the académie key, stores it as the
// next serial (manifest plus content-addressed sections) and wakes every
// edge waiting on a long-poll. A rollback republishes an earlier version's
// exact sections under a new serial, so edges fetch only the manifest.
package publish

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane/audit"
	"vigie/controlplane/listtree"
	"vigie/controlplane/store"
	"vigie/rules"
	"vigie/rules/bundle"
	"vigie/rules/firewall"
	"vigie/rules/policy"
)

// Config is what a Publisher needs.
type Config struct {
	// DataDir resolves the relative source paths of the draft (imported
	// list trees live under DataDir/lists).
	DataDir string
	// Key signs bundles: the académie's Ed25519 key.
	Key ed25519.PrivateKey
	Log *slog.Logger
	// Registry receives the publisher's metrics (nil: not exported).
	Registry prometheus.Registerer
	Now      func() time.Time
}

// Actor is who asks for a publication, as written in the audit log.
type Actor struct {
	Name, Role, Remote string
}

// Head is the version served to edges. Every head carries a channel closed
// when a newer one replaces it: waiting edges block on it, so a publish
// wakes them all at once without anyone polling the database.
type Head struct {
	Serial   uint64
	Hash     string
	Created  time.Time
	Manifest *Blob
	// next is closed when this head is replaced.
	next chan struct{}
	// sections holds the parts by hash: the hot set is served from memory
	// without copies. bundle is the whole signed bundle: given when this
	// process signed or loaded it whole, else joined from sections on
	// first demand (a follower replica wakes its edges on the manifest
	// and the changed sections alone; few edges ever ask for the whole).
	sections   map[[32]byte]*Blob
	bundleOnce sync.Once
	bundle     *Blob
	bundleErr  error
	// Delta carries, in one response, the manifest and the sections that
	// changed since serial DeltaFrom: what an edge one version behind
	// needs, without a request per section (nil when unknown).
	Delta     *Blob
	DeltaFrom uint64
}

// whole returns the signed bundle, joining it once from the sections in
// memory when this head was built from its manifest (followHead).
func (h *Head) whole() (*Blob, error) {
	h.bundleOnce.Do(func() {
		if h.bundle != nil {
			return
		}
		data, err := bundle.Join(h.Manifest.Raw, nil, func(_ string, hash [32]byte) ([]byte, error) {
			if b, ok := h.sections[hash]; ok {
				return b.Raw, nil
			}
			return nil, fmt.Errorf("section %x not loaded", hash[:8])
		})
		if err != nil {
			h.bundleErr = fmt.Errorf("publish: version %d: %w", h.Serial, err)
			return
		}
		h.bundle = newBlob(data, h.Hash)
	})
	return h.bundle, h.bundleErr
}

// DeltaContentType is the sync wire format's framed answer, owned by
// rules/bundle.
const DeltaContentType = bundle.DeltaContentType

// withDelta prepares h's delta from prev, the head it replaces.
func (h *Head) withDelta(prev *Head) {
	if prev == nil || prev.Serial == 0 || prev.sections == nil {
		return
	}
	first := h.Manifest.Raw
	if patch, ok := bundle.ManifestPatch(prev.Manifest.Raw, h.Manifest.Raw); ok {
		first = patch
	}
	out := bundle.AppendFrame(nil, first)
	_, secs, err := bundle.ReadHeader(h.Manifest.Raw, nil)
	if err != nil {
		return
	}
	for _, sec := range secs { // in table order: the same bytes on every replica
		if _, ok := prev.sections[sec.Hash]; !ok {
			out = bundle.AppendFrame(out, h.sections[sec.Hash].Raw)
		}
	}
	h.Delta = newBlob(out, fmt.Sprintf("%s-from-%d", h.Hash, prev.Serial))
	h.DeltaFrom = prev.Serial
}

// maxTree bounds an imported tree unpacked from the store (the full UT1
// tree is about 1 GiB).
const maxTree = 4 << 30

// Publisher publishes drafts and serves the result.
type Publisher struct {
	st  store.Store
	cfg Config
	pub ed25519.PublicKey
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex // one publication or rollback at a time
	// swapMu orders head swaps from this process's publications and from
	// Refresh, so the head only ever moves forward.
	swapMu sync.Mutex
	// refreshMu makes concurrent Refresh calls (the change feed, the
	// periodic catch-up) read a new version once.
	refreshMu sync.Mutex
	head      atomic.Pointer[Head]
	// prev keeps the replaced head's sections in memory too: edges that
	// were one version behind fetch from it while they catch up.
	prev atomic.Pointer[Head]

	waiters atomic.Int64
	m       metrics
	// floor is the highest serial known to exist outside this database
	// (reported by edges): see SetSerialFloor.
	floor atomic.Pointer[func(context.Context) (uint64, error)]
}

type metrics struct {
	publishes *prometheus.CounterVec
	duration  prometheus.Histogram
	serial    prometheus.Gauge
	waiting   prometheus.GaugeFunc
}

// New loads the latest published version (if any) and returns a publisher.
func New(ctx context.Context, st store.Store, cfg Config) (*Publisher, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("publish: no signing key")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Publisher{st: st, cfg: cfg, pub: cfg.Key.Public().(ed25519.PublicKey), log: cfg.Log, now: cfg.Now}
	p.m = metrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_controlplane_publishes_total",
			Help: "Publications and rollbacks by result."}, []string{"kind", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigie_controlplane_publish_duration_seconds",
			Help: "Time to validate, compile, sign and store a version.", Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30, 60},
			NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100}),
		serial: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigie_controlplane_serial",
			Help: "Serial of the latest published version."}),
	}
	p.m.waiting = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigie_controlplane_longpolls",
		Help: "Edge long-polls currently waiting for a new version."}, func() float64 { return float64(p.waiters.Load()) })
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{p.m.publishes, p.m.duration, p.m.serial, p.m.waiting} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("publish: metrics: %w", err)
			}
		}
	}
	// Every known label value exists from the start at zero, so that an
	// alert on increase() sees the first failed publication.
	for _, kind := range []string{"publish", "rollback"} {
		for _, result := range []string{"ok", "invalid", "error"} {
			p.m.publishes.WithLabelValues(kind, result)
		}
	}
	p.head.Store(&Head{next: make(chan struct{})})
	v, err := st.LatestVersion(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("publish: %w", err)
	}
	data, err := p.join(ctx, v.Manifest)
	if err != nil {
		return nil, fmt.Errorf("publish: load version %d: %w", v.Serial, err)
	}
	h, _, err := newHead(data)
	if err != nil {
		return nil, fmt.Errorf("publish: load version %d: %w", v.Serial, err)
	}
	if _, _, err := bundle.ReadHeader(data, p.pub); err != nil {
		// The académie key was rotated: this version was signed by the
		// previous key. Edges that pin both keys keep taking it; the next
		// publication is signed by the current key.
		p.log.Warn("the version in force is not signed by the current key (key rotation): publish to sign it with the new key",
			"serial", v.Serial, "err", err)
	}
	p.head.Store(h)
	p.m.serial.Set(float64(h.Serial))
	return p, nil
}

// PublicKey is the key edges must pin.
func (p *Publisher) PublicKey() ed25519.PublicKey { return p.pub }

func newHead(data []byte) (*Head, *bundle.Bundle, error) {
	b, err := bundle.Decode(data, nil)
	if err != nil {
		return nil, nil, err
	}
	man, err := bundle.Manifest(data)
	if err != nil {
		return nil, nil, err
	}
	h := &Head{Serial: b.Serial, Hash: b.HashHex(), Created: b.Created, Manifest: newBlob(man, b.HashHex()),
		next: make(chan struct{}), bundle: newBlob(data, b.HashHex()), sections: map[[32]byte]*Blob{}}
	h.bundleOnce.Do(func() {}) // whole: the bundle is given
	for _, s := range b.Sections {
		h.sections[s.Hash] = newBlob(s.Data, hex.EncodeToString(s.Hash[:]))
	}
	return h, b, nil
}

// join rebuilds a stored bundle from its manifest and stored sections.
//
// The stored versions' integrity is checked (each section's SHA-256
// against the manifest's table, the table's hash in the header), not their
// signature: a version published before a key rotation is signed by the
// previous key, and must still load at start and serve as a rollback
// source (a rollback re-signs it with the current key). The database sits
// with the signing key in the same trust domain; the signature is for the
// edges, which check it against the keys they pin.
func (p *Publisher) join(ctx context.Context, manifest []byte) ([]byte, error) {
	return bundle.Join(manifest, nil, func(_ string, h [32]byte) ([]byte, error) {
		return p.st.Section(ctx, h)
	})
}

// Head returns the version in force (Serial 0 before the first publication).
func (p *Publisher) Head() *Head { return p.head.Load() }

// Wait returns the first head newer than after, or nil when ctx ends first
// (the long-poll's timeout).
func (p *Publisher) Wait(ctx context.Context, after uint64) *Head {
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	for {
		h := p.head.Load()
		if h.Serial > after {
			return h
		}
		select {
		case <-h.next:
		case <-ctx.Done():
			return nil
		}
	}
}

// Waiting is the number of long-polls currently held.
func (p *Publisher) Waiting() int64 { return p.waiters.Load() }

// swap installs a new head and wakes everyone waiting on the old one.
func (p *Publisher) swap(h *Head) {
	p.swapMu.Lock()
	defer p.swapMu.Unlock()
	if cur := p.head.Load(); h.Serial <= cur.Serial {
		// Another replica's newer version arrived first (Refresh).
		return
	}
	old := p.head.Swap(h)
	if old.Serial > 0 {
		p.prev.Store(old)
	}
	p.m.serial.Set(float64(h.Serial))
	close(old.next)
}

// Section returns a section by hash: from the versions in memory, else from
// the store (an edge catching up from an old version).
func (p *Publisher) Section(ctx context.Context, hash [32]byte) (*Blob, error) {
	for _, h := range []*Head{p.head.Load(), p.prev.Load()} {
		if h != nil {
			if b, ok := h.sections[hash]; ok {
				return b, nil
			}
		}
	}
	data, err := p.st.Section(ctx, hash)
	if err != nil {
		return nil, err
	}
	return newBlob(data, hex.EncodeToString(hash[:])), nil
}

// Bundle returns the whole signed bundle of a serial.
func (p *Publisher) Bundle(ctx context.Context, serial uint64) (*Blob, error) {
	if h := p.head.Load(); h.Serial == serial && h.sections != nil {
		return h.whole()
	}
	v, err := p.st.Version(ctx, serial)
	if err != nil {
		return nil, err
	}
	data, err := p.join(ctx, v.Manifest)
	if err != nil {
		return nil, fmt.Errorf("publish: version %d: %w", serial, err)
	}
	return newBlob(data, v.Hash), nil
}

// ValidationError lists why a draft cannot be published. Each problem
// names its place in the policy ("lists[2] (bloque).domains[0]: ...").
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "publish: the draft is not valid: " + strings.Join(e.Problems, "; ")
}

func validation(err error) error {
	return &ValidationError{Problems: policy.Problems(err)}
}

// Compiled is a draft compiled without being published.
type Compiled struct {
	Rules  *rules.Ruleset
	Report *rules.Report
	Source *Source
	// Revision of the draft that was compiled.
	Revision int64
}

// Compile validates and compiles the current draft.
func (p *Publisher) Compile(ctx context.Context) (*Compiled, error) {
	src, rev, err := ReadSource(ctx, p.st)
	if err != nil {
		return nil, err
	}
	// Imported trees live in a shared store, not on every replica's disk:
	// bring the ones the draft names here before compiling.
	if lt, ok := p.st.(listtree.Store); ok {
		for _, s := range src.Policy.Sources {
			if err := listtree.Ensure(ctx, lt, p.cfg.DataDir, s.Path, maxTree); err != nil {
				return nil, fmt.Errorf("publish: %w", err)
			}
		}
	}
	pol := src.Assemble(p.cfg.DataDir)
	if err := pol.Validate(); err != nil {
		return nil, validation(err)
	}
	rs, rep, err := rules.Compile(pol)
	if err != nil {
		return nil, validation(err)
	}
	if err := checkFirewalls(rs); err != nil {
		return nil, validation(err)
	}
	return &Compiled{Rules: rs, Report: rep, Source: src, Revision: rev}, nil
}

// Preview compares the draft with the latest version without compiling.
func (p *Publisher) Preview(ctx context.Context) (*Diff, error) {
	src, _, err := ReadSource(ctx, p.st)
	if err != nil {
		return nil, err
	}
	old, from, err := p.latestSource(ctx)
	if err != nil {
		return nil, err
	}
	d := diffSources(from, old, src)
	d.summarize()
	return d, nil
}

func (p *Publisher) latestSource(ctx context.Context) (*Source, uint64, error) {
	v, err := p.st.LatestVersion(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	s, err := sourceOf(v)
	return s, v.Serial, err
}

// ErrUnchanged refuses a publication whose content is the version in force:
// a new serial would tell every school something changed when nothing did.
var ErrUnchanged = errors.New("publish: the draft compiles to the version already published")

// Publish validates, compiles, signs and stores the draft as the next
// serial, then wakes the edges. Unless force is set, a draft identical in
// content to the latest version is refused with ErrUnchanged.
func (p *Publisher) Publish(ctx context.Context, who Actor, comment string, force bool) (*store.Version, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	v, err := p.publish(ctx, who, comment, force)
	p.m.duration.Observe(time.Since(start).Seconds())
	p.count("publish", err)
	return v, err
}

func (p *Publisher) count(kind string, err error) {
	result := "ok"
	var ve *ValidationError
	switch {
	case errors.As(err, &ve), errors.Is(err, ErrUnchanged):
		result = "invalid"
	case err != nil:
		result = "error"
	}
	p.m.publishes.WithLabelValues(kind, result).Inc()
}

func (p *Publisher) publish(ctx context.Context, who Actor, comment string, force bool) (*store.Version, error) {
	start := time.Now()
	c, err := p.Compile(ctx)
	if err != nil {
		return nil, err
	}
	p.log.Debug("draft compiled", "took", time.Since(start).Round(time.Millisecond), "domains", c.Rules.Domains())
	secs, err := c.Rules.Sections()
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return p.store(ctx, who, "publish", comment, 0, c.Source, secs, c.Rules.Domains(), force)
}

// Rollback republishes the content of an earlier serial as a new serial and
// restores the draft to what that version was published from.
func (p *Publisher) Rollback(ctx context.Context, who Actor, serial uint64, comment string) (*store.Version, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, err := p.rollback(ctx, who, serial, comment)
	p.count("rollback", err)
	return v, err
}

func (p *Publisher) rollback(ctx context.Context, who Actor, serial uint64, comment string) (*store.Version, error) {
	old, err := p.st.Version(ctx, serial)
	if err != nil {
		return nil, fmt.Errorf("publish: rollback: %w", err)
	}
	src, err := sourceOf(old)
	if err != nil {
		return nil, err
	}
	data, err := p.join(ctx, old.Manifest)
	if err != nil {
		return nil, fmt.Errorf("publish: rollback to %d: %w", serial, err)
	}
	// Integrity only (see join): the version may predate a key rotation;
	// store signs its sections anew with the current key.
	b, err := bundle.Decode(data, nil)
	if err != nil {
		return nil, fmt.Errorf("publish: rollback to %d: stored bundle: %w", serial, err)
	}
	if comment == "" {
		comment = fmt.Sprintf("Retour à la version %d", serial)
	}
	return p.store(ctx, who, "rollback", comment, serial, src, b.Sections, old.Domains, true)
}

// store signs sections as the next serial, stores the version with its
// audit entry in one transaction, and swaps the head in.
func (p *Publisher) store(ctx context.Context, who Actor, action, comment string, rollbackOf uint64, src *Source,
	secs []bundle.Section, domains int, force bool) (*store.Version, error) {
	// Replicas sharing a database may both take serial N+1; the store
	// refuses the second (ErrConflict) and that one signs again as N+2.
	// Every try reads the latest version afresh.
	for try := 1; ; try++ {
		v, err := p.storeOnce(ctx, who, action, comment, rollbackOf, src, secs, domains, force)
		if !errors.Is(err, store.ErrConflict) || try == 5 {
			return v, err
		}
		p.log.Info("another replica published the same serial: signing again as the next one", "try", try)
	}
}

// Refresh serves the latest stored version when it is newer than the head:
// another replica published it (the store's change feed says when, and a
// periodic call catches up on an announcement this replica missed).
//
// It reads the new version's manifest and only the sections this process
// does not already hold (a one-domain change: one or two small ones), each
// checked against the manifest's table, and wakes the waiting edges at
// once; the whole bundle is joined later, from memory, if anyone asks for
// it. Concurrent calls are serialized: the second finds the head already
// moved and reads nothing more.
func (p *Publisher) Refresh(ctx context.Context) error {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	vs, err := p.st.Versions(ctx, store.Page{Limit: 1})
	if err != nil {
		return fmt.Errorf("publish: refresh: %w", err)
	}
	if len(vs) == 0 || vs[0].Serial <= p.head.Load().Serial {
		return nil
	}
	v, err := p.st.Version(ctx, vs[0].Serial)
	if err != nil {
		return fmt.Errorf("publish: refresh: %w", err)
	}
	cur := p.head.Load()
	h, fetched, err := p.followHead(ctx, v, cur, p.prev.Load())
	if err != nil {
		return fmt.Errorf("publish: refresh: %w", err)
	}
	h.withDelta(cur)
	p.swap(h)
	p.log.Info("policy published by another replica", "serial", h.Serial, "hash", h.Hash[:12],
		"sections_read", fetched, "sections", len(h.sections))
	return nil
}

// followHead builds the head of a stored version from its manifest,
// reusing the sections of known heads (already checked when they were
// loaded) and reading the others from the store. It checks what join
// checks, without assembling the bundle: the manifest's table hash and
// layout, and each read section's length and SHA-256 against the table.
// As for join, the signature is the edges' to check (key rotation).
// It returns how many sections it read from the store.
func (p *Publisher) followHead(ctx context.Context, v store.Version, known ...*Head) (*Head, int, error) {
	hdr, secs, err := bundle.ReadHeader(v.Manifest, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("version %d: %w", v.Serial, err)
	}
	if hdr.Serial != v.Serial || hdr.HashHex() != v.Hash {
		return nil, 0, fmt.Errorf("version %d: manifest says serial %d, hash %s (stored: %s)", v.Serial, hdr.Serial, hdr.HashHex(), v.Hash)
	}
	// The layout Join will expect: sections back to back, 8-aligned,
	// right after the manifest.
	if m, err := bundle.Manifest(v.Manifest); err != nil || len(m) != len(v.Manifest) {
		return nil, 0, fmt.Errorf("version %d: manifest of %d bytes is not a bare manifest (%v)", v.Serial, len(v.Manifest), err)
	}
	pos := uint64(len(v.Manifest))
	sections := make(map[[32]byte]*Blob, len(secs))
	fetched := 0
	for i, s := range secs {
		off, size := bundle.SectionSpan(v.Manifest, i)
		pos = (pos + 7) &^ 7
		if off != pos || size > 1<<40 {
			return nil, 0, fmt.Errorf("version %d: section %q not where the layout puts it", v.Serial, s.Name)
		}
		pos += size
		if b, ok := sections[s.Hash]; ok && uint64(len(b.Raw)) == size {
			continue
		}
		var b *Blob
		for _, k := range known {
			if k == nil {
				continue
			}
			if kb, ok := k.sections[s.Hash]; ok && uint64(len(kb.Raw)) == size {
				b = kb
				break
			}
		}
		if b == nil {
			data, err := p.st.Section(ctx, s.Hash)
			if err != nil {
				return nil, 0, fmt.Errorf("version %d: section %q: %w", v.Serial, s.Name, err)
			}
			if uint64(len(data)) != size || sha256.Sum256(data) != s.Hash {
				return nil, 0, fmt.Errorf("version %d: section %q: %w", v.Serial, s.Name, bundle.ErrHash)
			}
			b = newBlob(data, hex.EncodeToString(s.Hash[:]))
			fetched++
		}
		sections[s.Hash] = b
	}
	h := &Head{Serial: hdr.Serial, Hash: hdr.HashHex(), Created: hdr.Created, Manifest: newBlob(v.Manifest, hdr.HashHex()),
		next: make(chan struct{}), sections: sections}
	return h, fetched, nil
}

func (p *Publisher) storeOnce(ctx context.Context, who Actor, action, comment string, rollbackOf uint64, src *Source,
	secs []bundle.Section, domains int, force bool) (*store.Version, error) {
	prev, err := p.st.LatestVersion(ctx)
	var prevSrc *Source
	switch {
	case errors.Is(err, store.ErrNotFound):
		prev = store.Version{}
	case err != nil:
		return nil, fmt.Errorf("publish: %w", err)
	default:
		if prevSrc, err = sourceOf(prev); err != nil {
			return nil, err
		}
	}
	serial := prev.Serial + 1
	if floor, err := p.serialFloor(ctx); err != nil {
		return nil, err
	} else if floor >= serial {
		// A serial an edge holds but this database does not (a restored
		// backup): reusing it would give one number two contents.
		p.log.Warn("publish: serials reported by edges are unknown here, skipping past them", "latest_known", prev.Serial, "highest_reported", floor)
		serial = floor + 1
	}
	now := p.now()
	t0 := time.Now()
	data, err := bundle.Encode(serial, now, secs, p.cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	h, decoded, err := newHead(data)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if !force && h.Hash == prev.Hash {
		return nil, ErrUnchanged
	}
	h.withDelta(p.head.Load())
	diff := diffSources(prev.Serial, prevSrc, src)
	var oldMeta, newMeta []byte
	if m, ok := decoded.Section("meta"); ok {
		newMeta = m
	}
	var prevManifest []byte
	if prev.Serial > 0 {
		prevManifest = prev.Manifest
		if _, psecs, err := bundle.ReadHeader(prev.Manifest, nil); err == nil {
			for _, s := range psecs {
				if s.Name == "meta" {
					oldMeta, _ = p.st.Section(ctx, s.Hash)
				}
			}
		}
	}
	diff.addCompiled(prevManifest, h.Manifest.Raw, oldMeta, newMeta, decoded.Sections, int64(len(data)))
	t1 := time.Now()
	diff.summarize()
	diffJSON, _ := json.Marshal(diff)
	srcJSON, err := json.Marshal(src)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	v := store.Version{Serial: serial, Hash: h.Hash, Author: who.Name, Comment: comment, Created: now,
		Diff: diffJSON, RollbackOf: rollbackOf, Size: int64(len(data)), Domains: domains,
		Manifest: h.Manifest.Raw, Policy: srcJSON}
	err = p.st.Update(ctx, func(tx store.Tx) error {
		var fresh []store.Section
		for _, s := range decoded.Sections {
			ok, err := tx.HasSection(ctx, s.Hash)
			if err != nil {
				return err
			}
			if !ok {
				fresh = append(fresh, store.Section{Hash: s.Hash, Data: s.Data})
			}
		}
		if err := tx.PutSections(ctx, fresh); err != nil {
			return err
		}
		if err := tx.InsertVersion(ctx, v); err != nil {
			return err
		}
		if rollbackOf != 0 {
			if err := restoreDraft(ctx, tx, src, who, now); err != nil {
				return err
			}
		}
		after, _ := json.Marshal(map[string]any{"serial": serial, "hash": h.Hash, "comment": comment,
			"rollback_of": rollbackOf, "summary": diff.Summary})
		before, _ := json.Marshal(map[string]any{"serial": prev.Serial, "hash": prev.Hash})
		return tx.AppendAudit(ctx, &audit.Entry{Time: now, Actor: who.Name, Role: who.Role, Action: action,
			Target: fmt.Sprintf("version/%d", serial), Before: before, After: after, Remote: who.Remote})
	})
	if err != nil {
		return nil, fmt.Errorf("publish: store version %d: %w", serial, err)
	}
	t2 := time.Now()
	p.swap(h)
	p.log.Info("policy published", "serial", serial, "hash", h.Hash[:12], "by", who.Name, "action", action,
		"summary", diff.Summary, "sections_changed", diff.Sections.Changed, "delta_bytes", diff.Sections.Bytes,
		"sign_and_diff", t1.Sub(t0).Round(time.Millisecond), "store", t2.Sub(t1).Round(time.Millisecond))
	v.Manifest, v.Policy = nil, nil
	return &v, nil
}

// restoreDraft puts a version's source back as the draft.
func restoreDraft(ctx context.Context, tx store.Tx, src *Source, who Actor, now time.Time) error {
	d, err := tx.Draft(ctx)
	rev := d.Revision
	if errors.Is(err, store.ErrNotFound) {
		rev = 0
	} else if err != nil {
		return err
	}
	if _, err := tx.PutDraft(ctx, store.Draft{Policy: src.Policy, UpdatedAt: now, UpdatedBy: who.Name}, rev); err != nil {
		return err
	}
	lists, err := tx.Lists(ctx)
	if err != nil {
		return err
	}
	for _, l := range lists {
		if err := tx.DeleteList(ctx, l.ID); err != nil {
			return err
		}
	}
	for _, l := range src.Lists {
		if err := tx.CreateList(ctx, l); err != nil {
			return err
		}
	}
	_, err = tx.AddEntries(ctx, src.Entries)
	return err
}

// ReviewFirewall is the listener configuration the control plane builds
// firewalls with, to check them at publication and to show them in the
// UI: an edge's default ports (edge.DefaultFirewall*Port, repeated so that
// the control plane does not link the edge's data plane). The ports only
// need to be valid: each edge renders with its own listeners.
var ReviewFirewall = firewall.Config{DNSPort: 53, HTTPPort: 3129, HTTPSPort: 3130}

// checkFirewalls builds every school's firewall now, so that a matrix an
// edge would refuse (unknown zone, bad port range) is refused here, in
// front of the RSSI, rather than at 150 gateways.
func checkFirewalls(rs *rules.Ruleset) error {
	var errs []error
	for _, s := range rs.Schools() {
		src, err := firewall.FromRuleset(rs, s.UAI)
		if err == nil {
			_, err = firewall.Build(src, ReviewFirewall)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
