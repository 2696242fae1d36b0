package ui

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/logs"
	"vigie/controlplane/publish"
	"vigie/controlplane/report"
	"vigie/controlplane/requisition"
	"vigie/controlplane/store"
	"vigie/demo"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/rules/policy"
)

// The real lists the tests compile, by relative path from this package:
// their absence is a broken checkout, reported as a failure.
const blocklists = "../../testdata/blocklists"

const (
	monnet = demo.UAI   // Collège Jean Monnet, the demo school
	hugo   = "0680001A" // another school, out of the chef's reach
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is the control plane's time, movable by tests (session expiry).
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// env is a real control plane on a loopback HTTP server: a SQLite store
// in a temporary directory, the demo policy on the real UT1 lists plus a
// second school, one account per role, a journal archive with a day of
// generated traffic, and the UI in front of the API exactly as
// controlplane.go mounts it.
type env struct {
	t       testing.TB
	dir     string
	st      *store.SQLite
	pub     *publish.Publisher
	key     ed25519.PrivateKey
	api     *api.Server
	ui      *Handler
	srv     *httptest.Server
	logs    *logs.Service
	arch    archive.Store
	clock   *clock
	vault   *requisition.Vault
	passwd  map[string]string
	edgeTok map[string]string
}

type envOptions struct {
	// noArchive leaves the journal archive out.
	noArchive bool
}

// fixture is the state every env starts from: the demo policy compiled
// on the real lists and published as version 1, the accounts, the edges
// and a day of journal. Compiling UT1 takes seconds, so it is built once
// per test binary and each env opens a copy of its database files.
type fixture struct {
	dir     string
	key     ed25519.PrivateKey
	passwd  map[string]string
	edgeTok map[string]string
	err     error
}

var (
	fixtureOnce sync.Once
	theFixture  fixture
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theFixture.dir != "" {
		os.RemoveAll(theFixture.dir)
	}
	os.Exit(code)
}

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() { theFixture.err = theFixture.build() })
	if theFixture.err != nil {
		t.Fatalf("test fixture: %v", theFixture.err)
	}
	return &theFixture
}

func (f *fixture) build() (err error) {
	lists, err := filepath.Abs(blocklists)
	if err != nil {
		return err
	}
	for _, p := range []string{"ut1", "adult-top1m/domains"} {
		if _, err := os.Stat(filepath.Join(lists, p)); err != nil {
			return fmt.Errorf("the real blocklists are missing (%v): the tests need %s", err, lists)
		}
	}
	if f.dir, err = os.MkdirTemp("", "vigie-ui-fixture-"); err != nil {
		return err
	}
	f.passwd, f.edgeTok = map[string]string{}, map[string]string{}
	_, f.key, _ = ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	st, err := store.OpenSQLite(filepath.Join(f.dir, "vigie.db"), 4)
	if err != nil {
		return err
	}
	defer st.Close()
	pol, err := demo.Policy(lists)
	if err != nil {
		return err
	}
	for i := range pol.Sources {
		pol.Sources[i].Path = filepath.Join(lists, pol.Sources[i].Path)
	}
	pol.Schools = append(pol.Schools, policy.School{UAI: hugo, Name: "Collège Victor Hugo", Commune: "Colmar", Departement: "68",
		Contact: "Secrétariat, 03 89 00 00 00",
		Zones: []policy.Zone{
			{Name: "pedagogique", CIDRs: []string{"10.50.0.0/24"}, Profile: "eleves"},
			{Name: "administratif", CIDRs: []string{"10.51.0.0/24"}, Profile: "personnels"},
		}})
	pol.Lists = append(pol.Lists, policy.List{ID: "hugo-autorise", Category: "etablissement_autorise", School: hugo,
		Comment: "Projet théâtre", Domains: []string{"theatre.demo.ac-demo.fr"}})
	if err := publish.ReplaceDraft(ctx, st, pol, publish.Actor{Name: "installation"}, time.Now()); err != nil {
		return err
	}
	pub, err := publish.New(ctx, st, publish.Config{DataDir: f.dir, Key: f.key, Log: quiet})
	if err != nil {
		return err
	}
	if _, err := pub.Publish(ctx, publish.Actor{Name: "rssi"}, "Politique de rentrée", false); err != nil {
		return err
	}
	for _, a := range []struct {
		login, name string
		role        auth.Role
		uai         string
	}{
		{"rssi", "Claire Martin", auth.RSSI, ""},
		{"chef", "Paul Durand", auth.Chef, monnet},
		{"chef.hugo", "Anne Petit", auth.Chef, hugo},
		{"tech", "Karim Benali", auth.Technicien, ""},
		{"audit", "Sophie Bernard", auth.Auditeur, ""},
		{"aqssi", "Luc Moreau", auth.AQSSI, ""},
	} {
		pw := "mot de passe de " + a.login
		h, _ := auth.HashPassword(pw, auth.Params{Memory: 64, Time: 1, Threads: 1})
		err := st.Update(ctx, func(tx store.Tx) error {
			_, err := tx.CreateUser(ctx, store.User{Login: a.login, Name: a.name, Role: string(a.role), UAI: a.uai, PasswordHash: h, CreatedAt: time.Now()})
			return err
		})
		if err != nil {
			return err
		}
		f.passwd[a.login] = pw
	}
	for _, ed := range []struct{ id, uai, name string }{{"0671234x-1", monnet, "Passerelle du collège"}, {"0680001a-1", hugo, ""}} {
		tok, hash := auth.NewToken(auth.EdgeTokenPrefix)
		err := st.Update(ctx, func(tx store.Tx) error {
			return tx.CreateEdge(ctx, store.Edge{ID: ed.id, UAI: ed.uai, Name: ed.name, TokenHash: hash, CreatedAt: time.Now()})
		})
		if err != nil {
			return err
		}
		f.edgeTok[ed.id] = tok
	}
	arch, err := archive.OpenSQLite(filepath.Join(f.dir, "journal.db"))
	if err != nil {
		return err
	}
	defer arch.Close()
	if err := seedArchive(arch, monnet, 1, 6000); err != nil {
		return err
	}
	return seedArchive(arch, hugo, 2, 3000)
}

func newEnv(t testing.TB, opt envOptions) *env {
	t.Helper()
	f := getFixture(t)
	e := &env{t: t, dir: t.TempDir(), clock: &clock{}, key: f.key, passwd: f.passwd, edgeTok: f.edgeTok}
	for _, name := range []string{"vigie.db", "vigie.db-wal", "journal.db", "journal.db-wal"} {
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if os.IsNotExist(err) && strings.HasSuffix(name, "-wal") {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	var err error
	if e.st, err = store.OpenSQLite(filepath.Join(e.dir, "vigie.db"), 4); err != nil {
		t.Fatal(err)
	}
	if e.pub, err = publish.New(ctx, e.st, publish.Config{DataDir: e.dir, Key: e.key, Log: quiet, Now: e.clock.now}); err != nil {
		t.Fatal(err)
	}
	au := auth.New(e.st, nil, auth.Config{}, e.clock.now)
	e.api = api.New(e.st, au, e.pub, api.Config{DataDir: e.dir, Log: quiet, Now: e.clock.now,
		LongPoll: 2 * time.Second, StatusFlush: 50 * time.Millisecond})
	vault, err := requisition.Open(filepath.Join(e.dir, "requisitions"), 0, e.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	e.vault = vault
	deps := Deps{API: e.api, Log: quiet, Now: e.clock.now, Requisitions: vault}
	if !opt.noArchive {
		// The journal side of the control plane, as controlplane.go
		// mounts it: its routes (exports, holds) join the API's.
		if e.logs, err = logs.Open(e.api, e.key, logs.Config{DataDir: e.dir, Academie: "Académie de Strasbourg (démonstration)"},
			logs.Deps{Log: quiet, Now: e.clock.now}); err != nil {
			t.Fatal(err)
		}
		e.arch = e.logs.Archive().Store()
		deps.Archive = e.arch
	}
	report.Register(e.api, report.Deps{Archive: e.arch, LongPoll: 2 * time.Second, Now: e.clock.now})
	if e.ui, err = New(deps); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.api.Run(runCtx); close(done) }()
	e.srv = httptest.NewServer(e.ui)
	t.Cleanup(func() {
		e.srv.Close()
		cancel()
		<-done
		if e.logs != nil {
			e.logs.Close()
		}
		e.st.Close()
	})
	return e
}

// seedArchive stores n navigation records of school uai spread over the
// last day, as an edge would have shipped them.
func seedArchive(arch archive.Store, uai string, seed uint64, n int) error {
	ctx := context.Background()
	var id journal.ChainID
	copy(id[:], uai+"-chain-navig")
	c, _, err := arch.Chain(ctx, archive.ChainKey{UAI: uai, Stream: journal.Navigation, ID: id}, true)
	if err != nil {
		return err
	}
	start := time.Now().Add(-23 * time.Hour)
	step := 23 * time.Hour / time.Duration(n)
	g := journaltest.New(seed, uai, start)
	prev := journal.Genesis(uai, journal.Navigation, id)
	recs := make([]archive.Stored, 0, n)
	for i := range n {
		r := g.Next(journal.Navigation)
		r.Time = start.Add(time.Duration(i) * step)
		journal.Canonicalize(&r)
		p := journal.AppendRecord(nil, &r)
		seq := uint64(i + 1)
		link := journal.Link(prev, seq, p)
		recs = append(recs, archive.Stored{Seq: seq, Time: r.Time, Client: r.Client.Addr(), Host: r.Host, Link: link, Payload: p})
		prev = link
	}
	_, err = arch.Put(ctx, c, recs, archive.Gap{First: 1, Last: uint64(n)})
	return err
}

// client is a browser-like HTTP client: cookies, no redirect following,
// and the CSRF token of the last page read.
type client struct {
	e    *env
	hc   *http.Client
	csrf string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// login signs in through the login form and fails the test otherwise.
func (e *env) login(login string) *client {
	e.t.Helper()
	c := e.client()
	code, _, hd := c.post("/connexion", url.Values{"login": {login}, "password": {e.passwd[login]}})
	if code != http.StatusSeeOther || hd.Get("Location") != "/" {
		e.t.Fatalf("login %s: status %d, location %q", login, code, hd.Get("Location"))
	}
	c.get("/")
	return c
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (c *client) get(path string) (int, string, http.Header) {
	c.e.t.Helper()
	resp, err := c.hc.Get(c.e.srv.URL + path)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, string(b), resp.Header
}

// post sends a form with the session's CSRF token (unless the form has
// one already).
func (c *client) post(path string, form url.Values) (int, string, http.Header) {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok && c.csrf != "" {
		form.Set("csrf_token", c.csrf)
	}
	resp, err := c.hc.Post(c.e.srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}
