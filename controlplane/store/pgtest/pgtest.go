// Package pgtest starts a throwaway PostgreSQL cluster for tests: Debian's
// initdb and pg_ctl in a temporary directory, run as the postgres user when
// the test runs as root (PostgreSQL refuses to run as root), listening only
// on a Unix socket inside that directory, stopped and removed afterwards.
// Never a shared system instance.
//
// A test without PostgreSQL skips, except under CI (the CI environment
// variable set), where it fails: CI installs the postgresql package.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"vigie/tstest"
)

// Cluster is one running throwaway cluster.
type Cluster struct {
	// Dir holds the data directory and the socket.
	Dir    string
	bin    string
	socket string
	cred   *syscall.Credential
	mu     sync.Mutex
	n      int
}

// Bin finds the directory of Debian's PostgreSQL programs (the newest
// version installed), or "" when there is none.
func Bin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// need skips the test, or fails it under CI.
func need(t testing.TB, why string) {
	t.Helper()
	if tstest.InCI() {
		t.Fatalf("pgtest: %s (CI installs the postgresql package)", why)
	}
	t.Skipf("pgtest: %s", why)
}

// Start starts a cluster for t and stops and removes it when t ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := start()
	if err != nil {
		if c == nil {
			need(t, err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns one cluster for the whole test binary, started on first
// use: initdb costs seconds, a database costs milliseconds. The package's
// TestMain must call Main so that it is stopped when the tests end.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.err = start() })
	if shared.err != nil {
		if shared.c == nil {
			need(t, shared.err.Error())
		}
		t.Fatal(shared.err)
	}
	return shared.c
}

// Main runs the tests and then stops the shared cluster, if one started:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared.c != nil {
		shared.c.Stop()
	}
	return code
}

// start returns (nil, err) when PostgreSQL is not installed, and (c, err)
// when it is installed but failed.
func start() (*Cluster, error) {
	bin := Bin()
	if bin == "" {
		return nil, fmt.Errorf("initdb not found (install postgresql)")
	}
	dir, err := os.MkdirTemp("", "vigie-pg-")
	if err != nil {
		return &Cluster{}, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{Dir: dir, bin: bin, socket: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user to run the cluster as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// The temporary directory's parents must let postgres through:
		// os.TempDir is world-traversable, the directory itself becomes
		// postgres's.
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return &Cluster{}, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync",
		"--encoding=UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return &Cluster{}, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	// Only a Unix socket in our directory: no port to collide with another
	// test, nothing reachable from outside. fsync off: a test cluster never
	// outlives a crash.
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB", dir)
	if out, err := c.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return &Cluster{}, fmt.Errorf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return c, nil
}

func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// Stop stops the cluster at once and removes its directory.
func (c *Cluster) Stop() {
	if c == nil || c.Dir == "" {
		return
	}
	c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.Dir)
}

// URL is a connection URL for database db as the superuser postgres, over
// the cluster's socket.
func (c *Cluster) URL(db string) string {
	q := url.Values{"host": {c.socket}, "user": {"postgres"}, "sslmode": {"disable"}}
	return "postgres:///" + db + "?" + q.Encode()
}

// Database creates an empty database and returns its URL; the database
// goes with the cluster.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	c.mu.Lock()
	c.n++
	name := fmt.Sprintf("t%d_%s", c.n, sanitize(t.Name()))
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return c.URL(name)
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9') {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}
