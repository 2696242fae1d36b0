// Package sync is the edge's sync agent: it long-polls the control plane
// for a policy newer than the one in force, verifies it against the
// académie keys pinned in the edge's configuration (two while the académie
// rotates its key), fetches only the bundle sections it does not hold yet, hands the rebuilt bundle to the edge's
// Apply (which swaps the generation and keeps it as last-known-good), and
// reports "applied SERIAL" or the error. Failures back off exponentially
// with jitter, so that a control plane coming back is not hit by every
// school at the same instant.
package sync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
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
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"vigie/rules/bundle"
)

// Config is what an agent needs. URL, Token, PublicKey or PublicKeys,
// Apply and Current are required.
type Config struct {
	// URL is the control plane's base URL ("https://vigie.ac-exemple.fr").
	URL string
	// URLs are further replicas' base URLs: after a failed poll the agent
	// turns to the next one, round robin.
	URLs []string
	// Token is the edge's bearer token (vge_...).
	Token string
	// TokenFile, when set, is where Token came from: after a 401 the
	// agent reads it again and retries with the new token, so that a
	// rotation by the RSSI needs no restart of the edge.
	TokenFile string
	// PublicKey is the académie key bundles must be signed with.
	PublicKey ed25519.PublicKey
	// PublicKeys are further académie keys accepted as well: during a key
	// rotation an edge pins the old and the new one, so that a bundle
	// signed by either is applied.
	PublicKeys []ed25519.PublicKey
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
	// keys are the pinned académie keys, PublicKey first.
	keys []ed25519.PublicKey
	// roots are the base URLs without a trailing slash (API paths follow
	// them); cur indexes the one in use.
	roots []string
	cur   atomic.Int32
	log   *slog.Logger
	now   func() time.Time

	// held maps the sections of the bundle in force to its bytes (which
	// the edge keeps alive anyway: its Ruleset views them), and manifest
	// is that bundle's signed head, which patches apply to.
	held     map[[32]byte][]byte
	manifest []byte
	// noPatch asks for a whole manifest after a patch did not rebuild a
	// correctly signed one (it never should; this keeps the edge moving).
	noPatch bool

	// bad is the last bundle refused: it is not fetched again until
	// until, unless a newer serial comes. etag is set when the refusal
	// came from the bytes themselves (a bad signature): the same bytes
	// will never verify, so even after until the agent asks for them
	// with If-None-Match and takes the control plane's 304 as "still the
	// refused one" instead of downloading them at every retry.
	bad struct {
		serial uint64
		hash   string
		until  time.Time
		etag   string
	}
	bytes  atomic.Int64
	mu     gosync.Mutex
	status Status
	m      metrics
	token  atomic.Pointer[string]
}

// bearer is the Authorization header of the token in use.
func (a *Agent) bearer() string { return "Bearer " + *a.token.Load() }

// reloadToken reads TokenFile again after a 401 and reports whether it
// now holds another token (then worth retrying at once).
func (a *Agent) reloadToken() bool {
	if a.cfg.TokenFile == "" {
		return false
	}
	b, err := os.ReadFile(a.cfg.TokenFile)
	if err != nil {
		a.log.Warn("sync: cannot read the token file again after a 401", "file", a.cfg.TokenFile, "err", err)
		return false
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || tok == *a.token.Load() {
		return false
	}
	a.token.Store(&tok)
	a.log.Info("sync: the control plane refused the edge token; using the new one from the token file", "file", a.cfg.TokenFile)
	return true
}

type metrics struct {
	polls   *prometheus.CounterVec
	refused *prometheus.CounterVec
	bytes   prometheus.Counter
	applied prometheus.Gauge
	last    prometheus.Gauge
}

// New checks the configuration and returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.URL == "" || cfg.Token == "" || cfg.Apply == nil || cfg.Current == nil {
		return nil, errors.New("sync: URL, Token, Apply and Current are required")
	}
	var keys []ed25519.PublicKey
	if cfg.PublicKey != nil {
		keys = append(keys, cfg.PublicKey)
	}
	keys = append(keys, cfg.PublicKeys...)
	if len(keys) == 0 {
		return nil, errors.New("sync: no académie public key to verify bundles with")
	}
	for i, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("sync: académie public key %d has %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
		}
	}
	var roots []string
	for _, u := range append([]string{cfg.URL}, cfg.URLs...) {
		base, err := url.Parse(u)
		if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
			return nil, fmt.Errorf("sync: control plane URL %q is not an http(s) URL", u)
		}
		base.RawQuery, base.Fragment = "", ""
		roots = append(roots, strings.TrimRight(base.String(), "/"))
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
	a := &Agent{cfg: cfg, keys: keys, roots: roots, log: cfg.Log, now: cfg.Now, held: map[[32]byte][]byte{}}
	tok := strings.TrimSpace(cfg.Token)
	a.token.Store(&tok)
	a.m = metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_sync_polls_total",
			Help: "Polls of the control plane by outcome."}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_sync_refused_total",
			Help: "Bundles received and refused, by reason."}, []string{"reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigie_sync_received_bytes_total",
			Help: "Bytes received from the control plane (as sent, compressed)."}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigie_sync_applied_serial",
			Help: "Serial of the policy applied last by the sync agent."}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigie_sync_last_success_timestamp_seconds",
			Help: "When the agent last reached the control plane successfully."}),
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{a.m.polls, a.m.refused, a.m.bytes, a.m.applied, a.m.last} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("sync: metrics: %w", err)
			}
		}
	}
	// Every known label value exists from the start at zero, so that
	// rate() and increase() see the first event.
	for _, r := range pollResults {
		a.m.polls.WithLabelValues(r)
	}
	for _, r := range refusalReasons {
		a.m.refused.WithLabelValues(r)
	}
	if len(cfg.Initial) > 0 {
		a.hold(cfg.Initial)
	}
	return a, nil
}

// hold indexes the sections of the bundle now in force. Its bytes were
// verified when they were applied, so they are not hashed again here.
func (a *Agent) hold(data []byte) {
	_, ents, err := table(data, nil)
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

// table reads the header and section table of a bundle or manifest,
// checking the signature against keys unless keys is nil. It is the one
// place a table is parsed: callers keep what it returns rather than parse
// again, since a thousand-section table costs a hash of the table and a
// string per row.
func table(data []byte, keys []ed25519.PublicKey) (bundle.Header, []entry, error) {
	var (
		h    bundle.Header
		secs []bundle.Section
		err  error
	)
	if keys == nil {
		h, secs, err = bundle.ReadHeader(data, nil)
	} else {
		h, secs, _, err = bundle.ReadHeaderKeys(data, keys)
	}
	if err != nil {
		return h, nil, err
	}
	out := make([]entry, len(secs))
	for i, s := range secs {
		off, size := bundle.SectionSpan(data, i)
		if off > 1<<40 || size > 1<<40 {
			return h, nil, fmt.Errorf("sync: section %q out of bounds: %w", s.Name, bundle.ErrCorrupt)
		}
		out[i] = entry{name: s.Name, hash: s.Hash, off: int64(off), size: int64(size)}
	}
	return h, out, nil
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
		if !errors.As(err, new(errRefused)) {
			a.failover()
		}
		wait := a.backoff(failures)
		a.log.Warn("policy sync failed", "err", err, "retry_in", wait.Round(time.Millisecond), "failures", failures)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	return nil
}

// root is the control plane's base URL in use.
func (a *Agent) root() string { return a.roots[int(a.cur.Load())%len(a.roots)] }

// failover turns to the next control-plane URL, if several are configured.
func (a *Agent) failover() {
	if len(a.roots) > 1 {
		next := (int(a.cur.Load()) + 1) % len(a.roots)
		a.cur.Store(int32(next))
		a.log.Info("turning to another control plane", "url", a.roots[next])
	}
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

// Outcomes of a poll and reasons for refusing a bundle: the label values
// of vigie_sync_polls_total and vigie_sync_refused_total, all known in
// advance so that each series exists at zero from the start.
var (
	pollResults    = []string{"error", "nothing_new", "new_version", "still_refused"}
	refusalReasons = []string{reasonSignature, reasonDecode, reasonOlder, reasonApply}
)

const (
	// reasonSignature: the manifest or bundle is not signed by any of
	// the pinned académie keys.
	reasonSignature = "signature"
	// reasonDecode: malformed (truncated, corrupt, a section that does
	// not match its hash, an unreadable delta answer).
	reasonDecode = "decode"
	// reasonOlder: a serial older than the one in force.
	reasonOlder = "older"
	// reasonApply: the edge's Apply refused it (a firewall the kernel
	// refuses, a ruleset that does not load).
	reasonApply = "apply"
)

// badBundle tells a bundle that fails verification from a transfer that
// failed: the first is reported to the control plane.
func badBundle(err error) bool {
	for _, e := range []error{bundle.ErrSignature, bundle.ErrHash, bundle.ErrCorrupt, bundle.ErrTruncated, bundle.ErrMagic, bundle.ErrVersion, errMismatch} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errMismatch marks a section whose bytes do not match the hash the
// signed table gives.
var errMismatch = errors.New("content does not match its hash")

// reason classifies a refusal for vigie_sync_refused_total.
func reason(err error) string {
	if errors.Is(err, bundle.ErrSignature) {
		return reasonSignature
	}
	return reasonDecode
}

// errRefused marks a bundle that arrived but could not be applied.
type errRefused struct{ err error }

func (e errRefused) Error() string { return e.err.Error() }
func (e errRefused) Unwrap() error { return e.err }

// refuse remembers a refused bundle so that it is not fetched again at
// each backoff step: the next polls wait for a newer serial until
// RetryBad passes. A bundle refused for its signature is remembered by
// the ETag it came with as well, and never downloaded again (see bad).
func (a *Agent) refuse(why string, serial uint64, hash, etag string) {
	a.m.refused.WithLabelValues(why).Inc()
	a.bad.serial, a.bad.hash, a.bad.until = serial, hash, a.now().Add(a.cfg.RetryBad)
	a.bad.etag = ""
	if why == reasonSignature {
		a.bad.etag = etag
	}
}

// SyncOnce polls once (held up to Hold) and applies what came. It returns
// true when a new policy was applied.
func (a *Agent) SyncOnce(ctx context.Context) (bool, error) {
	// The log reports what this update moved, not the running total.
	start := a.bytes.Load()
	serial, hash, fallback := a.cfg.Current()
	after := serial
	if fallback {
		after = 0
	}
	// A bundle that failed to apply is not fetched again right away:
	// wait for a newer one, and retry it only after RetryBad (and, when
	// its signature was bad, only if the control plane now has other
	// bytes to offer).
	inm := ""
	if a.bad.hash != "" && a.bad.serial > after {
		if a.now().Before(a.bad.until) {
			after = a.bad.serial
		} else {
			inm = a.bad.etag
		}
	}
	part := "delta"
	switch {
	case a.cfg.Full || len(a.held) == 0:
		part = "full"
	case a.noPatch:
		part = "manifest"
	}
	q := url.Values{"after": {fmt.Sprint(after)}, "part": {part}, "wait": {fmt.Sprint(int(a.cfg.Hold / time.Second))}}
	resp, err := a.fetch(ctx, "/api/v1/edge/bundle?"+q.Encode(), -1, a.cfg.Hold+30*time.Second, inm)
	if err != nil {
		a.m.polls.WithLabelValues("error").Inc()
		a.fail(ctx, serial, hash, fallback, err)
		return false, err
	}
	a.m.last.SetToCurrentTime()
	switch resp.code {
	case http.StatusNoContent:
		a.m.polls.WithLabelValues("nothing_new").Inc()
		a.setStatus(func(s *Status) { s.LastSync = a.now() })
		return false, nil
	case http.StatusNotModified:
		// The control plane still offers the bundle refused for its
		// signature: wait again, without downloading it.
		a.m.polls.WithLabelValues("still_refused").Inc()
		a.bad.until = a.now().Add(a.cfg.RetryBad)
		a.setStatus(func(s *Status) { s.LastSync = a.now() })
		return false, nil
	}
	a.m.polls.WithLabelValues("new_version").Inc()
	body := resp.body
	var (
		data []byte
		h    bundle.Header
	)
	if part == "full" {
		data = body
		h, _, _, err = bundle.ReadHeaderKeys(data, a.keys)
		if err != nil {
			s, hh := bundle.Peek(data)
			return false, a.refused(ctx, serial, hash, fallback, reason(err), s, hh, resp.etag, err)
		}
	} else {
		// The signature is checked once, on the manifest (rebuilt from a
		// patch or received whole); sections are then checked against the
		// hashes its table gives.
		manifest, extra := body, map[[32]byte][]byte(nil)
		if resp.ctype == bundle.DeltaContentType {
			manifest, extra, err = bundle.SplitFrames(body)
			if err != nil {
				err = fmt.Errorf("sync: %w", err)
				return false, a.refused(ctx, serial, hash, fallback, reasonDecode, resp.serial, "", resp.etag, err)
			}
		}
		var ents []entry
		if bundle.IsPatch(manifest) {
			if manifest, h, ents, err = a.patched(manifest); err != nil {
				a.noPatch = true
				a.fail(ctx, serial, hash, fallback, err)
				return false, err
			}
		} else if h, ents, err = table(manifest, a.keys); err != nil {
			s, hh := bundle.Peek(manifest)
			err = fmt.Errorf("sync: manifest: %w", err)
			return false, a.refused(ctx, serial, hash, fallback, reason(err), s, hh, resp.etag, err)
		}
		if data, h, err = a.assemble(ctx, manifest, h, ents, extra); err != nil {
			if badBundle(err) {
				return false, a.refused(ctx, serial, hash, fallback, reason(err), h.Serial, h.HashHex(), resp.etag, err)
			}
			a.fail(ctx, serial, hash, fallback, err)
			return false, err
		}
	}
	if !fallback && h.Serial < serial {
		err = fmt.Errorf("sync: the control plane sent serial %d, older than %d in force", h.Serial, serial)
		return false, a.refused(ctx, serial, hash, fallback, reasonOlder, h.Serial, h.HashHex(), resp.etag, err)
	}
	if err := a.cfg.Apply(data); err != nil {
		// Held sections are trusted; if they were what made the bundle
		// fail, the next attempt must not reuse them.
		a.held = map[[32]byte][]byte{}
		err = fmt.Errorf("sync: bundle serial %d refused: %w", h.Serial, err)
		return false, a.refused(ctx, serial, hash, fallback, reasonApply, h.Serial, h.HashHex(), resp.etag, err)
	}
	a.bad.hash, a.bad.etag, a.noPatch = "", "", false
	if !a.cfg.Simulate {
		a.hold(data)
	}
	a.pruneCache()
	a.m.applied.Set(float64(h.Serial))
	a.setStatus(func(s *Status) { s.Serial, s.LastSync, s.LastError = h.Serial, a.now(), "" })
	a.log.Info("policy received from the control plane", "serial", h.Serial, "hash", h.HashHex()[:12],
		"bytes", a.bytes.Load()-start, "bundle_bytes", len(data))
	if a.cfg.Spread > 0 {
		select {
		case <-time.After(time.Duration(a.cfg.Jitter() * float64(a.cfg.Spread))):
		case <-ctx.Done():
		}
	}
	a.report(ctx, h.Serial, h.HashHex(), false, "")
	return true, nil
}

// refused counts and remembers a refused bundle (see refuse), records the
// error and reports it; it returns the error as errRefused.
func (a *Agent) refused(ctx context.Context, serial uint64, hash string, fallback bool, why string,
	badSerial uint64, badHash, etag string, err error) error {
	if badHash == "" {
		// Unreadable: name it by the serial and ETag the answer came
		// with, so that the next polls wait for a newer one.
		badHash = etag
		if badHash == "" {
			badHash = "?"
		}
	}
	a.refuse(why, badSerial, badHash, etag)
	err = errRefused{err}
	a.fail(ctx, serial, hash, fallback, err)
	return err
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

// assemble rebuilds the bundle a verified manifest describes (h and ents,
// from table or patched) from the sections held, cached or fetched, each
// put at the offset the signed table gives. Fetched and cached sections
// are checked against their hash; the edge's Apply verifies the whole
// bundle again before using it. When most of it is missing (a first sync
// from the built-in policy), one request for the whole bundle is cheaper
// than hundreds.
func (a *Agent) assemble(ctx context.Context, manifest []byte, h bundle.Header, ents []entry, extra map[[32]byte][]byte) ([]byte, bundle.Header, error) {
	head := int64(64 + 64*len(ents) + ed25519.SignatureSize)
	if int64(len(manifest)) != head {
		return nil, h, fmt.Errorf("sync: manifest of %d bytes, its table says %d: %w", len(manifest), head, bundle.ErrCorrupt)
	}
	var missing, total, end int64
	for _, e := range ents {
		total += e.size
		end = max(end, e.off+e.size)
		if e.off < head || e.off+e.size > a.cfg.MaxBundle {
			return nil, h, fmt.Errorf("sync: manifest places section %q outside the bundle: %w", e.name, bundle.ErrCorrupt)
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
		// The head may have moved on since the manifest: what counts is
		// the version actually received, verified.
		if err == nil {
			if h, _, _, err = bundle.ReadHeaderKeys(data, a.keys); err != nil {
				err = fmt.Errorf("sync: whole bundle: %w", err)
			}
		}
		if err == nil && a.cfg.Simulate {
			a.hold(data)
			return a.manifest, h, nil
		}
		return data, h, err
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
			return nil, h, fmt.Errorf("sync: section %s: %w", e.name, err)
		}
		if int64(len(d)) != e.size || sha256.Sum256(d) != e.hash {
			return nil, h, fmt.Errorf("sync: section %s: %w", e.name, errMismatch)
		}
		a.writeCache(e.hash, d)
		parts[i] = d
	}
	if a.cfg.Simulate {
		for i, e := range ents {
			a.held[e.hash] = parts[i]
		}
		a.manifest = manifest
		return manifest, h, nil
	}
	out := make([]byte, end)
	copy(out, manifest)
	for i, e := range ents {
		copy(out[e.off:], parts[i])
	}
	return out, h, nil
}

// patched rebuilds the new manifest from the one in force and a patch:
// the new header and signature, the table rows that changed (length and
// hash), every offset recomputed from the lengths as the bundle layout
// places them. The signature is checked here, so a patch can only yield
// the manifest the académie signed; the table read while checking it is
// returned so that nobody parses it again.
func (a *Agent) patched(patch []byte) ([]byte, bundle.Header, []entry, error) {
	out, err := bundle.ApplyPatch(a.manifest, patch)
	var (
		h    bundle.Header
		ents []entry
	)
	if err == nil {
		h, ents, err = table(out, a.keys)
	}
	if err != nil {
		return nil, h, nil, fmt.Errorf("sync: manifest patch: %w (asking for the whole manifest next)", err)
	}
	return out, h, ents, nil
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
	r, err := a.fetch(ctx, path, max, timeout, "")
	return r.body, r.code, err
}

// response is what fetch keeps of an answer.
type response struct {
	body  []byte
	code  int
	ctype string
	etag  string
	// serial is the X-Vigie-Serial header of a bundle answer (0 if none).
	serial uint64
}

// gzipReaders and zstdReaders keep decompressors between answers: each
// holds a window and tables that would otherwise be allocated and cleared
// for every update.
var gzipReaders, zstdReaders gosync.Pool

// maxZstdWindow bounds the memory a zstd answer may make the agent
// reserve (the control plane offers zstd only for blobs of 32 MiB or less,
// whose window is at most their size).
const maxZstdWindow = 64 << 20

// newZstd returns a pooled streaming zstd decoder: one goroutine (no
// background decoding), bounded window.
func newZstd() (*zstd.Decoder, error) {
	if d, ok := zstdReaders.Get().(*zstd.Decoder); ok {
		return d, nil
	}
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxZstdWindow))
}

// preSize bounds the buffer allocated up front from a Content-Length,
// which is only a claim: larger bodies grow as they really arrive.
const preSize = 4 << 20

// fetch is get with the answer's type, ETag and serial; ifNoneMatch, when
// set, is sent as If-None-Match (a 304 comes back with no body).
func (a *Agent) fetch(ctx context.Context, path string, max int64, timeout time.Duration, ifNoneMatch string) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := a.send(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.root()+path, nil)
		if err != nil {
			return nil, err
		}
		a.fetchHeaders(req, ifNoneMatch)
		return req, nil
	})
	if err != nil {
		return response{}, fmt.Errorf("sync: %w", err)
	}
	defer resp.Body.Close()
	counted := &countReader{r: resp.Body}
	defer func() {
		a.bytes.Add(counted.n)
		a.m.bytes.Add(float64(counted.n))
	}()
	out := response{code: resp.StatusCode, etag: resp.Header.Get("ETag")}
	out.serial, _ = strconv.ParseUint(resp.Header.Get("X-Vigie-Serial"), 10, 64)
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		io.Copy(io.Discard, io.LimitReader(counted, 4096))
		return out, nil
	}
	if resp.StatusCode != http.StatusOK {
		var p problem
		json.NewDecoder(io.LimitReader(counted, 64<<10)).Decode(&p)
		if p.Detail != "" {
			return out, fmt.Errorf("sync: GET %s: %s: %s (%s): %w", path, resp.Status, p.Detail, p.Type, errAnswered)
		}
		return out, fmt.Errorf("sync: GET %s: %s: %w", path, resp.Status, errAnswered)
	}
	var r io.Reader = counted
	coding := resp.Header.Get("Content-Encoding")
	switch coding {
	case "":
	case "gzip":
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		if err := zr.Reset(counted); err != nil {
			return out, fmt.Errorf("sync: GET %s: %w", path, err)
		}
		defer gzipReaders.Put(zr)
		r = zr
	case "zstd":
		zr, err := newZstd()
		if err == nil {
			err = zr.Reset(counted)
		}
		if err != nil {
			return out, fmt.Errorf("sync: GET %s: zstd: %w", path, err)
		}
		defer func() { zr.Reset(nil); zstdReaders.Put(zr) }()
		r = zr
	default:
		return out, fmt.Errorf("sync: GET %s: unexpected Content-Encoding %q", path, coding)
	}
	// max is a section's exact size when known (-1 otherwise): worth
	// allocating up front, and nothing larger is accepted. Otherwise the
	// announced length (a few times it, compressed) saves regrowing.
	limit := max
	var buf bytes.Buffer
	if limit < 0 || limit >= a.cfg.MaxBundle {
		limit = a.cfg.MaxBundle
		if n := resp.ContentLength; n > 0 {
			if coding != "" {
				n *= 3
			}
			buf.Grow(int(min(n+bytes.MinRead, preSize, limit+1)))
		}
	} else {
		// ReadFrom wants MinRead bytes free before each read: room for
		// them too, or the last read would double the buffer.
		buf.Grow(int(limit + bytes.MinRead))
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return out, fmt.Errorf("sync: GET %s: %w", path, err)
	}
	if n > limit {
		return out, fmt.Errorf("sync: GET %s: larger than %d bytes", path, limit)
	}
	out.body, out.ctype = buf.Bytes(), resp.Header.Get("Content-Type")
	return out, nil
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

func (a *Agent) fetchHeaders(req *http.Request, ifNoneMatch string) {
	// zstd first: after a publication every edge decodes the same answer,
	// and zstd does it several times faster than gzip.
	req.Header.Set("Accept-Encoding", "zstd, gzip")
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	if a.cfg.Software != "" {
		req.Header.Set("User-Agent", "vigie-edge/"+a.cfg.Software)
	}
}

// send makes the request build() returns with the edge token; on a 401 it
// reads the token file again and, when it holds a new token, sends the
// request once more with it.
func (a *Agent) send(ctx context.Context, build func() (*http.Request, error)) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", a.bearer())
		resp, err := a.cfg.Client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 || !a.reloadToken() {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}

// report tells the control plane what is in force. Best effort: a report
// that fails is retried with the next one.
func (a *Agent) report(ctx context.Context, serial uint64, hash string, fallback bool, errText string) {
	body, _ := json.Marshal(map[string]any{"serial": serial, "hash": hash, "error": errText, "software": a.cfg.Software, "fallback": fallback})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := a.send(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.root()+"/api/v1/edge/status", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	})
	if err != nil {
		a.log.Debug("cannot report status", "err", err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
