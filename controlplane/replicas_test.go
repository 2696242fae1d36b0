package controlplane_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigie/controlplane"
	"vigie/controlplane/cptest"
	"vigie/controlplane/publish"
	"vigie/controlplane/store/pgtest"
	"vigie/controlplane/ut1import"
	"vigie/proxy/policysync"
	"vigie/rules"
	"vigie/tstest"
)

// replicaEnv names the configuration a re-executed test binary serves: the
// replicas are real processes, so that kill -9 is real.
const replicaEnv = "VIGIE_TEST_REPLICA_CONFIG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(replicaEnv); cfg != "" {
		os.Exit(serveReplica(cfg))
	}
	// The login flood benchmark's control plane and flooding clients.
	if dir := os.Getenv(floodChildEnv); dir != "" {
		os.Exit(floodChild(dir))
	}
	if base := os.Getenv(flooderEnv); base != "" {
		os.Exit(flooder(base))
	}
	os.Exit(pgtest.Main(m))
}

func serveReplica(path string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := controlplane.LoadConfig(path)
	if err != nil {
		log.Error("replica", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cp, err := controlplane.Open(ctx, cfg, controlplane.Deps{Log: log})
	if err != nil {
		log.Error("replica", "err", err)
		return 1
	}
	defer cp.Close()
	if err := cp.ListenAndServe(ctx); err != nil {
		log.Error("replica", "err", err)
		return 1
	}
	return 0
}

// replica is one control-plane process.
type replica struct {
	name, URL, logPath string
	cmd                *exec.Cmd
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startReplica(t *testing.T, name, dataDir, database string) *replica {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\ndatabase: %q\ndatabase_schema: ac_test\ninsecure_cookies: true\nlong_poll: 5s\ntrusted_proxies: [127.0.0.1]\n",
		addr, dataDir, database)
	cfgPath := filepath.Join(dir, "controlplane.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, URL: "http://" + addr, logPath: filepath.Join(dir, "replica.log")}
	logf, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(os.Args[0], "-test.run=^$")
	r.cmd.Env = append(os.Environ(), replicaEnv+"="+cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(r.logPath)
			t.Logf("replica %s log:\n%s", name, b)
		}
	})
	cptest.Eventually(t, 30*time.Second, "replica "+name+" serving", func() bool {
		resp, err := http.Get(r.URL + "/api/v1/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return r
}

func (r *replica) log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

func (r *replica) leads() bool {
	return strings.Count(r.log(), "this replica leads the background work") >
		strings.Count(r.log(), "this replica no longer leads")
}

// startHAProxy puts Debian's haproxy in front of the replicas, configured
// as docs/operator-guide.md says.
func startHAProxy(t *testing.T, bin string, rs ...*replica) string {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	var servers strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&servers, "  server %s %s check\n", r.name, strings.TrimPrefix(r.URL, "http://"))
	}
	cfg := fmt.Sprintf(`global
  maxconn 2000
defaults
  mode http
  option redispatch
  retries 3
  timeout connect 1s
  timeout client 2m
  timeout server 2m
  timeout http-request 10s
frontend vigie
  bind %s
  option forwardfor
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /api/v1/health
  http-check expect status 200
  default-server inter 200ms fall 2 rise 1
%s`, addr, servers.String())
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy:\n%s", out.String())
		}
	})
	front := "http://" + addr
	cptest.Eventually(t, 10*time.Second, "haproxy serving", func() bool {
		resp, err := http.Get(front + "/api/v1/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return front
}

// edge applies bundles as an edge does (verify, decode) through the real
// sync agent.
type edge struct {
	mu     sync.Mutex
	pub    ed25519.PublicKey
	serial uint64
	hash   string
	agent  *policysync.Agent
}

func (e *edge) apply(b []byte) error {
	_, hd, err := rules.DecodeBundle(b, e.pub)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.serial, e.hash = hd.Serial, hd.HashHex()
	e.mu.Unlock()
	return nil
}

func (e *edge) current() (uint64, string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.serial, e.hash, e.serial == 0
}

func (e *edge) Serial() uint64 { s, _, _ := e.current(); return s }

func startEdge(t *testing.T, pub ed25519.PublicKey, token string, urls ...string) *edge {
	t.Helper()
	e := &edge{pub: pub}
	a, err := policysync.New(policysync.Config{URL: urls[0], URLs: urls[1:], Token: token, PublicKey: pub,
		Apply: e.apply, Current: e.current, Hold: 5 * time.Second, Spread: -1,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// client calls the API with a bearer token or a session cookie.
type client struct {
	t     *testing.T
	http  *http.Client
	token string
	csrf  string
}

func (c *client) do(method, url string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(b, out)
	}
	return resp.StatusCode, nil
}

func (c *client) must(method, url string, body, out any) {
	c.t.Helper()
	if _, err := c.do(method, url, body, out); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) publish(base, comment string) uint64 {
	c.t.Helper()
	var v struct {
		Serial uint64 `json:"serial"`
	}
	c.must("POST", base+"/api/v1/publish", map[string]any{"comment": comment, "force": true}, &v)
	return v.Serial
}

type verified struct {
	Entries uint64 `json:"entries"`
	HeadSeq uint64 `json:"head_seq"`
	Problem any    `json:"problem"`
}

// TestReplicasBehindHAProxy runs two control-plane processes on one
// PostgreSQL behind Debian's haproxy, with edges syncing through the
// front and directly, and a browser session; then kills one replica with
// SIGKILL.
func TestReplicasBehindHAProxy(t *testing.T) {
	haproxy := tstest.RequireCommand(t, "haproxy", "haproxy")
	database := pgtest.Shared(t).Database(t)
	// The first control plane initialises the schema (draft, serial 1,
	// the RSSI account, edge monnet-1), then gives way to the replicas.
	seed := cptest.Start(t, cptest.Options{Database: database, Schema: "ac_test", LongPoll: 5 * time.Second})
	pub := seed.PublicKey()
	seed.Stop()
	rs := []*replica{startReplica(t, "a", seed.DataDir, database), startReplica(t, "b", seed.DataDir, database)}
	front := startHAProxy(t, haproxy, rs...)
	rssi := &client{t: t, http: &http.Client{Timeout: 30 * time.Second}, token: seed.RSSIToken}

	edgeToken := func(id string) string {
		var created struct {
			Token string `json:"token"`
		}
		rssi.must("POST", front+"/api/v1/edges", map[string]string{"id": id, "uai": "0671234X"}, &created)
		return created.Token
	}
	onB := startEdge(t, pub, seed.EdgeToken, rs[1].URL)
	viaFront := startEdge(t, pub, edgeToken("monnet-2"), front)
	both := startEdge(t, pub, edgeToken("monnet-3"), rs[0].URL, rs[1].URL)
	edges := []*edge{onB, viaFront, both}
	cptest.Eventually(t, 20*time.Second, "every edge on serial 1", func() bool {
		for _, e := range edges {
			if e.Serial() != 1 {
				return false
			}
		}
		return true
	})

	t.Run("publish on one replica wakes an edge polling the other", func(t *testing.T) {
		// Let onB's poll be parked on replica b.
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		serial := rssi.publish(rs[0].URL, "publiée sur a")
		cptest.Eventually(t, 2*time.Second, "the edge on b applying the version published on a", func() bool { return onB.Serial() == serial })
		t.Logf("published on replica a, applied by an edge polling replica b after %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("two concurrent publishes get two serials", func(t *testing.T) {
		var wg sync.WaitGroup
		serials := make([]uint64, 2)
		for i, r := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				serials[i] = rssi.publish(r.URL, "publication simultanée "+r.name)
			}()
		}
		wg.Wait()
		if serials[0] == serials[1] || serials[0] == 0 || serials[1] == 0 {
			t.Fatalf("concurrent publishes got serials %v", serials)
		}
		want := max(serials[0], serials[1])
		cptest.Eventually(t, 5*time.Second, "every edge on the last serial", func() bool {
			for _, e := range edges {
				if e.Serial() != want {
					return false
				}
			}
			return true
		})
	})

	t.Run("revocations reach the other replica at once", func(t *testing.T) {
		token := edgeToken("revoque-1")
		poll := func(base string) int {
			req, _ := http.NewRequest("GET", base+"/api/v1/edge/bundle?after=1000000&wait=0", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		// Replica b has seen (and cached) the token.
		if code := poll(rs[1].URL); code == http.StatusUnauthorized {
			t.Fatalf("a new edge token refused: %d", code)
		}
		rssi.must("DELETE", rs[0].URL+"/api/v1/edges/revoque-1", nil, nil)
		start := time.Now()
		cptest.Eventually(t, time.Second, "replica b refusing the deleted edge's token", func() bool {
			return poll(rs[1].URL) == http.StatusUnauthorized
		})
		t.Logf("edge deleted on a, its token refused by b after %s", time.Since(start).Round(time.Millisecond))

		// A session closed on one replica is closed on the other.
		body, _ := json.Marshal(map[string]string{"login": "rssi", "password": seed.RSSIPassword})
		resp, err := http.Post(rs[0].URL+"/api/v1/session", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			CSRF string `json:"csrf_token"`
		}
		json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "vigie_session" {
				cookie = c
			}
		}
		if cookie == nil {
			t.Fatalf("login: %d, no session cookie", resp.StatusCode)
		}
		with := func(method, base string) int {
			req, _ := http.NewRequest(method, base+"/api/v1/"+map[string]string{"GET": "me", "DELETE": "session"}[method], nil)
			req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
			req.Header.Set("X-CSRF-Token", s.CSRF)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := with("GET", rs[1].URL); code != 200 {
			t.Fatalf("the session opened on a, on b: %d", code)
		}
		if code := with("DELETE", rs[0].URL); code != 204 {
			t.Fatalf("logout on a: %d", code)
		}
		cptest.Eventually(t, time.Second, "replica b refusing the closed session", func() bool {
			return with("GET", rs[1].URL) == http.StatusUnauthorized
		})
	})

	// A browser signs in through the front.
	jar, _ := cookiejar.New(nil)
	browser := &client{t: t, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	var sess struct {
		CSRF string `json:"csrf_token"`
	}
	browser.must("POST", front+"/api/v1/session", map[string]string{"login": "rssi", "password": seed.RSSIPassword}, &sess)
	browser.csrf = sess.CSRF
	// The seed's password was generated: it must be changed first, which
	// gives the browser a fresh session (the old one is revoked).
	browser.must("POST", front+"/api/v1/me/password", map[string]string{"current": seed.RSSIPassword, "new": "une phrase de passe de l’RSSI"}, &sess)
	browser.csrf = sess.CSRF
	var before verified
	browser.must("GET", front+"/api/v1/audit/verify", nil, &before)

	t.Run("kill -9 the leading replica", func(t *testing.T) {
		var leader, other *replica
		cptest.Eventually(t, 10*time.Second, "one replica leading the purge", func() bool {
			switch {
			case rs[0].leads() && !rs[1].leads():
				leader, other = rs[0], rs[1]
			case rs[1].leads() && !rs[0].leads():
				leader, other = rs[1], rs[0]
			default:
				return false
			}
			return true
		})
		if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		leader.cmd.Wait()
		start := time.Now()
		cptest.Eventually(t, 10*time.Second, "the other replica taking the purge over", other.leads)
		t.Logf("purge leadership moved to replica %s %s after the kill", other.name, time.Since(start).Round(time.Millisecond))

		// The session goes on through the front: a change and a
		// publication, made with the cookie and its CSRF token.
		var last uint64
		cptest.Eventually(t, 10*time.Second, "the session working through the front", func() bool {
			_, err := browser.do("POST", front+"/api/v1/lists/academie-bloque/entries",
				map[string]any{"domains": []string{"apres-panne.example"}}, nil)
			return err == nil
		})
		var v struct {
			Serial uint64 `json:"serial"`
		}
		browser.must("POST", front+"/api/v1/publish", map[string]any{"comment": "après la panne"}, &v)
		last = v.Serial
		cptest.Eventually(t, 10*time.Second, "every edge on the serial published after the kill", func() bool {
			for _, e := range edges {
				if e.Serial() != last {
					return false
				}
			}
			return true
		})
		// Nothing was lost: the chain verifies and grew by this session's
		// entries; every serial is there.
		var after verified
		browser.must("GET", front+"/api/v1/audit/verify", nil, &after)
		if after.Problem != nil || after.Entries < before.Entries+2 {
			t.Fatalf("audit after the kill: %+v, before %+v", after, before)
		}
		var versions struct {
			Items []struct {
				Serial uint64 `json:"serial"`
			} `json:"items"`
		}
		browser.must("GET", front+"/api/v1/versions", nil, &versions)
		if len(versions.Items) == 0 || versions.Items[0].Serial != last || uint64(len(versions.Items)) != last {
			t.Fatalf("versions after the kill: %+v, want 1..%d", versions.Items, last)
		}
	})
}

// TestImportedListsReachEveryReplica imports UT1 on one replica and
// publishes on another that shares nothing with it but the database.
func TestImportedListsReachEveryReplica(t *testing.T) {
	database := pgtest.Shared(t).Database(t)
	a := cptest.Start(t, cptest.Options{Database: database, Schema: "ac_test", LongPoll: time.Second})
	dirB := t.TempDir()
	for _, f := range []string{"academie.key", "lists/adult-top1m/domains"} {
		b, err := os.ReadFile(filepath.Join(a.DataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dirB, f)), 0o750)
		if err := os.WriteFile(filepath.Join(dirB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := cptest.Start(t, cptest.Options{Database: database, Schema: "ac_test", LongPoll: time.Second, DataDir: dirB})
	b.RSSIToken = a.RSSIToken

	ctx := context.Background()
	res, err := ut1import.Import(ctx, ut1import.Options{Source: filepath.Join("..", "testdata", "blocklists", "ut1"), DataDir: a.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := controlplane.OpenStore(ctx, controlplane.Config{Database: database, DatabaseSchema: "ac_test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := ut1import.UpdateDraft(ctx, st, res, publish.Actor{Name: "test"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dirB, res.Dir)); err == nil {
		t.Fatal("the tree is on replica b's disk before anything asked for it")
	}
	serial := b.Block("liste-importee.example")
	if serial != 2 {
		t.Fatalf("published serial %d on b", serial)
	}
	if _, err := os.Stat(filepath.Join(dirB, res.Dir, "adult", "urls")); err != nil {
		ents, _ := os.ReadDir(filepath.Join(dirB, res.Dir))
		all, _ := os.ReadDir(filepath.Join(a.DataDir, res.Dir))
		t.Fatalf("replica b compiled without the imported tree: %v (%d entries; %d on a)", err, len(ents), len(all))
	}
	// The sample tree of serial 1 is a small excerpt of the imported one.
	var v1, v2 struct {
		Domains int `json:"domains"`
	}
	b.Call("GET", "/api/v1/versions/1", nil, &v1)
	b.Call("GET", fmt.Sprintf("/api/v1/versions/%d", serial), nil, &v2)
	if v2.Domains <= 10*v1.Domains {
		t.Fatalf("version %d lists %d domains, version 1 (sample lists) %d: the import was not compiled", serial, v2.Domains, v1.Domains)
	}
}
