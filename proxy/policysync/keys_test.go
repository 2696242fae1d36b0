package policysync

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane/cptest"
)

// TestSecondPinnedKeyAccepted plays a key rotation's first step: the edge
// pins a key the control plane does not sign with, plus the one it does
// (the new key in PublicKeys). Whole bundles and deltas from the control
// plane are applied, and nothing is refused.
func TestSecondPinnedKeyAccepted(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprint("delta=", delta), func(t *testing.T) {
			cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
			old, _, _ := ed25519.GenerateKey(rand.Reader)
			reg := prometheus.NewRegistry()
			h := &holder{pub: cp.PublicKey()}
			want := uint64(1)
			startAgent(t, cp, h, func(c *Config) {
				c.PublicKey, c.PublicKeys, c.Registry = old, []ed25519.PublicKey{cp.PublicKey()}, reg
				if delta {
					first := cp.Bundle(1)
					if err := h.apply(first); err != nil {
						t.Fatal(err)
					}
					c.Initial = first
					want = cp.Block("apres-rotation.example")
				}
			})
			cptest.Eventually(t, 10*time.Second, fmt.Sprintf("serial %d applied", want), func() bool { s, _, _ := h.current(); return s == want })
			if delta && !h.blocks("apres-rotation.example") {
				t.Fatal("the delta signed by the second key did not carry the new block")
			}
			if got := metric(t, reg, "vigie_sync_refused_total", "reason", "signature"); got != 0 {
				t.Fatalf("%v signature refusals with the signing key pinned second", got)
			}
		})
	}
}

// TestUnpinnedKeyRefused checks that pinning several keys widens nothing
// else: a bundle signed by a third key is refused, counted as a signature
// refusal, and not applied.
func TestUnpinnedKeyRefused(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 5 * time.Second})
	k1, _, _ := ed25519.GenerateKey(rand.Reader)
	k2, _, _ := ed25519.GenerateKey(rand.Reader)
	reg := prometheus.NewRegistry()
	h := &holder{pub: k1}
	a := startAgent(t, cp, h, func(c *Config) {
		c.PublicKey, c.PublicKeys, c.Registry = nil, []ed25519.PublicKey{k1, k2}, reg
	})
	cptest.Eventually(t, 10*time.Second, "the refusal for the signature", func() bool {
		return metric(t, reg, "vigie_sync_refused_total", "reason", "signature") >= 1
	})
	if s, _, _ := h.current(); s != 0 {
		t.Fatalf("a bundle signed by an unpinned key was applied (serial %d)", s)
	}
	if st := a.Status(); st.Serial != 0 || st.LastError == "" {
		t.Fatalf("agent status %+v after a refusal", st)
	}
}

func TestNewNeedsAValidKey(t *testing.T) {
	k, _, _ := ed25519.GenerateKey(rand.Reader)
	base := Config{URL: "http://198.51.100.1", Token: "vge_x",
		Apply: func([]byte) error { return nil }, Current: func() (uint64, string, bool) { return 0, "", true }}
	cases := []struct {
		name   string
		pub    ed25519.PublicKey
		others []ed25519.PublicKey
		ok     bool
	}{
		{"one key", k, nil, true},
		{"keys only", nil, []ed25519.PublicKey{k}, true},
		{"both", k, []ed25519.PublicKey{k}, true},
		{"none", nil, nil, false},
		{"empty list", nil, []ed25519.PublicKey{}, false},
		{"short key in list", k, []ed25519.PublicKey{k[:10]}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			cfg.PublicKey, cfg.PublicKeys = c.pub, c.others
			if _, err := New(cfg); (err == nil) != c.ok {
				t.Fatalf("New: %v, want ok=%v", err, c.ok)
			}
		})
	}
}
