// Package policysync is the edge's policy sync agent: it long-polls the
// control plane for a policy newer than the one in force, verifies it
// against the académie keys pinned in the edge's configuration (two while
// the académie rotates its key), fetches only the bundle sections it does
// not hold yet, hands the rebuilt bundle to the edge's Apply (which swaps
// the generation and keeps it as last-known-good), and reports "applied
// SERIAL" or the error. Failures back off exponentially with jitter, so
// that a control plane coming back is not hit by every school at the same
// instant.
//
// One file per concern, in the order a poll runs through them:
//   - agent.go: configuration, the poll loop (Run, SyncOnce) and the
//     status report;
//   - fetch.go: HTTP with the edge token, decompression and byte counts;
//   - failover.go: the control-plane URLs and the back-off between them;
//   - assemble.go: the signed manifest (whole or patched), the sections
//     held, cached or fetched, and the version handed to Apply;
//   - cache.go: fetched sections kept on disk until applied;
//   - refusal.go: refused bundles, remembered so they are not fetched
//     again, and the metrics of polls and refusals.
package policysync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/rules/bundle"
)

// Config is what an agent needs. URL, Token, PublicKey or PublicKeys,
// Apply (or ApplyParts) and Current are required.
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
	// ApplyParts, set instead of Apply, receives each new version as
	// its verified pieces rather than laid out as one bundle: the signed
	// manifest and the sections in table order. A caller that does not
	// load the bundle itself saves the copy (bench/controlplane runs a
	// thousand agents in one process this way: loading is each real
	// edge's own work). The agent keeps the sections for the next delta.
	ApplyParts func(Version) error
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

	// held are the sections of the bundle in force, in the order of its
	// table (which heldEnts is): views of its bytes, which the edge keeps
	// alive anyway (its Ruleset views them). A patched manifest keeps the
	// table's order, so the next version's sections are looked up at the
	// same row first; heldByHash, for the others, is only built when one
	// is asked for (heldAt, heldAnywhere). manifest is that bundle's signed head, which patches
	// apply to.
	held       [][]byte
	heldEnts   []entry
	heldByHash map[[32]byte]int
	manifest   []byte
	// pollReports is set while the control plane's answers say it takes
	// the report of an applied version in the next poll's query
	// (reportInPollHeader); unreported is that report, until a poll
	// carried it.
	pollReports bool
	unreported  *statusReport
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
	mu     sync.Mutex
	status Status
	m      metrics
	token  atomic.Pointer[string]
}

// New checks the configuration and returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.URL == "" || cfg.Token == "" || (cfg.Apply == nil) == (cfg.ApplyParts == nil) || cfg.Current == nil {
		return nil, errors.New("sync: URL, Token, Current and one of Apply and ApplyParts are required")
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
	roots, err := parseRoots(append([]string{cfg.URL}, cfg.URLs...))
	if err != nil {
		return nil, err
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
	a := &Agent{cfg: cfg, keys: keys, roots: roots, log: cfg.Log, now: cfg.Now}
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
		a.holdBundle(cfg.Initial)
	}
	return a, nil
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
	case a.cfg.Full || len(a.heldEnts) == 0:
		part = "full"
	case a.noPatch:
		part = "manifest"
	}
	q := url.Values{"after": {fmt.Sprint(after)}, "part": {part}, "wait": {fmt.Sprint(int(a.cfg.Hold / time.Second))}}
	rep := a.unreported
	if rep != nil {
		q.Set("applied", strconv.FormatUint(rep.Serial, 10))
		q.Set("hash", rep.Hash)
		if rep.Software != "" {
			q.Set("software", rep.Software)
		}
	}
	resp, err := a.fetch(ctx, "/api/v1/edge/bundle?"+q.Encode(), -1, a.cfg.Hold+30*time.Second, inm)
	if err == nil {
		a.pollReports = resp.reportInPoll
	}
	if rep != nil && (err == nil || errors.Is(err, errAnswered)) {
		a.unreported = nil
		if err != nil || !resp.reportInPoll {
			// A control plane that does not take the report in its
			// poll (an earlier release, reached after a failover) or
			// refused the poll: report the usual way. A poll lost on
			// the way keeps the report for the next one.
			a.pollReports = false
			a.report(ctx, rep.Serial, rep.Hash, false, "")
		}
	}
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
		v *version
		h bundle.Header
	)
	if part == "full" {
		if v, h, err = a.whole(body); err != nil {
			s, hh := bundle.Peek(body)
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
		if v, h, err = a.assemble(ctx, manifest, h, ents, extra); err != nil {
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
	if err := a.apply(v); err != nil {
		// Held sections are trusted; if they were what made the bundle
		// fail, the next attempt must not reuse them.
		a.hold(nil, nil, nil)
		err = fmt.Errorf("sync: bundle serial %d refused: %w", h.Serial, err)
		return false, a.refused(ctx, serial, hash, fallback, reasonApply, h.Serial, h.HashHex(), resp.etag, err)
	}
	a.bad.hash, a.bad.etag, a.noPatch = "", "", false
	a.pruneCache()
	a.m.applied.Set(float64(h.Serial))
	a.setStatus(func(s *Status) { s.Serial, s.LastSync, s.LastError = h.Serial, a.now(), "" })
	if a.log.Enabled(ctx, slog.LevelInfo) {
		a.log.Info("policy received from the control plane", "serial", h.Serial, "hash", h.HashHex()[:12],
			"bytes", a.bytes.Load()-start, "bundle_bytes", v.size())
	}
	if a.cfg.Spread > 0 {
		select {
		case <-time.After(time.Duration(a.cfg.Jitter() * float64(a.cfg.Spread))):
		case <-ctx.Done():
		}
	}
	if a.pollReports {
		// The next poll, sent now, carries the report.
		a.unreported = &statusReport{Serial: h.Serial, Hash: h.HashHex(), Software: a.cfg.Software}
	} else {
		a.report(ctx, h.Serial, h.HashHex(), false, "")
	}
	return true, nil
}

// statusReport is what report sends (the control plane's EdgeReport).
type statusReport struct {
	Serial   uint64 `json:"serial"`
	Hash     string `json:"hash"`
	Error    string `json:"error"`
	Software string `json:"software"`
	Fallback bool   `json:"fallback"`
}

// report tells the control plane what is in force. Best effort: a report
// that fails is retried with the next one.
func (a *Agent) report(ctx context.Context, serial uint64, hash string, fallback bool, errText string) {
	body, _ := json.Marshal(statusReport{Serial: serial, Hash: hash, Error: errText, Software: a.cfg.Software, Fallback: fallback})
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
