package policysync

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane/cptest"
	"vigie/tstest"
)

// metric reads one series of a registry (-1 when absent).
func metric(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	return tstest.Series(t, reg, name, label, value)
}

// TestMetricsStartAtZero checks that every known label value is exported
// before anything happened: an alert on increase() sees the first event.
func TestMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	_, err := New(Config{URL: "http://198.51.100.1", Token: "vge_x", PublicKey: pub, Registry: reg,
		Apply: func([]byte) error { return nil }, Current: func() (uint64, string, bool) { return 0, "", true }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, label, value string }{
		{"vigie_sync_polls_total", "result", "error"},
		{"vigie_sync_polls_total", "result", "nothing_new"},
		{"vigie_sync_polls_total", "result", "new_version"},
		{"vigie_sync_polls_total", "result", "still_refused"},
		{"vigie_sync_refused_total", "reason", "signature"},
		{"vigie_sync_refused_total", "reason", "decode"},
		{"vigie_sync_refused_total", "reason", "older"},
		{"vigie_sync_refused_total", "reason", "apply"},
	}
	for _, tt := range tests {
		if got := metric(t, reg, tt.name, tt.label, tt.value); got != 0 {
			t.Errorf("%s{%s=%q} = %v, want 0 from the start", tt.name, tt.label, tt.value, got)
		}
	}
}

// TestBadSignatureIsNotDownloadedAgain checks that a version refused for
// its signature is counted once and never downloaded again while the
// control plane offers the same bytes: later retries cost a 304.
func TestBadSignatureIsNotDownloadedAgain(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: time.Second})
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	reg := prometheus.NewRegistry()
	h := &holder{pub: other}
	cp.Block("mauvaise-cle.example")
	a := startAgent(t, cp, h, func(c *Config) {
		c.PublicKey, c.Registry = other, reg
		c.Initial = cp.Bundle(1)
		c.Current = func() (uint64, string, bool) { return 1, "", false }
		c.Hold, c.RetryBad = time.Second, 50*time.Millisecond
	})
	cptest.Eventually(t, 10*time.Second, "the refusal for the signature", func() bool {
		return metric(t, reg, "vigie_sync_refused_total", "reason", "signature") >= 1
	})
	downloads := metric(t, reg, "vigie_sync_polls_total", "result", "new_version")
	bytes := a.Status().Bytes
	// Each retry after RetryBad asks with the refused answer's ETag.
	cptest.Eventually(t, 30*time.Second, "three retries answered 304", func() bool {
		return metric(t, reg, "vigie_sync_polls_total", "result", "still_refused") >= 3
	})
	if got := metric(t, reg, "vigie_sync_polls_total", "result", "new_version"); got != downloads {
		t.Fatalf("the refused version was downloaded %v more times", got-downloads)
	}
	if got := metric(t, reg, "vigie_sync_refused_total", "reason", "signature"); got != 1 {
		t.Fatalf("refused %v times for its signature, want once", got)
	}
	if d := a.Status().Bytes - bytes; d > 4096 {
		t.Fatalf("%d bytes received by retries that should each be a bare 304 or 204", d)
	}
	if !strings.Contains(a.Status().LastError, "signature") {
		t.Fatalf("agent status error %q", a.Status().LastError)
	}
	if s, _, _ := h.current(); s != 0 {
		t.Fatalf("a bundle signed by another key was applied (serial %d)", s)
	}
	// A new publication is a different offer: fetched (and refused again).
	cp.Block("autre-version.example")
	cptest.Eventually(t, 10*time.Second, "the new version fetched and refused", func() bool {
		return metric(t, reg, "vigie_sync_refused_total", "reason", "signature") >= 2
	})
}
