package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// TestFirewallRenderPublishedVersion renders the firewall of a version
// straight from the control plane, as a technician checks what a school
// gets.
func TestFirewallRenderPublishedVersion(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	var out, errb bytes.Buffer
	args := []string{"render", "--version", "1", "--uai", "0671234X", "--server", cp.URL, "--token", cp.RSSIToken, "--pubkey", cp.PublicKeyFile}
	if code := Main(append([]string{"firewall"}, args...), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"table inet vigie", "10.20.0.0/24", "10.40.0.0/24"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("render lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	errb.Reset()
	args[2] = "99"
	if code := Main(append([]string{"firewall"}, args...), &out, &errb); code == 0 || !strings.Contains(errb.String(), "version 99") {
		t.Fatalf("absent version: exit %d %s", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"firewall", "render", "--version", "1", "--policy", "x.yaml", "--uai", "0671234X"}, &out, &errb); code != 2 {
		t.Fatalf("two sources: exit %d %s", code, errb.String())
	}
}
