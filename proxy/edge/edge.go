// Package edge wires one school's gateway: the DNS filter, the HTTP/HTTPS
// proxy, the firewall, the journal and the sync agent, around one policy
// generation swapped atomically. Each component has its own file here with
// its configuration section and its start function; this file holds what
// they share and the order they start in.
package edge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"vigie/atomicfile"
	"vigie/journal"
	"vigie/proxy/dns"
	"vigie/proxy/generation"
	"vigie/proxy/identity"
	"vigie/rules"
	"vigie/rules/bundle"
)

// Config is an edge's configuration file. Unknown fields are errors.
type Config struct {
	// UAI of the school this edge serves.
	UAI string `yaml:"uai"`
	// StateDir keeps the last-known-good bundle and the journal.
	StateDir string `yaml:"state_dir"`
	// PublicKey is the académie's bundle signing key (PEM file), pinned here.
	PublicKey string `yaml:"public_key,omitempty"`
	// PublicKeys pins several académie keys instead (PEM files): a bundle
	// signed by any of them is accepted. It is how the académie rotates its
	// key without refusing bundles or falling back to the strict policy:
	// the new key is added to every edge, then the control plane switches,
	// then the old key is removed. Exclusive with PublicKey.
	PublicKeys []string `yaml:"public_keys,omitempty"`
	// Bundle is an optional bundle file to start from (tests, air-gapped sites).
	Bundle string `yaml:"bundle,omitempty"`

	ControlPlane ControlPlaneConfig `yaml:"controlplane,omitempty"`
	DNS          DNSConfig          `yaml:"dns,omitempty"`
	HTTP         HTTPConfig         `yaml:"http,omitempty"`
	Firewall     FirewallConfig     `yaml:"firewall,omitempty"`
	Metrics      MetricsConfig      `yaml:"metrics,omitempty"`
	Journal      JournalConfig      `yaml:"journal,omitempty"`
	Identity     IdentityConfig     `yaml:"identity,omitempty"`
	Flows        FlowsConfig        `yaml:"flows,omitempty"`
}

// LoadConfig reads and strictly decodes an edge configuration file.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("edge: config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("edge: config %s: %w", path, err)
	}
	if c.UAI == "" {
		return c, fmt.Errorf("edge: config %s: uai is required", path)
	}
	if c.StateDir == "" {
		return c, fmt.Errorf("edge: config %s: state_dir is required", path)
	}
	// Only the fields are checked here: the files are read by New (the
	// firewall command and the examples' test load a configuration whose
	// key files are elsewhere).
	if err := c.checkKeyFields(); err != nil {
		return c, fmt.Errorf("edge: config %s: %w", path, err)
	}
	if c.Journal.LocalRetention > journal.MaxRetention {
		return c, fmt.Errorf("edge: config %s: journal.local_retention: %s is more than the legal maximum of one year (8760h)", path, c.Journal.LocalRetention)
	}
	return c, nil
}

// Deps are what the edge is given rather than reaching for.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Journal  journal.Sink
	// PublicKey overrides Config.PublicKey and Config.PublicKeys (the
	// demo passes its own).
	PublicKey ed25519.PublicKey
	Now       func() time.Time
}

// Edge is one running school gateway.
type Edge struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	journal journal.Sink
	// keys are the pinned académie keys, fps their fingerprints (same
	// order), keyInForce the index of the one that verified the bundle in
	// force (-1 while the built-in strict policy runs).
	keys       []ed25519.PublicKey
	fps        []string
	keyInForce atomic.Int32
	now        func() time.Time
	gen        generation.Current

	applyMu sync.Mutex
	// onApply are called, under applyMu, with each new generation before
	// it is swapped in (the firewall applies its ruleset there: a failure
	// refuses the generation).
	onApply []func(*generation.Generation) error
	stops   []func(context.Context) error
	// dns is the DNS filter, also the HTTP proxy's resolver.
	dns *dns.Server

	// Listener supervision (supervise.go).
	superviseOnce sync.Once
	listenerGauge *prometheus.GaugeVec
	failed        chan error
	stopping      atomic.Bool
	supervised    sync.WaitGroup // supervised listeners still serving
	// identity is who is behind client addresses (nil when not configured).
	identity *identity.Table
}

// New prepares an edge; Start runs it.
func New(cfg Config, d Deps) (*Edge, error) {
	e := &Edge{cfg: cfg, log: d.Log, reg: d.Registry, journal: d.Journal, now: d.Now}
	e.keyInForce.Store(-1)
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.reg == nil {
		e.reg = prometheus.NewRegistry()
	}
	if e.journal == nil {
		e.journal = journal.Discard{}
	}
	if e.now == nil {
		e.now = time.Now
	}
	if d.PublicKey != nil {
		e.keys = []ed25519.PublicKey{d.PublicKey}
	} else {
		keys, err := cfg.loadKeys()
		if err != nil {
			return nil, fmt.Errorf("edge: %w", err)
		}
		e.keys = keys
	}
	e.fps = fingerprints(e.keys)
	e.log.Info("académie keys pinned", "keys", e.fps)
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("edge: state dir: %w", err)
	}
	return e, nil
}

// Generation returns the policy generation in force.
func (e *Edge) Generation() *generation.Current { return &e.gen }

// UAI is the school this edge serves.
func (e *Edge) UAI() string { return e.cfg.UAI }

// lastKnownGood is where the last applied bundle is kept.
func (e *Edge) lastKnownGood() string { return filepath.Join(e.cfg.StateDir, "policy.bundle") }

// Apply verifies a bundle, loads it and swaps it in. A bundle that fails
// any step is refused and the generation in force keeps serving.
func (e *Edge) Apply(data []byte) (*generation.Generation, error) {
	b, key, err := bundle.DecodeKeys(data, e.keys)
	if err != nil {
		return nil, fmt.Errorf("edge: refuse bundle: %w", err)
	}
	h := b.Header
	rs, err := rules.Load(b)
	if err != nil {
		return nil, fmt.Errorf("edge: refuse bundle serial %d: %w", h.Serial, err)
	}
	if _, ok := rs.School(e.cfg.UAI); !ok {
		return nil, fmt.Errorf("edge: refuse bundle serial %d: it has no school %s", h.Serial, e.cfg.UAI)
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if cur := e.gen.Load(); cur != nil && !cur.Fallback && h.Serial < cur.Serial {
		return nil, fmt.Errorf("edge: refuse bundle serial %d: serial %d is already applied", h.Serial, cur.Serial)
	}
	g := &generation.Generation{Rules: rs, Serial: h.Serial, Hash: h.HashHex(), Applied: e.now()}
	for _, f := range e.onApply {
		if err := f(g); err != nil {
			return nil, fmt.Errorf("edge: apply serial %d: %w", h.Serial, err)
		}
	}
	// The bytes must outlive the generation: the Ruleset views them.
	if err := atomicfile.Write(e.lastKnownGood(), data, 0o640); err != nil {
		e.log.Error("cannot save last-known-good bundle", "err", err)
	}
	e.keyInForce.Store(int32(key))
	e.gen.Store(g)
	e.log.Info("policy applied", "serial", h.Serial, "hash", g.Hash[:12], "domains", rs.Domains(), "key", e.fps[key])
	return g, nil
}

// loadInitial puts a first generation in place: the configured bundle, else
// the last-known-good one, else the built-in strict policy.
func (e *Edge) loadInitial() error {
	for _, path := range []string{e.cfg.Bundle, e.lastKnownGood()} {
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			_, err = e.Apply(data)
		}
		if err == nil {
			return nil
		}
		e.log.Error("cannot start from bundle", "path", path, "err", err)
	}
	rs, err := StrictRuleset(e.cfg.UAI)
	if err != nil {
		return err
	}
	g := &generation.Generation{Rules: rs, Applied: e.now(), Fallback: true}
	for _, f := range e.onApply {
		if err := f(g); err != nil {
			return fmt.Errorf("edge: apply built-in strict policy: %w", err)
		}
	}
	e.keyInForce.Store(-1)
	e.gen.Store(g)
	e.log.Warn("NO POLICY AVAILABLE: running the built-in strict policy until the control plane answers", "uai", e.cfg.UAI)
	return nil
}

// Start loads the first generation and starts every component, in the
// order that lets each rely on the previous ones.
func (e *Edge) Start(ctx context.Context) error {
	steps := []struct {
		name  string
		start func(context.Context) error
	}{
		// The firewall registers its apply hook first: a generation is
		// only in force once its ruleset is in the kernel.
		{"firewall", e.startFirewall},
		{"policy", func(context.Context) error { return e.loadInitial() }},
		// The journal before the listeners: DNS and HTTP take e.journal
		// when they start, and every answered query must be recorded.
		{"journal", e.startJournal},
		// Identity wraps the journal sink so that every record is stamped
		// with the MAC and user known when it is made.
		{"identity", e.startIdentity},
		// Listeners come up once a policy is in force, so no query is
		// ever answered without one.
		{"dns", e.startDNS},
		{"http", e.startHTTP},
		// Flows after the listeners: the ports redirected to them are
		// journalled by them, not again from conntrack.
		{"flows", e.startFlows},
		{"metrics", e.startMetrics},
		// Sync last: it may replace the generation the others now serve.
		{"sync", e.startSync},
	}
	for _, s := range steps {
		if err := s.start(ctx); err != nil {
			e.Shutdown(context.Background())
			return fmt.Errorf("edge: start %s: %w", s.name, err)
		}
	}
	return nil
}

// Shutdown stops every component, last started first.
func (e *Edge) Shutdown(ctx context.Context) error {
	e.stopping.Store(true)
	var errs []error
	for i := len(e.stops) - 1; i >= 0; i-- {
		errs = append(errs, e.stops[i](ctx))
	}
	e.stops = nil
	return errors.Join(errs...)
}

func (e *Edge) startJournal(ctx context.Context) error { return e.startJournalWith(ctx, e.cfg.Journal) }
