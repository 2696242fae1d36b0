package policysync

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// TestTokenRotationNeedsNoRestart: the RSSI rotates the edge's token and
// the new one is written to the token file; the agent, refused with the
// old one, reads the file again and carries on.
func TestTokenRotationNeedsNoRestart(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: time.Second})
	file := filepath.Join(t.TempDir(), "edge.token")
	if err := os.WriteFile(file, []byte(cp.EdgeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &holder{pub: cp.PublicKey()}
	startAgent(t, cp, h, func(c *Config) { c.Token, c.TokenFile = cp.EdgeToken, file })
	cptest.Eventually(t, 10*time.Second, "serial 1 applied", func() bool { s, _, _ := h.current(); return s == 1 })
	var rotated struct{ Token string }
	cp.Call("POST", "/api/v1/edges/monnet-1/token", nil, &rotated)
	if rotated.Token == "" {
		t.Fatal("no new token")
	}
	if err := os.WriteFile(file, []byte(rotated.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serial := cp.Block("rotation.example")
	cptest.Eventually(t, 10*time.Second, "the version published after the rotation", func() bool { s, _, _ := h.current(); return s == serial })
}
