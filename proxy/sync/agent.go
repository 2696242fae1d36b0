// Package sync is the edge's sync agent: it long-polls the control plane
// for a policy newer than the one in force, verifies it against the
// académie key pinned in the edge's configuration, fetches only the bundle
// sections it does not hold yet, hands the rebuilt bundle to the edge's
// Apply (which swaps the generation and keeps it as last-known-good), and
// reports "applied SERIAL" or the error. Failures back off exponentially
// with jitter, so that a control plane coming back is not hit by every
// school at the same instant.
package sync

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/rules/bundle"
)

// Config is what an agent needs. URL, Token, PublicKey, Apply and Current
// are required.
type Config struct {
	// URL is the control plane's base URL ("https://vigie.ac-exemple.fr").
	URL string
	// Token is the edge's bearer token (vge_...).
	Token string
	// PublicKey is the académie key bundles must be signed with.
	PublicKey ed25519.PublicKey
	// Apply verifies, loads and swaps a bundle in (the edge's Apply).
	Apply func(bundle []byte) error
	// Current returns the version in force; fallback is true while the
	// edge runs its built-in strict policy.
	Current func() (serial uint64, hash string, fallback bool)
	// Initial is the bundle in force at start: its sections are not
	// fetched again.
	Initial []byte
	// CacheDir keeps fetched sections until they are applied, so that an
	// interrupted transfer resumes ("" keeps them in memory only).
	CacheDir string
	// Hold is how long the control plane may hold a poll (default 30s).
	Hold time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure
	// (defaults 1s and 5 min).
	MinBackoff, MaxBackoff time.Duration
	// RetryBad is how long a bundle that failed to apply is not retried
	// unless a newer one comes (default 10 min).
	RetryBad time.Duration
	// Spread is the longest random wait, after applying a new version,
	// before reporting it and polling again: the edges of a whole académie
	// woken by one publication then spread their follow-up requests
	// instead of sending them in the same millisecond, while the control
	// plane is still sending the version to the others (default 1s;
	// negative for none).
	Spread time.Duration
	// Full fetches whole bundles instead of changed sections.
	Full bool
	// MaxBundle bounds a bundle (default 1 GiB).
	MaxBundle int64
	// Client makes the requests (default: no proxy, timeouts set).
	Client   *http.Client
	Software string
	Log      *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time
	// Jitter returns a number in [0, 1) (default math/rand/v2).
	Jitter func() float64
	// Simulate skips assembling the bundle: once every section is in hand
	// and verified, Apply receives the signed manifest alone (or the whole
	// bundle when that is what was fetched). It is for
	// load tests running many agents in one process (assembling and
	// loading is each edge's own local work); an edge never sets it.
	Simulate bool
}

// Status is what the agent last did.
type Status struct {
	Serial    uint64    `json:"serial"`
	LastSync  time.Time `json:"last_sync"`
	LastError string    `json:"last_error,omitempty"`
	// Bytes counts the response bytes received from the control plane.
	Bytes int64 `json:"bytes"`
}

// Agent syncs one edge.
type Agent struct {
	cfg Config
	// root is the base URL without a trailing slash; API paths follow it.
	root string
	log  *slog.Logger
	now  func() time.Time

	// held maps the sections of the bundle in force to its bytes (which
	// the edge keeps alive anyway: its Ruleset views them), and manifest
	// is that bundle's signed head, which patches apply to.
	held     map[[32]byte][]byte
	manifest []byte
	// noPatch asks for a whole manifest after a patch did not rebuild a
	// correctly signed one (it never should; this keeps the edge moving).
	noPatch bool

	bad struct {
		serial uint64
		hash   string
		until  time.Time
	}
	bytes  atomic.Int64
	mu     gosync.Mutex
	status Status
	m      metrics
}

type metrics struct {
	polls   *prometheus.CounterVec
	bytes   prometheus.Counter
	applied prometheus.Gauge
	last    prometheus.Gauge
}

// New checks the configuration and returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.URL == "" || cfg.Token == "" || cfg.Apply == nil || cfg.Current == nil {
		return nil, errors.New("sync: URL, Token, Apply and Current are required")
	}
	if len(cfg.PublicKey) != ed25519.PublicKeySize {
		return nil, errors.New("sync: no académie public key to verify bundles with")
	}
	base, err := url.Parse(cfg.URL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("sync: control plane URL %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.RetryBad <= 0 {
		cfg.RetryBad = 10 * time.Minute
	}
	if cfg.Spread == 0 {
		cfg.Spread = time.Second
	}
	if cfg.MaxBundle <= 0 {
		cfg.MaxBundle = 1 << 30
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4,
			TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: 2 * time.Minute, ForceAttemptHTTP2: true}}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o750); err != nil {
			return nil, fmt.Errorf("sync: cache: %w", err)
		}
	}
	base.RawQuery, base.Fragment = "", ""
	a := &Agent{cfg: cfg, root: strings.TrimRight(base.String(), "/"), log: cfg.Log, now: cfg.Now, held: map[[32]byte][]byte{}}
	a.m = metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_sync_polls_total",
			Help: "Polls of the control plane by outcome."}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigie_sync_received_bytes_total",
			Help: "Bytes received from the control plane (as sent, compressed)."}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigie_sync_applied_serial",
			Help: "Serial of the policy applied last by the sync agent."}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigie_sync_last_success_timestamp_seconds",
			Help: "When the agent last reached the control plane successfully."}),
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{a.m.polls, a.m.bytes, a.m.applied, a.m.last} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("sync: metrics: %w", err)
			}
		}
	}
	if len(cfg.Initial) > 0 {
		a.hold(cfg.Initial)
	}
	return a, nil
}

// hold indexes the sections of the bundle now in force. Its bytes were
// verified when they were applied, so they are not hashed again here.
func (a *Agent) hold(data []byte) {
	ents, err := table(data)
	if err != nil {
		return
	}
	held := make(map[[32]byte][]byte, len(ents))
	for _, e := range ents {
		if e.off+e.size <= int64(len(data)) {
			held[e.hash] = data[e.off : e.off+e.size : e.off+e.size]
		}
	}
	a.held = held
	if head := 64 + 64*len(ents) + ed25519.SignatureSize; len(data) >= head {
		a.manifest = data[:head:head]
	}
}

// entry is one line of a bundle's section table.
type entry struct {
	name      string
	hash      [32]byte
	off, size int64
}

// table reads the section table of a bundle or manifest (without
// checking the signature: callers that need it check it first).
func table(data []byte) ([]entry, error) {
	_, secs, err := bundle.ReadHeader(data, nil)
	if err != nil {
		return nil, err
	}
	const header, width = 64, 64
	out := make([]entry, len(secs))
	for i, s := range secs {
		row := data[header+i*width:]
		off, size := binary.LittleEndian.Uint64(row[16:]), binary.LittleEndian.Uint64(row[24:])
		if off > 1<<40 || size > 1<<40 {
			return nil, fmt.Errorf("sync: section %q out of bounds", s.Name)
		}
		out[i] = entry{name: s.Name, hash: s.Hash, off: int64(off), size: int64(size)}
	}
	return out, nil
}

// Status returns what the agent last did.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status
	s.Bytes = a.bytes.Load()
	return s
}

func (a *Agent) setStatus(f func(*Status)) {
	a.mu.Lock()
	f(&a.status)
	a.mu.Unlock()
}

// Run syncs until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	serial, hash, fallback := a.cfg.Current()
	a.report(ctx, serial, hash, fallback, "")
	failures := 0
	for ctx.Err() == nil {
		_, err := a.SyncOnce(ctx)
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			break
		}
		failures++
		wait := a.backoff(failures)
		a.log.Warn("policy sync failed", "err", err, "retry_in", wait.Round(time.Millisecond), "failures", failures)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	return nil
}

// backoff is exponential with "equal jitter": at least half the step, so
// retries stay spaced, plus a random half, so edges spread out.
func (a *Agent) backoff(failures int) time.Duration {
	d := a.cfg.MinBackoff
	for i := 1; i < failures && d < a.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, a.cfg.MaxBackoff)
	return d/2 + time.Duration(a.cfg.Jitter()*float64(d/2))
}

// badBundle tells a bundle that fails verification from a transfer that
// failed: the first is reported to the control plane.
func badBundle(err error) bool {
	for _, e := range []error{bundle.ErrSignature, bundle.ErrHash, bundle.ErrCorrupt, bundle.ErrTruncated, bundle.ErrMagic, bundle.ErrVersion} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errRefused marks a bundle that arrived but could not be applied.
type errRefused struct{ err error }

func (e errRefused) Error() string { return e.err.Error() }
func (e errRefused) Unwrap() error { return e.err }

// SyncOnce polls once (held up to Hold) and applies what came. It returns
// true when a new policy was applied.
func (a *Agent) SyncOnce(ctx context.Context) (bool, error) {
	serial, hash, fallback := a.cfg.Current()
	after := serial
	if fallback {
		after = 0
	}
	// A bundle that failed to apply is not fetched again right away:
	// wait for a newer one, and retry it only after RetryBad.
	if a.bad.hash != "" && a.now().Before(a.bad.until) && a.bad.serial > after {
		after = a.bad.serial
	}
	part := "delta"
	switch {
	case a.cfg.Full || len(a.held) == 0:
		part = "full"
	case a.noPatch:
		part = "manifest"
	}
	q := url.Values{"after": {fmt.Sprint(after)}, "part": {part}, "wait": {fmt.Sprint(int(a.cfg.Hold / time.Second))}}
	body, code, ctype, err := a.getTyped(ctx, "/api/v1/edge/bundle?"+q.Encode(), -1, a.cfg.Hold+30*time.Second)
	if err != nil {
		a.m.polls.WithLabelValues("error").Inc()
		a.fail(ctx, serial, hash, fallback, err)
		return false, err
	}
	a.m.last.SetToCurrentTime()
	if code == http.StatusNoContent {
		a.m.polls.WithLabelValues("nothing_new").Inc()
		a.setStatus(func(s *Status) { s.LastSync = a.now() })
		return false, nil
	}
	a.m.polls.WithLabelValues("new_version").Inc()
	data := body
	// The signature is checked once: here for a whole bundle, in assemble
	// for a manifest.
	key := a.cfg.PublicKey
	if part != "full" {
		key = nil
		manifest, extra := body, map[[32]byte][]byte(nil)
		if ctype == deltaContentType {
			manifest, extra, err = splitFrames(body)
		}
		verified := false
		if err == nil && bytes.HasPrefix(manifest, []byte(patchMagic)) {
			if manifest, err = a.patched(manifest); err != nil {
				a.noPatch = true
				a.fail(ctx, serial, hash, fallback, err)
				return false, err
			}
			verified = true
		}
		if err == nil {
			data, err = a.assemble(ctx, manifest, extra, verified)
		}
		if err != nil {
			if badBundle(err) {
				err = errRefused{err}
			}
			a.fail(ctx, serial, hash, fallback, err)
			return false, err
		}
	}
	h, _, err := bundle.ReadHeader(data, key)
	if err == nil && !fallback && h.Serial < serial {
		err = fmt.Errorf("sync: the control plane sent serial %d, older than %d in force", h.Serial, serial)
	}
	if err == nil {
		err = a.cfg.Apply(data)
	}
	if err != nil {
		// Held sections are trusted; if they were what made the bundle
		// fail, the next attempt must not reuse them.
		a.held = map[[32]byte][]byte{}
		a.bad.serial, a.bad.hash, a.bad.until = h.Serial, h.HashHex(), a.now().Add(a.cfg.RetryBad)
		err = errRefused{fmt.Errorf("sync: bundle serial %d refused: %w", h.Serial, err)}
		a.fail(ctx, serial, hash, fallback, err)
		return false, err
	}
	a.bad.hash, a.noPatch = "", false
	if !a.cfg.Simulate {
		a.hold(data)
	}
	a.pruneCache()
	a.m.applied.Set(float64(h.Serial))
	a.setStatus(func(s *Status) { s.Serial, s.LastSync, s.LastError = h.Serial, a.now(), "" })
	a.log.Info("policy received from the control plane", "serial", h.Serial, "hash", h.HashHex()[:12], "bytes", a.bytes.Load())
	if a.cfg.Spread > 0 {
		select {
		case <-time.After(time.Duration(a.cfg.Jitter() * float64(a.cfg.Spread))):
		case <-ctx.Done():
		}
	}
	a.report(ctx, h.Serial, h.HashHex(), false, "")
	return true, nil
}

// fail records an error, and reports it when the control plane answered:
// a report to a control plane that is down would only delay the retry.
func (a *Agent) fail(ctx context.Context, serial uint64, hash string, fallback bool, err error) {
	a.setStatus(func(s *Status) { s.LastError = err.Error() })
	var refused errRefused
	if ctx.Err() == nil && (errors.As(err, &refused) || errors.Is(err, errAnswered)) {
		a.report(ctx, serial, hash, fallback, err.Error())
	}
}

// errAnswered marks errors the control plane itself returned.
var errAnswered = errors.New("the control plane answered")

// assemble rebuilds the bundle a verified manifest describes from the
// sections held, cached or fetched, each put at the offset the signed
// table gives. Fetched and cached sections are checked against their hash;
// the edge's Apply verifies the whole bundle again before using it. When
// most of it is missing (a first sync from the built-in policy), one
// request for the whole bundle is cheaper than hundreds.
func (a *Agent) assemble(ctx context.Context, manifest []byte, extra map[[32]byte][]byte, verified bool) ([]byte, error) {
	key := a.cfg.PublicKey
	if verified {
		key = nil // a patched manifest was verified as it was rebuilt
	}
	h, secs, err := bundle.ReadHeader(manifest, key)
	if err != nil {
		return nil, fmt.Errorf("sync: manifest: %w", err)
	}
	ents, err := table(manifest)
	if err != nil {
		return nil, err
	}
	head := int64(64 + 64*len(secs) + ed25519.SignatureSize)
	if int64(len(manifest)) != head {
		return nil, fmt.Errorf("sync: manifest of %d bytes, its table says %d", len(manifest), head)
	}
	var missing, total, end int64
	for _, e := range ents {
		total += e.size
		end = max(end, e.off+e.size)
		if e.off < head || e.off+e.size > a.cfg.MaxBundle {
			return nil, fmt.Errorf("sync: manifest places section %q outside the bundle", e.name)
		}
		if _, ok := a.held[e.hash]; !ok && extra[e.hash] == nil && !a.cached(e.hash) {
			missing += e.size
		}
	}
	if missing > total/2 {
		q := url.Values{"after": {fmt.Sprint(h.Serial - 1)}, "part": {"full"}, "wait": {"0"}}
		data, code, err := a.get(ctx, "/api/v1/edge/bundle?"+q.Encode(), -1, time.Minute)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("sync: whole bundle: status %d", code)
		}
		if err == nil {
			if _, _, err = bundle.ReadHeader(data, a.cfg.PublicKey); err != nil {
				err = fmt.Errorf("sync: whole bundle: %w", err)
			}
		}
		if err == nil && a.cfg.Simulate {
			a.hold(data)
			return manifest, nil
		}
		return data, err
	}
	parts := make([][]byte, len(ents))
	for i, e := range ents {
		if d, ok := a.held[e.hash]; ok && int64(len(d)) == e.size {
			parts[i] = d
			continue
		}
		if d, ok := extra[e.hash]; ok && int64(len(d)) == e.size {
			parts[i] = d // keyed by its own hash: verified
			continue
		}
		if d, ok := a.readCache(e.hash); ok && int64(len(d)) == e.size {
			parts[i] = d
			continue
		}
		d, code, err := a.get(ctx, "/api/v1/edge/sections/"+hex.EncodeToString(e.hash[:]), e.size, time.Minute)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		if err != nil {
			return nil, fmt.Errorf("sync: section %s: %w", e.name, err)
		}
		if int64(len(d)) != e.size || sha256.Sum256(d) != e.hash {
			return nil, fmt.Errorf("sync: section %s: content does not match its hash", e.name)
		}
		a.writeCache(e.hash, d)
		parts[i] = d
	}
	if a.cfg.Simulate {
		for i, e := range ents {
			a.held[e.hash] = parts[i]
		}
		a.manifest = manifest
		return manifest, nil
	}
	out := make([]byte, end)
	copy(out, manifest)
	for i, e := range ents {
		copy(out[e.off:], parts[i])
	}
	return out, nil
}

// patchMagic starts a manifest patch (see controlplane/publish.ManifestPatch).
const patchMagic = "VIGIEPAT"

// patched rebuilds the new manifest from the one in force and a patch:
// the new header and signature, the table rows that changed (length and
// hash), every offset recomputed from the lengths as the bundle layout
// places them. The signature is checked here, so a patch can only yield
// the manifest the académie signed.
func (a *Agent) patched(patch []byte) ([]byte, error) {
	out, err := applyPatch(a.manifest, patch)
	if err == nil {
		_, _, err = bundle.ReadHeader(out, a.cfg.PublicKey)
	}
	if err != nil {
		return nil, fmt.Errorf("sync: manifest patch: %w (asking for the whole manifest next)", err)
	}
	return out, nil
}

func applyPatch(old, patch []byte) ([]byte, error) {
	const header, row, sig = 64, 64, ed25519.SignatureSize
	_, secs, err := bundle.ReadHeader(old, nil)
	if err != nil {
		return nil, fmt.Errorf("no manifest in force to patch: %w", err)
	}
	n := len(secs)
	tableEnd := header + row*n
	if len(old) != tableEnd+sig {
		return nil, errors.New("manifest in force has trailing bytes")
	}
	p := patch[len(patchMagic):]
	if len(p) < header+sig+4 {
		return nil, errors.New("patch truncated")
	}
	newHeader, newSig := p[:header], p[header:header+sig]
	if int(binary.LittleEndian.Uint32(newHeader[12:])) != n {
		return nil, errors.New("patch changes the number of sections")
	}
	changes := int(binary.LittleEndian.Uint32(p[header+sig:]))
	rows := p[header+sig+4:]
	if changes > n || len(rows) != changes*44 {
		return nil, fmt.Errorf("patch of %d rows in %d bytes", changes, len(rows))
	}
	out := make([]byte, len(old))
	copy(out, old)
	copy(out, newHeader)
	for i := 0; i < changes; i++ {
		r := rows[i*44:]
		idx := int(binary.LittleEndian.Uint32(r))
		if idx >= n {
			return nil, fmt.Errorf("patch names row %d of %d", idx, n)
		}
		copy(out[header+idx*row+24:header+idx*row+64], r[4:44])
	}
	// Offsets as the encoder lays sections out: 8-byte aligned, in table
	// order, after the signature.
	align := func(v uint64) uint64 { return (v + 7) &^ 7 }
	off := align(uint64(tableEnd + sig))
	for i := 0; i < n; i++ {
		e := out[header+i*row:]
		off = align(off)
		binary.LittleEndian.PutUint64(e[16:], off)
		size := binary.LittleEndian.Uint64(e[24:])
		if size > 1<<40 {
			return nil, errors.New("patch gives a section of absurd size")
		}
		off += size
	}
	copy(out[tableEnd:], newSig)
	return out, nil
}

// deltaContentType is the control plane's framed answer: the manifest,
// then the sections that changed since the serial the edge holds.
const deltaContentType = "application/vnd.vigie.delta"

// splitFrames reads a delta answer: frames of a little-endian u32 length
// and that many bytes. The first is the manifest (verified by the caller);
// the others are sections, indexed by their hash so that only those the
// manifest names are ever used.
func splitFrames(b []byte) (manifest []byte, extra map[[32]byte][]byte, err error) {
	extra = map[[32]byte][]byte{}
	for first := true; len(b) > 0; first = false {
		if len(b) < 4 {
			return nil, nil, errors.New("sync: delta answer: truncated frame length")
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, nil, fmt.Errorf("sync: delta answer: frame of %d bytes, %d left", n, len(b))
		}
		f := b[:n:n]
		b = b[n:]
		if first {
			manifest = f
			continue
		}
		if len(extra) >= bundle.MaxSections {
			return nil, nil, errors.New("sync: delta answer: too many frames")
		}
		extra[sha256.Sum256(f)] = f
	}
	if manifest == nil {
		return nil, nil, errors.New("sync: delta answer: empty")
	}
	return manifest, extra, nil
}

// ---- cache

func (a *Agent) cachePath(hash [32]byte) string {
	return filepath.Join(a.cfg.CacheDir, hex.EncodeToString(hash[:]))
}

func (a *Agent) cached(hash [32]byte) bool {
	if a.cfg.CacheDir == "" {
		return false
	}
	_, err := os.Stat(a.cachePath(hash))
	return err == nil
}

// readCache returns a cached section, dropping one whose content no longer
// matches its name (a torn write, a disk error).
func (a *Agent) readCache(hash [32]byte) ([]byte, bool) {
	if a.cfg.CacheDir == "" {
		return nil, false
	}
	d, err := os.ReadFile(a.cachePath(hash))
	if err != nil {
		return nil, false
	}
	if sha256.Sum256(d) != hash {
		os.Remove(a.cachePath(hash))
		return nil, false
	}
	return d, true
}

func (a *Agent) writeCache(hash [32]byte, d []byte) {
	if a.cfg.CacheDir == "" {
		return
	}
	tmp, err := os.CreateTemp(a.cfg.CacheDir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(d)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), a.cachePath(hash)) != nil {
		os.Remove(tmp.Name())
	}
}

// pruneCache drops cached sections once applied: the applied bundle is on
// disk as last-known-good and holds them.
func (a *Agent) pruneCache() {
	if a.cfg.CacheDir == "" {
		return
	}
	ents, err := os.ReadDir(a.cfg.CacheDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		os.Remove(filepath.Join(a.cfg.CacheDir, e.Name()))
	}
}

// ---- HTTP

// problem is the part of an RFC 9457 document worth logging.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// get fetches a path of the control plane. Compression is handled here
// rather than by the transport so that Bytes counts what crossed the
// network, and so that a decompressed body is bounded by max.
func (a *Agent) get(ctx context.Context, path string, max int64, timeout time.Duration) ([]byte, int, error) {
	b, code, _, err := a.getTyped(ctx, path, max, timeout)
	return b, code, err
}

// getTyped is get, also returning the response's content type.
func (a *Agent) getTyped(ctx context.Context, path string, max int64, timeout time.Duration) ([]byte, int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.root+path, nil)
	if err != nil {
		return nil, 0, "", fmt.Errorf("sync: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	req.Header.Set("Accept-Encoding", "gzip")
	if a.cfg.Software != "" {
		req.Header.Set("User-Agent", "vigie-edge/"+a.cfg.Software)
	}
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, "", fmt.Errorf("sync: %w", err)
	}
	defer resp.Body.Close()
	counted := &countReader{r: resp.Body}
	defer func() {
		a.bytes.Add(counted.n)
		a.m.bytes.Add(float64(counted.n))
	}()
	if resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, io.LimitReader(counted, 4096))
		return nil, resp.StatusCode, "", nil
	}
	if resp.StatusCode != http.StatusOK {
		var p problem
		json.NewDecoder(io.LimitReader(counted, 64<<10)).Decode(&p)
		if p.Detail != "" {
			return nil, resp.StatusCode, "", fmt.Errorf("sync: GET %s: %s: %s (%s): %w", path, resp.Status, p.Detail, p.Type, errAnswered)
		}
		return nil, resp.StatusCode, "", fmt.Errorf("sync: GET %s: %s: %w", path, resp.Status, errAnswered)
	}
	var r io.Reader = counted
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(counted)
		if err != nil {
			return nil, 0, "", fmt.Errorf("sync: GET %s: %w", path, err)
		}
		r = zr
	}
	// max is a section's exact size when known (-1 otherwise): worth
	// allocating up front, and nothing larger is accepted.
	limit := max
	var buf bytes.Buffer
	if limit < 0 || limit >= a.cfg.MaxBundle {
		limit = a.cfg.MaxBundle
	} else {
		buf.Grow(int(limit))
	}
	n, err := io.Copy(&buf, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, 0, "", fmt.Errorf("sync: GET %s: %w", path, err)
	}
	if n > limit {
		return nil, 0, "", fmt.Errorf("sync: GET %s: larger than %d bytes", path, limit)
	}
	return buf.Bytes(), resp.StatusCode, resp.Header.Get("Content-Type"), nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// report tells the control plane what is in force. Best effort: a report
// that fails is retried with the next one.
func (a *Agent) report(ctx context.Context, serial uint64, hash string, fallback bool, errText string) {
	body, _ := json.Marshal(map[string]any{"serial": serial, "hash": hash, "error": errText, "software": a.cfg.Software, "fallback": fallback})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.root+"/api/v1/edge/status", bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		a.log.Debug("cannot report status", "err", err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
