package cli

import (
	"bytes"
	"os"
	"path/filepath"
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
	// The guide's environment: the server and a token file, no --token.
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(cp.RSSIToken+"\n"), 0o600)
	t.Setenv("VIGIE_SERVER", cp.URL)
	t.Setenv("VIGIE_TOKEN", "")
	t.Setenv("VIGIE_TOKEN_FILE", tokenFile)
	out.Reset()
	errb.Reset()
	if code := Main([]string{"firewall", "render", "--version", "1", "--uai", "0671234X"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "table inet vigie") {
		t.Fatalf("with VIGIE_TOKEN_FILE: exit %d %s", code, errb.String())
	}
	// --ca and its older name --ca-file are the same option.
	for _, opt := range []string{"--ca", "--ca-file"} {
		errb.Reset()
		if code := Main([]string{"firewall", "render", "--version", "1", "--uai", "0671234X", opt, "/absent/ca.pem"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "CA file") {
			t.Fatalf("%s /absent/ca.pem: exit %d %s", opt, code, errb.String())
		}
	}
	t.Setenv("VIGIE_TOKEN_FILE", "")
	errb.Reset()
	if code := Main([]string{"firewall", "render", "--version", "1", "--uai", "0671234X"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "VIGIE_TOKEN_FILE") {
		t.Fatalf("no token: exit %d %s", code, errb.String())
	}
}
