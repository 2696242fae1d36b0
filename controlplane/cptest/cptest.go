// Package cptest starts a real control plane on loopback for the tests of
// other packages (the edge, the sync agent, the lab): a SQLite file in a
// temporary directory, a generated académie key, the demo policy on the
// embedded sample lists published as serial 1, an RSSI account and one
// registered edge for the demo school. Nothing is mocked.
package cptest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"vigie/controlplane"
	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/demo"
	"vigie/journal/archive"
	"vigie/keyfile"
	"vigie/tstest"
)

// Options tune the control plane.
type Options struct {
	// LongPoll is the poll hold (default 30s; tests often want less).
	LongPoll time.Duration
	// Log receives the control plane's log (default: discarded).
	Log *slog.Logger
	// Database and Schema choose the store (controlplane.Config's
	// database and database_schema; default the SQLite file).
	Database, Schema string
	// DataDir shares a data directory (imported lists, journal archive)
	// between replicas (default: a new temporary directory, with a key
	// and the sample lists).
	DataDir string
}

// CP is a running control plane.
type CP struct {
	tb      testing.TB
	opts    Options
	DataDir string
	// URL is the API's base URL; it stays the same across Restart.
	URL string
	// PublicKeyFile is the académie public key (PEM) edges pin.
	PublicKeyFile string
	RSSIToken     string
	// RSSIPassword is the password of the RSSI account "rssi".
	RSSIPassword string
	// EdgeToken is the token of edge "monnet-1" of the demo school.
	EdgeToken string

	addr   string
	cp     *controlplane.ControlPlane
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts a control plane and stops it when the test ends.
func Start(tb testing.TB, o Options) *CP {
	tb.Helper()
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &CP{tb: tb, opts: o, DataDir: o.DataDir}
	if c.DataDir == "" {
		c.DataDir = tb.TempDir()
	}
	keyPath := filepath.Join(c.DataDir, "academie.key")
	c.PublicKeyFile = keyPath + ".pub"
	if o.DataDir != "" {
		// A replica of a control plane started before: same state.
		return c.Replica()
	}
	if _, err := keyfile.Generate(keyPath); err != nil {
		tb.Fatal(err)
	}
	if _, err := demo.WriteSample(filepath.Join(c.DataDir, "lists")); err != nil {
		tb.Fatal(err)
	}
	c.open()
	ctx := context.Background()
	pol, err := demo.Policy("")
	if err != nil {
		tb.Fatal(err)
	}
	for i := range pol.Sources {
		pol.Sources[i].Path = filepath.Join("lists", pol.Sources[i].Path)
	}
	who := publish.Actor{Name: "cptest"}
	if err := publish.ReplaceDraft(ctx, c.cp.Store, pol, who, time.Now()); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.cp.Publisher.Publish(ctx, who, "version initiale", false); err != nil {
		tb.Fatal(err)
	}
	acc, err := controlplane.CreateAccount(ctx, c.cp.Store, c.cp.Auth, "cptest", "rssi", auth.RSSI, "", true, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	c.RSSIToken, c.RSSIPassword = acc.Token, acc.Password
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.URL = "http://" + c.addr
	c.serve(ln)
	var created struct {
		Token string `json:"token"`
	}
	c.Call("POST", "/api/v1/edges", map[string]string{"id": "monnet-1", "uai": demo.UAI}, &created)
	c.EdgeToken = created.Token
	tb.Cleanup(c.Stop)
	return c
}

// Replica serves the state of an existing data directory and database on a
// new address, as a second replica does (Start with Options.DataDir).
func (c *CP) Replica() *CP {
	c.tb.Helper()
	c.open()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.tb.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.URL = "http://" + c.addr
	c.serve(ln)
	c.tb.Cleanup(c.Stop)
	return c
}

// UseDatabase restarts the control plane on another store (after moving
// its state there).
func (c *CP) UseDatabase(database, schema string) {
	c.tb.Helper()
	c.opts.Database, c.opts.Schema = database, schema
	c.Restart()
}

func (c *CP) open() {
	cp, err := controlplane.Open(context.Background(), controlplane.Config{DataDir: c.DataDir, InsecureCookies: true,
		LongPoll: c.opts.LongPoll, Academie: "Académie de test", Database: c.opts.Database, DatabaseSchema: c.opts.Schema},
		controlplane.Deps{Log: c.opts.Log})
	if err != nil {
		c.tb.Fatal(err)
	}
	c.cp = cp
}

func (c *CP) serve(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go func() {
		defer close(c.done)
		c.cp.Serve(ctx, ln)
	}()
}

// Archive is the control plane's journal archive, for tests that need
// records in it without running an edge.
func (c *CP) Archive() archive.Store { return c.cp.Logs.Archive().Store() }

// PublicKey returns the académie public key.
func (c *CP) PublicKey() ed25519.PublicKey { return c.cp.PublicKey() }

// Stop kills the control plane (held polls end, the port closes).
func (c *CP) Stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
	c.cp.Close()
	c.cancel = nil
}

// Restart starts the control plane again on the same address and data.
func (c *CP) Restart() {
	c.tb.Helper()
	c.Stop()
	c.open()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger a moment
		if ln, err = net.Listen("tcp", c.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.tb.Fatal(err)
	}
	c.serve(ln)
}

// Call makes an API request as the RSSI and decodes the answer into out.
func (c *CP) Call(method, path string, body, out any) {
	c.tb.Helper()
	c.call(c.RSSIToken, method, path, body, out)
}

// ReportStatus posts what edge monnet-1 says after trying a version (the
// serial and hash in force), as its sync agent does.
func (c *CP) ReportStatus(serial uint64, hash string) {
	c.tb.Helper()
	c.call(c.EdgeToken, "POST", "/api/v1/edge/status", map[string]any{"serial": serial, "hash": hash}, nil)
}

// call makes an API request with token and decodes the answer into out;
// an error status fails the test.
func (c *CP) call(token, method, path string, body, out any) {
	c.tb.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.URL+path, rd)
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		c.tb.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.tb.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// Block adds domain to the académie block list and publishes; it returns
// the new serial.
func (c *CP) Block(domain string) uint64 {
	c.tb.Helper()
	c.Call("POST", "/api/v1/lists/academie-bloque/entries", map[string]any{"domains": []string{domain}}, nil)
	var v struct {
		Serial uint64 `json:"serial"`
	}
	c.Call("POST", "/api/v1/publish", map[string]any{"comment": "bloque " + domain}, &v)
	return v.Serial
}

// Bundle returns the signed bundle of a serial.
func (c *CP) Bundle(serial uint64) []byte {
	c.tb.Helper()
	b, err := c.cp.Publisher.Bundle(context.Background(), serial)
	if err != nil {
		c.tb.Fatal(err)
	}
	return b.Raw
}

// EdgeStatus returns what the control plane knows of an edge.
func (c *CP) EdgeStatus(id string) map[string]any {
	var out map[string]any
	c.Call("GET", "/api/v1/edges/"+id, nil, &out)
	return out
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	tstest.Eventually(tb, timeout, cond, "waiting for %s", what)
}
