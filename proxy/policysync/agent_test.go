package policysync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane/cptest"
	"vigie/rules"
	"vigie/rules/bundle"
)

// holder plays the edge: it applies bundles by decoding them fully, as the
// edge's Apply does, and remembers what is in force.
type holder struct {
	mu     sync.Mutex
	pub    ed25519.PublicKey
	rs     *rules.Ruleset
	serial uint64
	hash   string
	fail   error
}

func (h *holder) apply(b []byte) error {
	if h.fail != nil {
		return h.fail
	}
	rs, hd, err := rules.DecodeBundle(b, h.pub)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.rs, h.serial, h.hash = rs, hd.Serial, hd.HashHex()
	h.mu.Unlock()
	return nil
}

func (h *holder) current() (uint64, string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.serial, h.hash, h.serial == 0
}

func (h *holder) blocks(host string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rs == nil {
		return false
	}
	id, _ := h.rs.Profile("eleves")
	return h.rs.Decide(id, rules.Query{Host: host, Time: time.Now()}).Action == rules.Block
}

func startAgent(t *testing.T, cp *cptest.CP, h *holder, mod func(*Config)) *Agent {
	t.Helper()
	cfg := Config{URL: cp.URL, Token: cp.EdgeToken, PublicKey: cp.PublicKey(), Apply: h.apply, Current: h.current,
		Hold: 5 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func TestDeltaSync(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	first := cp.Bundle(1)
	h := &holder{pub: cp.PublicKey()}
	if err := h.apply(first); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	a := startAgent(t, cp, h, func(c *Config) {
		c.Initial = first
		c.CacheDir = filepath.Join(t.TempDir(), "sections")
		c.Log = slog.New(slog.NewTextHandler(logs, nil))
	})
	cptest.Eventually(t, 5*time.Second, "the agent's first poll", func() bool {
		return cp.EdgeStatus("monnet-1")["applied_serial"].(float64) == 1
	})
	before := a.Status().Bytes
	serial := cp.Block("delta.example")
	cptest.Eventually(t, 10*time.Second, "serial 2 applied", func() bool { s, _, _ := h.current(); return s == serial })
	if !h.blocks("www.delta.example") {
		t.Fatal("the applied policy does not block the new domain")
	}
	got := a.Status().Bytes - before
	full := int64(len(cp.Bundle(serial)))
	t.Logf("one-domain change: %d bytes received for a %d-byte bundle (%.2f %%)", got, full, 100*float64(got)/float64(full))
	if got*10 > full {
		t.Fatalf("delta sync moved %d bytes of a %d-byte bundle", got, full)
	}
	// The log names what this update received, not a running total.
	want := fmt.Sprintf("serial=%d hash=", serial)
	line := ""
	cptest.Eventually(t, 5*time.Second, "the log of serial 2", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "policy received") && strings.Contains(l, want) {
				line = l
			}
		}
		return line != ""
	})
	if !strings.Contains(line, fmt.Sprintf(" bytes=%d ", got)) || !strings.Contains(line, fmt.Sprintf("bundle_bytes=%d", full)) {
		t.Fatalf("log line %q, want bytes=%d bundle_bytes=%d", line, got, full)
	}
	cptest.Eventually(t, 5*time.Second, "the report of serial 2", func() bool {
		st := cp.EdgeStatus("monnet-1")
		return st["applied_serial"].(float64) == float64(serial) && st["up_to_date"] == true
	})
	// Fetched sections are dropped from the cache once applied.
	if ents, _ := os.ReadDir(filepath.Join(a.cfg.CacheDir)); len(ents) != 0 {
		t.Fatalf("%d sections left in the cache", len(ents))
	}
}

func TestFirstSyncFromNothing(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	for _, full := range []bool{false, true} {
		h := &holder{pub: cp.PublicKey()}
		startAgent(t, cp, h, func(c *Config) { c.Full = full })
		cptest.Eventually(t, 10*time.Second, "serial 1 from nothing", func() bool { s, _, _ := h.current(); return s == 1 })
	}
}

func TestWrongKeyIsRefusedAndReported(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprint("delta=", delta), func(t *testing.T) { testWrongKey(t, delta) })
	}
}

func testWrongKey(t *testing.T, delta bool) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	h := &holder{pub: other}
	a := startAgent(t, cp, h, func(c *Config) {
		c.PublicKey = other
		if delta {
			// It holds serial 1 already and is offered serial 2's manifest.
			c.Initial = cp.Bundle(1)
			c.Current = func() (uint64, string, bool) { return 1, "", false }
			cp.Block("autre-cle.example")
		}
	})
	cptest.Eventually(t, 10*time.Second, "the refusal reported", func() bool {
		e, _ := cp.EdgeStatus("monnet-1")["last_error"].(string)
		return strings.Contains(e, "signature")
	})
	if s, _, _ := h.current(); s != 0 {
		t.Fatalf("a bundle signed by another key was applied (serial %d)", s)
	}
	if !strings.Contains(a.Status().LastError, "signature") {
		t.Fatalf("agent status error %q", a.Status().LastError)
	}
}

func TestRejectedApplyWaitsForNewer(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	first := cp.Bundle(1)
	h := &holder{pub: cp.PublicKey()}
	h.apply(first)
	h.fail = errFirewall
	reg := prometheus.NewRegistry()
	polls := watchPolls(t, cp.URL)
	startAgent(t, cp, h, func(c *Config) { c.URL, c.Initial, c.Registry = polls.url, first, reg })
	refused := cp.Block("refuse.example")
	cptest.Eventually(t, 10*time.Second, "the failed apply reported", func() bool {
		e, _ := cp.EdgeStatus("monnet-1")["last_error"].(string)
		return strings.Contains(e, "nftables")
	})
	if s, _, _ := h.current(); s != 1 {
		t.Fatalf("serial %d in force after a failed apply", s)
	}
	// The edge now waits for a newer version instead of retrying in a loop:
	// its next poll asks for a version after the refused one, and the
	// control plane holds it until one is published, so by the time that
	// poll arrives every fetch of the refused version has been served.
	cptest.Eventually(t, 10*time.Second, "a poll for a version after the refused one", func() bool {
		return polls.asked(refused)
	})
	if n := polls.served(refused); n != 1 {
		t.Fatalf("the refused bundle was served %d times, want once", n)
	}
	if got := metric(t, reg, "vigie_sync_refused_total", "reason", "apply"); got != 1 {
		t.Fatalf("vigie_sync_refused_total{reason=\"apply\"} = %v, want 1", got)
	}
	h.fail = nil
	serial := cp.Block("accepte.example")
	cptest.Eventually(t, 10*time.Second, "the next version applied", func() bool { s, _, _ := h.current(); return s == serial })
}

var errFirewall = errorString("nftables: batch refused")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestControlPlaneDownThenBack(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	first := cp.Bundle(1)
	h := &holder{pub: cp.PublicKey()}
	h.apply(first)
	a := startAgent(t, cp, h, func(c *Config) { c.Initial = first })
	cptest.Eventually(t, 5*time.Second, "a poll held", func() bool { return cp.EdgeStatus("monnet-1")["online"] == true })
	cp.Stop()
	cptest.Eventually(t, 5*time.Second, "the agent noticing", func() bool { return a.Status().LastError != "" })
	if !h.blocks("www.pornhub.com") {
		t.Fatal("the policy in force was lost while the control plane is down")
	}
	cp.Restart()
	serial := cp.Block("retour.example")
	cptest.Eventually(t, 10*time.Second, "the version published after the restart", func() bool { s, _, _ := h.current(); return s == serial })
}

func TestBackoff(t *testing.T) {
	a := &Agent{cfg: Config{MinBackoff: time.Second, MaxBackoff: time.Minute}}
	for _, j := range []float64{0, 0.999} {
		a.cfg.Jitter = func() float64 { return j }
		var prev time.Duration
		for n := 1; n <= 12; n++ {
			d := a.backoff(n)
			step := min(time.Second<<(n-1), time.Minute)
			if d < step/2 || d > step {
				t.Fatalf("failure %d: backoff %v outside [%v, %v]", n, d, step/2, step)
			}
			if d < prev && step < time.Minute {
				t.Fatalf("failure %d: backoff went down (%v after %v)", n, d, prev)
			}
			prev = d
		}
	}
}

func TestCorruptCacheEntryIsRefetched(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	first := cp.Bundle(1)
	h := &holder{pub: cp.PublicKey()}
	h.apply(first)
	cache := filepath.Join(t.TempDir(), "sections")
	// Publish first, then plant garbage under the name of every section
	// of the new version before the agent starts.
	serial := cp.Block("cache.example")
	man, _ := bundle.Manifest(cp.Bundle(serial))
	_, secs, _ := bundle.ReadHeader(man, nil)
	os.MkdirAll(cache, 0o755)
	for _, s := range secs {
		os.WriteFile(filepath.Join(cache, hexOf(s.Hash)), []byte("corrompu"), 0o644)
	}
	startAgent(t, cp, h, func(c *Config) { c.Initial = first; c.CacheDir = cache })
	cptest.Eventually(t, 10*time.Second, "the version applied despite the cache", func() bool { s, _, _ := h.current(); return s == serial })
}

func hexOf(h [32]byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 64)
	for i, b := range h {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&15]
	}
	return string(out)
}

func TestConfigErrors(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	ok := Config{URL: "https://cp.example", Token: "vge_x", PublicKey: pub, Apply: func([]byte) error { return nil },
		Current: func() (uint64, string, bool) { return 0, "", true }}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no url", func(c *Config) { c.URL = "" }},
		{"bad url", func(c *Config) { c.URL = "ftp://x" }},
		{"no token", func(c *Config) { c.Token = "" }},
		{"no key", func(c *Config) { c.PublicKey = nil }},
		{"no apply", func(c *Config) { c.Apply = nil }},
		{"both applies", func(c *Config) { c.ApplyParts = func(Version) error { return nil } }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			if _, err := New(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
}

// TestApplyPartsGetsTheVerifiedPieces checks the seam a load generator
// uses (bench/controlplane): ApplyParts gets the signed manifest of the new
// version and its sections, which join into the bundle the control plane
// published byte for byte, without the agent laying them out; and the
// next delta still fetches only what changed.
func TestApplyPartsGetsTheVerifiedPieces(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	first := cp.Bundle(1)
	var mu sync.Mutex
	var serial uint64 = 1
	var got Version
	cfg := func(c *Config) {
		c.Initial, c.Apply = first, nil
		c.ApplyParts = func(v Version) error {
			mu.Lock()
			serial, got = v.Header.Serial, v
			mu.Unlock()
			return nil
		}
		c.Current = func() (uint64, string, bool) { mu.Lock(); defer mu.Unlock(); return serial, "", false }
	}
	a := startAgent(t, cp, &holder{pub: cp.PublicKey()}, cfg)
	for round := 0; round < 2; round++ {
		before := a.Status().Bytes
		want := cp.Block(fmt.Sprintf("simule-%d.example", round))
		cptest.Eventually(t, 10*time.Second, "the version in pieces", func() bool { mu.Lock(); defer mu.Unlock(); return serial == want })
		mu.Lock()
		v := got
		mu.Unlock()
		published := cp.Bundle(want)
		if man, _ := bundle.Manifest(published); !bytes.Equal(v.Manifest, man) {
			t.Fatalf("ApplyParts got a %d-byte manifest, want the published %d bytes", len(v.Manifest), len(man))
		}
		i := 0
		joined, err := bundle.Join(v.Manifest, cp.PublicKey(), func(string, [32]byte) ([]byte, error) {
			i++
			return v.Sections[i-1], nil
		})
		if err != nil || !bytes.Equal(joined, published) {
			t.Fatalf("the pieces do not join into the published bundle: %v", err)
		}
		if d := a.Status().Bytes - before; d*10 > int64(len(first)) {
			t.Fatalf("round %d moved %d bytes", round, d)
		}
	}
}

// TestManifestPatch checks that a patch made by the control plane rebuilds
// the next manifest byte for byte, offsets shifted by a grown section
// included.
func TestManifestPatch(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	m1, _ := bundle.Manifest(cp.Bundle(1))
	cp.Block("patch.example")
	m2, _ := bundle.Manifest(cp.Bundle(2))
	patch, ok := bundle.ManifestPatch(m1, m2)
	if !ok {
		t.Fatal("no patch between two versions of the same policy")
	}
	if len(patch) > 400 {
		t.Fatalf("patch of %d bytes for a one-domain change", len(patch))
	}
	got, err := bundle.ApplyPatch(m1, patch)
	if err != nil || !bytes.Equal(got, m2) {
		t.Fatalf("rebuilt manifest differs (%v)", err)
	}
	// A patch applied to another base never verifies.
	other := bytes.Clone(m1)
	other[64+2*64+40] ^= 1 // a hash byte of a row the change leaves alone (urls)
	if bad, err := bundle.ApplyPatch(other, patch); err == nil {
		if _, _, err := bundle.ReadHeader(bad, cp.PublicKey()); err == nil {
			t.Fatal("a patch on the wrong base verified")
		}
	}
}

// TestPatchFailureFallsBack checks that an edge whose manifest in force is
// not the one the patch was made against asks for the whole manifest.
func TestPatchFailureFallsBack(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	first := cp.Bundle(1)
	h := &holder{pub: cp.PublicKey()}
	h.apply(first)
	var logs lockedBuffer
	a, err := New(Config{URL: cp.URL, Token: cp.EdgeToken, PublicKey: cp.PublicKey(), Apply: h.apply, Current: h.current,
		Initial: first, Hold: 5 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.manifest = bytes.Clone(a.manifest)
	a.manifest[64+2*64+40] ^= 1
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	serial := cp.Block("repli.example")
	cptest.Eventually(t, 10*time.Second, "the version applied through a whole manifest", func() bool { s, _, _ := h.current(); return s == serial })
	if !strings.Contains(logs.String(), "manifest patch") {
		t.Fatalf("the patch did not fail first:\n%s", logs.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pollWatch sits between an agent and the control plane and records the
// bundle polls: which version each asked to be newer than, and which
// version each answer carried. It is how a test sees that the agent did
// not do something, without sleeping to give it the chance.
type pollWatch struct {
	url string

	mu     sync.Mutex
	after  []uint64       // the "after" of each poll, in arrival order
	answer map[uint64]int // answers per X-Vigie-Serial
}

func watchPolls(t *testing.T, target string) *pollWatch {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	w := &pollWatch{answer: map[uint64]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path == "/api/v1/edge/bundle" {
			if s, err := strconv.ParseUint(resp.Header.Get("X-Vigie-Serial"), 10, 64); err == nil {
				w.mu.Lock()
				w.answer[s]++
				w.mu.Unlock()
			}
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/edge/bundle" {
			if a, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64); err == nil {
				w.mu.Lock()
				w.after = append(w.after, a)
				w.mu.Unlock()
			}
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

// asked reports whether a poll asked for a version newer than serial.
func (w *pollWatch) asked(serial uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.after {
		if a >= serial {
			return true
		}
	}
	return false
}

// served is how many poll answers carried version serial.
func (w *pollWatch) served(serial uint64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answer[serial]
}

// TestReportRidesOnThePoll checks that an applied version is reported in
// the next poll's query when the control plane's answers say it takes
// it (no POST of its own), and with POST /edge/status when they do not
// (a control plane of an earlier release): either way the control plane
// learns it.
func TestReportRidesOnThePoll(t *testing.T) {
	for _, tt := range []struct {
		name        string
		stripHeader bool
		wantPosts   bool
	}{
		{"control plane takes reports in polls", false, false},
		{"earlier control plane", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
			first := cp.Bundle(1)
			h := &holder{pub: cp.PublicKey()}
			if err := h.apply(first); err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(cp.URL)
			rp := httputil.NewSingleHostReverseProxy(u)
			rp.ModifyResponse = func(resp *http.Response) error {
				if tt.stripHeader {
					resp.Header.Del(reportInPollHeader)
				}
				return nil
			}
			var mu sync.Mutex
			posts := 0
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.URL.Path == "/api/v1/edge/status" {
					mu.Lock()
					posts++
					mu.Unlock()
				}
				rp.ServeHTTP(rw, r)
			}))
			t.Cleanup(srv.Close)
			startAgent(t, cp, h, func(c *Config) {
				c.URL, c.Initial, c.Spread, c.Software = srv.URL, first, -1, "test-1"
			})
			cptest.Eventually(t, 5*time.Second, "the agent's first report", func() bool {
				return cp.EdgeStatus("monnet-1")["applied_serial"].(float64) == 1
			})
			mu.Lock()
			before := posts
			mu.Unlock()
			serial := cp.Block("rapport.example")
			cptest.Eventually(t, 10*time.Second, "the report of the new version", func() bool {
				st := cp.EdgeStatus("monnet-1")
				return st["applied_serial"].(float64) == float64(serial) && st["up_to_date"] == true && st["software"] == "test-1"
			})
			mu.Lock()
			got := posts - before
			mu.Unlock()
			if (got > 0) != tt.wantPosts {
				t.Fatalf("%d reports posted after the first, want posts: %v", got, tt.wantPosts)
			}
		})
	}
}
