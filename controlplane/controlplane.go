// Package controlplane assembles the académie's control plane: the store in
// the data directory, the signing key, authentication, the publisher and the
// HTTP API, served with timeouts fit for long-polls. The CLI, the demo and
// the benchmark all start it through Open and Serve.
package controlplane

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.yaml.in/yaml/v3"

	"vigie/controlplane/api"
	"vigie/controlplane/audit"
	"vigie/controlplane/auth"
	"vigie/controlplane/auth/sso"
	"vigie/controlplane/logs"
	"vigie/controlplane/publish"
	"vigie/controlplane/report"
	"vigie/controlplane/requisition"
	"vigie/controlplane/store"
	"vigie/controlplane/ui"
	"vigie/keyfile"
)

// Config is the control plane's configuration file. Unknown fields are
// errors.
type Config struct {
	// Listen is the API address (default 127.0.0.1:8080).
	Listen string `yaml:"listen"`
	// DataDir holds the database, the imported lists and, by default, the key.
	DataDir string `yaml:"data_dir"`
	// Key is the académie's Ed25519 signing key (default DATA/academie.key).
	Key string `yaml:"key,omitempty"`
	// TLSCert and TLSKey serve HTTPS; without them, put a TLS reverse
	// proxy in front (cookies are Secure unless InsecureCookies).
	TLSCert string `yaml:"tls_cert,omitempty"`
	TLSKey  string `yaml:"tls_key,omitempty"`
	// InsecureCookies drops the Secure flag: for the loopback demo only.
	InsecureCookies bool `yaml:"insecure_cookies,omitempty"`
	// LongPoll is how long an edge's poll is held (default 30s).
	LongPoll time.Duration `yaml:"long_poll,omitempty"`
	// MetricsListen serves Prometheus metrics on a separate address, and
	// Go's profiler under /debug/pprof/ only when that address is loopback
	// (profiles expose memory contents: never on a network address).
	MetricsListen string `yaml:"metrics_listen,omitempty"`
	// Academie names the académie in a new draft.
	Academie string `yaml:"academie,omitempty"`
	// DBReaders is the size of the database reader pool (default 4), or
	// of PostgreSQL's connection pool.
	DBReaders int `yaml:"db_readers,omitempty"`
	// Database chooses the store: absent for DATA/vigie.db, sqlite:PATH,
	// or a postgres:// URL without a password, shared by every replica.
	Database string `yaml:"database,omitempty"`
	// DatabaseSchema is the PostgreSQL schema of this académie (default
	// "vigie"): several académies can share a cluster, one schema each.
	DatabaseSchema string `yaml:"database_schema,omitempty"`
	// DatabasePasswordFile holds PostgreSQL's password; without it,
	// libpq's PGPASSWORD or ~/.pgpass apply. Never inline in Database.
	DatabasePasswordFile string `yaml:"database_password_file,omitempty"`
	// TrustedProxies are the reverse proxies in front (CIDR prefixes):
	// their X-Forwarded-For names the client in the audit log and the
	// login limit. Without it, behind a proxy, every login would count
	// against the proxy's address.
	TrustedProxies []string `yaml:"trusted_proxies,omitempty"`
	// SSO signs people in with the académie's identity provider (OpenID
	// Connect); local accounts stay for break-glass.
	SSO *sso.Config `yaml:"sso,omitempty"`
	// Retention is how long the archive keeps each stream (connexions
	// 365d, navigation 183d by default; at most 365d each).
	Retention RetentionConfig `yaml:"retention,omitempty"`
	// RequisitionKeep is how long an export transmitted to the AQSSI
	// stays on the server, encrypted, before it is purged (default 720h,
	// 30 days; at most 8760h).
	RequisitionKeep time.Duration `yaml:"requisition_keep,omitempty"`
}

func (c Config) proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies[%d]: %q is not an address or CIDR prefix", i, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Key == "" && c.DataDir != "" {
		c.Key = filepath.Join(c.DataDir, "academie.key")
	}
	if c.Academie == "" {
		c.Academie = "Académie"
	}
}

// LoadConfig reads and strictly decodes a configuration file.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("controlplane: config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("controlplane: config %s: %w", path, err)
	}
	if c.DataDir == "" {
		return c, fmt.Errorf("controlplane: config %s: data_dir is required", path)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, fmt.Errorf("controlplane: config %s: tls_cert and tls_key go together", path)
	}
	if _, err := c.proxies(); err != nil {
		return c, fmt.Errorf("controlplane: config %s: %w", path, err)
	}
	if c.RequisitionKeep < 0 || c.RequisitionKeep > 8760*time.Hour {
		return c, fmt.Errorf("controlplane: config %s: requisition_keep: %s is outside 0..8760h", path, c.RequisitionKeep)
	}
	if err := c.Retention.check(); err != nil {
		return c, fmt.Errorf("controlplane: config %s: %w", path, err)
	}
	if err := store.CheckAddress(c.Database); err != nil {
		return c, fmt.Errorf("controlplane: config %s: database: %w", path, err)
	}
	if (c.DatabaseSchema != "" || c.DatabasePasswordFile != "") && store.Backend(c.Database) != "postgres" {
		return c, fmt.Errorf("controlplane: config %s: database_schema and database_password_file need a postgres:// database", path)
	}
	if c.SSO != nil {
		if err := c.SSO.Check(); err != nil {
			return c, fmt.Errorf("controlplane: config %s: %w", path, err)
		}
		if c.SSO.ClientSecretFile != "" && !filepath.IsAbs(c.SSO.ClientSecretFile) {
			c.SSO.ClientSecretFile = filepath.Join(filepath.Dir(path), c.SSO.ClientSecretFile)
		}
	}
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Join(filepath.Dir(path), c.DataDir)
	}
	if p, ok := strings.CutPrefix(c.Database, "sqlite:"); ok && !filepath.IsAbs(p) {
		c.Database = "sqlite:" + filepath.Join(filepath.Dir(path), p)
	}
	if c.DatabasePasswordFile != "" && !filepath.IsAbs(c.DatabasePasswordFile) {
		c.DatabasePasswordFile = filepath.Join(filepath.Dir(path), c.DatabasePasswordFile)
	}
	c.defaults()
	return c, nil
}

// Deps are injected rather than reached for.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Now      func() time.Time
	// HTTPClient downloads UT1 tarballs.
	HTTPClient *http.Client
}

// ControlPlane is one running control plane.
type ControlPlane struct {
	Store     store.Store
	Auth      *auth.Service
	Publisher *publish.Publisher
	API       *api.Server
	// Logs is the journal archive, retention and requisition exports.
	Logs *logs.Service
	// Rollup counts the blocked requests per day for the yearly review.
	Rollup *report.Rollup
	// UI is the French web interface; it passes /api/ through to API.
	UI       *ui.Handler
	Registry *prometheus.Registry
	cfg      Config
	log      *slog.Logger
}

// ErrNoKey says the signing key is missing: run "vigie controlplane init".
var ErrNoKey = errors.New("controlplane: no académie signing key (run \"vigie controlplane init\")")

// Open opens the data directory and prepares every part. A new data
// directory gets an empty but valid draft.
func Open(ctx context.Context, cfg Config, d Deps) (*ControlPlane, error) {
	cfg.defaults()
	if cfg.DataDir == "" {
		return nil, errors.New("controlplane: no data directory")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
		d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	proxies, err := cfg.proxies()
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	if err := cfg.Retention.check(); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	key, err := keyfile.LoadPrivate(cfg.Key)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	st, err := OpenStore(ctx, cfg, d.Log)
	if err != nil {
		return nil, err
	}
	if err := ensureDraft(ctx, st, cfg.Academie, d.Now()); err != nil {
		st.Close()
		return nil, err
	}
	pub, err := publish.New(ctx, st, publish.Config{DataDir: cfg.DataDir, Key: key, Log: d.Log, Registry: d.Registry, Now: d.Now})
	if err != nil {
		st.Close()
		return nil, err
	}
	acfg := auth.Config{SecureCookies: !cfg.InsecureCookies, Log: d.Log}
	if cfg.SSO != nil {
		acfg.BreakGlass = cfg.SSO.BreakGlass
	}
	au := auth.New(st, nil, acfg, d.Now)
	var flow *sso.Flow
	if cfg.SSO != nil {
		if flow, err = sso.New(*cfg.SSO, au, nil, d.Now); err != nil {
			st.Close()
			return nil, fmt.Errorf("controlplane: %w", err)
		}
	}
	srv := api.New(st, au, pub, api.Config{DataDir: cfg.DataDir, LongPoll: cfg.LongPoll, HTTPClient: d.HTTPClient,
		Log: d.Log, Registry: d.Registry, Now: d.Now, TrustedProxies: proxies})
	// The journal side mounts its routes (ingest, exports, holds) on the
	// API before the UI, which reads the archive for its charts.
	lcfg := logs.Config{DataDir: cfg.DataDir, Academie: cfg.Academie, Retention: cfg.Retention.archive(),
		Database: cfg.Database, DatabaseSchema: cfg.DatabaseSchema}
	if cfg.DatabasePasswordFile != "" && store.Backend(cfg.Database) == "postgres" {
		b, err := os.ReadFile(cfg.DatabasePasswordFile)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("controlplane: database password: %w", err)
		}
		lcfg.DatabasePassword, _, _ = strings.Cut(string(b), "\n")
		lcfg.DatabasePassword = strings.TrimRight(lcfg.DatabasePassword, "\r")
	}
	lg, err := logs.Open(srv, key, lcfg, logs.Deps{Log: d.Log, Registry: d.Registry, Now: d.Now})
	if err != nil {
		st.Close()
		return nil, err
	}
	// The yearly joint review reads the store, the edges' history and the
	// archive; its rollup keeps the blocked requests per day past the
	// archive's purge.
	report.Register(srv, report.Deps{Archive: lg.Archive().Store(), NavigationRetention: cfg.Retention.archive().Navigation,
		LongPoll: cfg.LongPoll, Now: d.Now})
	rollup := &report.Rollup{Store: st, Archive: lg.Archive().Store(), Retention: cfg.Retention.archive().Navigation, Now: d.Now, Log: d.Log}
	if h, ok := st.(store.History); ok {
		rollup.History = h
	}
	// Exports transmitted to the AQSSI: encrypted files on the data
	// directory (a replica serves those it received).
	vault, err := requisition.Open(filepath.Join(cfg.DataDir, "requisitions"), cfg.RequisitionKeep, d.Now)
	if err != nil {
		lg.Close()
		st.Close()
		return nil, err
	}
	h, err := ui.New(ui.Deps{API: srv, Archive: lg.Archive().Store(), SSO: flow, Log: d.Log, Now: d.Now, Requisitions: vault})
	if err != nil {
		lg.Close()
		st.Close()
		return nil, err
	}
	return &ControlPlane{Store: st, Auth: au, Publisher: pub, API: srv, Logs: lg, UI: h, Registry: d.Registry, Rollup: rollup, cfg: cfg, log: d.Log}, nil
}

// OpenStore opens the store the configuration names.
func OpenStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	return store.Open(ctx, cfg.Database, store.Options{DefaultSQLite: filepath.Join(cfg.DataDir, "vigie.db"),
		Readers: cfg.DBReaders, Schema: cfg.DatabaseSchema, PasswordFile: cfg.DatabasePasswordFile, Log: log})
}

// ensureDraft gives a new data directory its first draft (FirstPolicy), so
// the API has a document to edit from the first minute and the first
// publication after a UT1 import already protects pupils.
func ensureDraft(ctx context.Context, st store.Store, academie string, now time.Time) error {
	_, err := st.Draft(ctx)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return publish.ReplaceDraft(ctx, st, FirstPolicy(academie), publish.Actor{Name: "system"}, now)
}

// PublicKey is the key edges pin.
func (cp *ControlPlane) PublicKey() ed25519.PublicKey { return cp.Publisher.PublicKey() }

// Handler is the HTTP handler (API and whatever was mounted on it).
func (cp *ControlPlane) Handler() http.Handler { return cp.UI }

// Serve answers on ln until ctx ends, then shuts down gracefully: held
// long-polls end (edges simply poll again elsewhere or later).
func (cp *ControlPlane) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           cp.UI,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		// Long enough for a long-poll plus a full bundle on a slow link.
		WriteTimeout:   10 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(cp.log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if sh, ok := cp.Store.(store.Shared); ok {
			// Replicas share the database: follow what the others
			// commit, and leave background work to one of them.
			go sh.Watch(runCtx, cp.follow(runCtx))
			go cp.catchUp(runCtx, catchUpEvery)
			go sh.Lead(runCtx, "journal-purge", cp.Logs.Run)
			go sh.Lead(runCtx, "report-rollup", cp.Rollup.Run)
		} else {
			go cp.Logs.Run(runCtx)
			go cp.Rollup.Run(runCtx)
		}
		cp.API.Run(runCtx)
		close(done)
	}()
	var msrv *http.Server
	if cp.cfg.MetricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(cp.Registry, promhttp.HandlerOpts{Registry: cp.Registry}))
		if loopbackAddr(cp.cfg.MetricsListen) {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		}
		msrv = &http.Server{Addr: cp.cfg.MetricsListen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		mln, err := net.Listen("tcp", cp.cfg.MetricsListen)
		if err != nil {
			stop()
			<-done
			return fmt.Errorf("controlplane: metrics: %w", err)
		}
		go msrv.Serve(mln)
	}
	errc := make(chan error, 1)
	go func() {
		if cp.cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cp.cfg.TLSCert, cp.cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		cancel()
		err = nil
	}
	if msrv != nil {
		msrv.Close()
	}
	stop()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// catchUpEvery is how often a replica checks the database for a version
// whose announcement it missed (a NOTIFY lost with its connection before
// the resync, a feed down while reconnecting): one small query, and the
// new version's manifest and changed sections when there is one.
const catchUpEvery = 5 * time.Second

// catchUp refreshes the head every period until ctx ends: the change feed
// is the fast path, this the bound on how late a missed one can be.
func (cp *ControlPlane) catchUp(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := cp.Publisher.Refresh(ctx); err != nil && ctx.Err() == nil {
				cp.log.Warn("controlplane: checking for a newer version", "err", err)
			}
		}
	}
}

// follow applies another replica's committed changes to what this one
// keeps in memory: the head edges wait on, the edge-token cache.
func (cp *ControlPlane) follow(ctx context.Context) func(store.Event) {
	return func(e store.Event) {
		if e.Kind == store.EventResync {
			cp.Auth.ForgetEdges()
		}
		switch e.Kind {
		case store.EventVersion, store.EventResync:
			if err := cp.Publisher.Refresh(ctx); err != nil && ctx.Err() == nil {
				cp.log.Error("controlplane: following another replica's publication", "err", err)
			}
		case store.EventEdge:
			cp.Auth.ForgetEdge(e.Key)
		}
	}
}

// ListenAndServe listens on the configured address and serves.
func (cp *ControlPlane) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", cp.cfg.Listen)
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	return cp.Serve(ctx, ln)
}

// Close releases the store.
func (cp *ControlPlane) Close() error { return errors.Join(cp.Logs.Close(), cp.Store.Close()) }

// Account is a created account with its secrets, shown once.
type Account struct {
	Role     string `json:"role"`
	Login    string `json:"login"`
	Password string `json:"password"`
	Token    string `json:"token,omitempty"`
	UAI      string `json:"uai,omitempty"`
}

// CreateAccount creates an account with a generated password and, when
// withToken, an API token; used by init and the demo. The audit log names
// who did it (actor).
func CreateAccount(ctx context.Context, st store.Store, a *auth.Service, actor, login string, role auth.Role, uai string, withToken bool, now time.Time) (Account, error) {
	pw := auth.GeneratePassword()
	hash, err := auth.HashPassword(pw, auth.DefaultParams)
	if err != nil {
		return Account{}, err
	}
	u := store.User{Login: login, Role: string(role), UAI: uai, PasswordHash: hash, CreatedAt: now, MustChangePassword: true}
	err = st.Update(ctx, func(tx store.Tx) error {
		var err error
		if u.ID, err = tx.CreateUser(ctx, u); err != nil {
			return err
		}
		after, err := json.Marshal(u)
		if err != nil {
			return fmt.Errorf("controlplane: audit of new user %s: %w", login, err)
		}
		return tx.AppendAudit(ctx, &audit.Entry{Time: u.CreatedAt, Actor: actor, Action: "user.create", Target: "user/" + login, After: after})
	})
	if err != nil {
		return Account{}, err
	}
	acc := Account{Role: string(role), Login: login, Password: pw, UAI: uai}
	if withToken {
		id := &auth.Identity{UserID: u.ID, Login: login, Role: role, UAI: uai}
		if acc.Token, _, err = a.CreateAPIToken(ctx, id, "créé avec le compte", 0, ""); err != nil {
			return Account{}, err
		}
	}
	return acc, nil
}

// loopbackAddr reports whether a listen address binds loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (c Config) ssoSecretFile() string {
	if c.SSO == nil {
		return ""
	}
	return c.SSO.ClientSecretFile
}

// Check reads a configuration and everything it names without starting
// anything: the signing key, the TLS pair, the listen addresses, the
// data directory, the database password and SSO client secret files. Each problem names the file and the field.
func Check(path string) error {
	c, err := LoadConfig(path)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, fmt.Errorf("controlplane: config %s: %s: %w", path, field, err))
	}
	if st, err := os.Stat(c.DataDir); err != nil {
		bad("data_dir", err)
	} else if !st.IsDir() {
		bad("data_dir", fmt.Errorf("%s is not a directory", c.DataDir))
	}
	if _, err := keyfile.LoadPrivate(c.Key); err != nil {
		bad("key", fmt.Errorf("%w (vigie controlplane init generates it)", err))
	}
	if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			bad("tls_cert/tls_key", err)
		}
	}
	for _, l := range []struct{ field, addr string }{{"listen", c.Listen}, {"metrics_listen", c.MetricsListen}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			bad(l.field, err)
		}
	}
	if c.LongPoll < 0 {
		bad("long_poll", errors.New("negative"))
	}
	// Secrets read at start: a missing or empty one would stop the
	// service there.
	for _, f := range []struct{ field, path string }{{"database_password_file", c.DatabasePasswordFile}, {"sso.client_secret_file", c.ssoSecretFile()}} {
		if f.path == "" {
			continue
		}
		if b, err := os.ReadFile(f.path); err != nil {
			bad(f.field, err)
		} else if strings.TrimSpace(string(b)) == "" {
			bad(f.field, fmt.Errorf("%s is empty", f.path))
		}
	}
	return errors.Join(errs...)
}
