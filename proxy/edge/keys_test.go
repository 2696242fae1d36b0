package edge

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane/cptest"
	"vigie/demo"
	"vigie/keyfile"
	"vigie/tstest"
)

func TestKeyConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"old", "new", "third"} {
		if _, err := keyfile.Generate(filepath.Join(dir, name+".key")); err != nil {
			t.Fatal(err)
		}
	}
	pub := func(name string) string { return filepath.Join(dir, name+".key.pub") }
	garbage := filepath.Join(dir, "garbage.pub")
	os.WriteFile(garbage, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o644)
	copyOld := filepath.Join(dir, "old-copy.pub")
	data, _ := os.ReadFile(pub("old"))
	os.WriteFile(copyOld, data, 0o644)

	// LoadConfig checks the fields; New reads the files.
	cases := []struct {
		name    string
		keys    string
		loadErr string
		newErr  string
	}{
		{"single key", "public_key: " + pub("old"), "", ""},
		{"list of two", "public_keys: [" + pub("old") + ", " + pub("new") + "]", "", ""},
		{"list of one", "public_keys: [" + pub("new") + "]", "", ""},
		{"both fields", "public_key: " + pub("old") + "\npublic_keys: [" + pub("new") + "]", "public_key and public_keys", ""},
		{"empty list", "public_keys: []", "public_keys is empty", ""},
		{"neither", "", "public_key or public_keys is required", ""},
		{"same file twice", "public_keys: [" + pub("old") + ", " + pub("old") + "]", "public_keys[1] repeats public_keys[0]", ""},
		{"too many", "public_keys: [a, b, c, d, e]", "at most 4", ""},
		{"missing file in list", "public_keys: [" + pub("old") + ", " + filepath.Join(dir, "absent.pub") + "]", "", "public_keys[1]: keyfile: open " + filepath.Join(dir, "absent.pub")},
		{"invalid file in list", "public_keys: [" + garbage + "]", "", "public_keys[0]: keyfile: " + garbage},
		{"private key in list", "public_keys: [" + filepath.Join(dir, "new.key") + "]", "", "public_keys[0]: keyfile: " + filepath.Join(dir, "new.key")},
		{"missing single key", "public_key: " + filepath.Join(dir, "absent.pub"), "", "public_key: keyfile: open " + filepath.Join(dir, "absent.pub")},
		{"same key in two files", "public_keys: [" + pub("old") + ", " + copyOld + "]", "", "public_keys[1] " + copyOld + " holds the same key as public_keys[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "edge.yaml")
			os.WriteFile(path, []byte("uai: 0671234X\nstate_dir: "+t.TempDir()+"\n"+c.keys+"\n"), 0o644)
			cfg, err := LoadConfig(path)
			if c.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.loadErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("LoadConfig: %v, want an error naming %s and %q", err, path, c.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			_, err = New(cfg, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if c.newErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.newErr) {
				t.Fatalf("New: %v, want an error containing %q", err, c.newErr)
			}
		})
	}
}

// gauge reads one labelled series of a registry (-1 when absent).
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	return tstest.Series(t, reg, name, label, value)
}

// series counts the series of a metric.
func series(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestKeyRotation runs the documented rotation on real parts: edges
// pinning keys from real PEM files, a control plane signing with the old
// key, then one signing with the new key. (Two control planes stand for
// one switched to a new key: today's control plane does not open its
// store under a key other than the one that signed its latest version.)
// At no step does an edge refuse a bundle or run the strict policy, and
// vigie_edge_policy_key_info names the key of the bundle in force.
func TestKeyRotation(t *testing.T) {
	cpOld := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	cpNew := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	oldPub, newPub := cpOld.PublicKeyFile, cpNew.PublicKeyFile
	thirdKeyPath := filepath.Join(t.TempDir(), "third.key")
	thirdKey, err := keyfile.Generate(thirdKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	oldFP, newFP := keyfile.Fingerprint(cpOld.PublicKey()), keyfile.Fingerprint(cpNew.PublicKey())
	state := t.TempDir()
	start := func(cp *cptest.CP, state string, pins ...string) (*Edge, *prometheus.Registry) {
		t.Helper()
		reg := prometheus.NewRegistry()
		cfg := Config{
			UAI: demo.UAI, StateDir: state, PublicKeys: pins,
			ControlPlane: ControlPlaneConfig{URL: cp.URL, Token: cp.EdgeToken, PollTimeout: 5 * time.Second,
				MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond},
			DNS: DNSConfig{Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:9"}},
		}
		e, err := New(cfg, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Shutdown(context.Background()) })
		return e, reg
	}
	noRefusal := func(reg *prometheus.Registry) {
		t.Helper()
		if got := gauge(t, reg, "vigie_sync_refused_total", "reason", "signature"); got > 0 {
			t.Fatalf("%v bundles refused for their signature", got)
		}
	}

	// Before: the edge pins the old key only and runs serial 1.
	e, reg := start(cpOld, state, oldPub)
	cptest.Eventually(t, 15*time.Second, "serial 1 applied", func() bool { return e.Generation().Serial() == 1 })
	if got := gauge(t, reg, "vigie_edge_policy_key_info", "key", oldFP); got != 1 {
		t.Fatalf("vigie_edge_policy_key_info{key=%q} = %v, want 1", oldFP, got)
	}
	e.Shutdown(context.Background())

	// Step 1: add the new key and restart. The last-known-good bundle,
	// signed by the old key, still verifies: no strict policy. The edge
	// now polls the control plane that will sign with the new key (it
	// holds serial 1 too, so it has nothing newer yet).
	cpOld.Stop()
	e, reg = start(cpNew, state, oldPub, newPub)
	if g := e.Generation().Load(); g.Fallback || g.Serial != 1 {
		t.Fatalf("restarted with both keys on serial %d fallback %v, want last-known-good serial 1", g.Serial, g.Fallback)
	}
	if got := gauge(t, reg, "vigie_edge_policy_key_info", "key", oldFP); got != 1 {
		t.Fatalf("key info after restart: %v, want the old key %s", got, oldFP)
	}
	if n := series(t, reg, "vigie_edge_pinned_key_info"); n != 2 {
		t.Fatalf("%d pinned keys exported, want 2", n)
	}

	// Step 2: the control plane signs with the new key and publishes: the
	// edge applies it, and says which key verified it.
	serial := cpNew.Block("apres-rotation.example")
	cptest.Eventually(t, 15*time.Second, "the bundle signed by the new key applied", func() bool {
		return e.Generation().Serial() == serial
	})
	if got := gauge(t, reg, "vigie_edge_policy_key_info", "key", newFP); got != 1 {
		t.Fatalf("vigie_edge_policy_key_info{key=%q} = %v, want 1", newFP, got)
	}
	if n := series(t, reg, "vigie_edge_policy_key_info"); n != 1 {
		t.Fatalf("%d series of vigie_edge_policy_key_info, want exactly the key in force", n)
	}
	noRefusal(reg)
	e.Shutdown(context.Background())

	// Step 3: the old key goes; the last-known-good, signed by the new
	// key, verifies at restart.
	e, reg = start(cpNew, state, newPub)
	if g := e.Generation().Load(); g.Fallback || g.Serial != serial {
		t.Fatalf("restarted with the new key only on serial %d fallback %v, want %d", g.Serial, g.Fallback, serial)
	}
	if got := gauge(t, reg, "vigie_edge_policy_key_info", "key", newFP); got != 1 || e.PolicyKey() != newFP {
		t.Fatalf("key info after step 3: %v, PolicyKey %q, want %s", got, e.PolicyKey(), newFP)
	}

	// An edge pinning the old key and a third one, none of which signs
	// now, refuses the bundle for its signature and keeps the strict
	// policy: pinning two keys widens nothing else.
	third := filepath.Join(filepath.Dir(thirdKeyPath), "third.key.pub")
	e3, reg3 := start(cpNew, t.TempDir(), oldPub, third)
	cptest.Eventually(t, 15*time.Second, "the refusal for the signature", func() bool {
		return gauge(t, reg3, "vigie_sync_refused_total", "reason", "signature") >= 1
	})
	if g := e3.Generation().Load(); !g.Fallback || g.Serial != 0 {
		t.Fatalf("edge pinning neither signing key runs serial %d fallback %v", g.Serial, g.Fallback)
	}
	if n := series(t, reg3, "vigie_edge_policy_key_info"); n != 0 {
		t.Fatalf("key info exported while the strict policy runs (%d series)", n)
	}
	if gauge(t, reg3, "vigie_edge_pinned_key_info", "key", keyfile.Fingerprint(thirdKey)) != 1 {
		t.Fatal("the third pinned key is not exported")
	}
}
