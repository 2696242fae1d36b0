package controlplane

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/publish"
	"vigie/controlplane/ut1import"
	"vigie/demo"
	"vigie/keyfile"
	"vigie/rules"
)

// ut1Tree is a UT1 tree from a blocklists folder (ut1/ and
// adult-top1m/), with adult/domains (too large for the repository's
// snapshots) made of its top-1-million part: the tree an operator
// downloads, smaller.
func ut1Tree(t *testing.T, lists string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ut1")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(lists, "ut1"))); err != nil {
		t.Fatal(err)
	}
	top, err := os.ReadFile(filepath.Join(lists, "adult-top1m", "domains"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "adult", "domains"), top, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFirstPolicyProtects follows the guide: a new control plane, UT1
// imported, published at once, blocks pornography, gambling and VPNs for
// pupils and guests, leaves the staff's work alone, and has a default-deny
// egress; the académie's own block list takes entries at once.
func TestFirstPolicyProtects(t *testing.T) {
	sample, err := demo.WriteSample(filepath.Join(t.TempDir(), "sample"))
	if err != nil {
		t.Fatal(err)
	}
	// The repository's UT1 snapshot, and the demo's excerpt that the
	// operator guide's test imports: every category the first policy
	// names must be in both.
	for name, lists := range map[string]string{"snapshot": "../testdata/blocklists", "demo sample": sample} {
		t.Run(name, func(t *testing.T) { firstPolicyProtects(t, lists) })
	}
}

func firstPolicyProtects(t *testing.T, lists string) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := keyfile.Generate(filepath.Join(dir, "academie.key")); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(ctx, Config{DataDir: dir, Academie: "Académie de test"}, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	res, err := ut1import.Import(ctx, ut1import.Options{Source: ut1Tree(t, lists), DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	who := publish.Actor{Name: "rssi", Role: "rssi"}
	if err := ut1import.UpdateDraft(ctx, cp.Store, res, who, time.Now()); err != nil {
		t.Fatal(err)
	}
	v, err := cp.Publisher.Publish(ctx, who, "Première politique", false)
	if err != nil {
		t.Fatalf("the first policy does not publish after a UT1 import: %v", err)
	}
	blob, err := cp.Publisher.Bundle(ctx, v.Serial)
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := rules.DecodeBundle(blob.Raw, cp.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		profile, host string
		block         bool
	}{
		{"eleves", "pornhub.com", true},
		{"eleves", "www.pornhub.com", true},
		{"invites", "pornhub.com", true},
		{"personnels", "pornhub.com", true},
		{"serveurs", "pornhub.com", false},
		{"eleves", "eduscol.education.fr", false},
	}
	for _, c := range cases {
		id, ok := rs.Profile(c.profile)
		if !ok {
			t.Fatalf("the first policy has no profile %q", c.profile)
		}
		got := rs.Decide(id, rules.Query{Host: c.host, Time: time.Now()})
		if (got.Action == rules.Block) != c.block {
			t.Errorf("%s: %s: %+v, want block=%v", c.profile, c.host, got, c.block)
		}
	}
	// Every category of the first policy is a real UT1 category (or the
	// académie's own), so the whole list blocks: one domain of each.
	id, _ := rs.Profile("eleves")
	for _, cat := range []string{"gambling", "vpn", "drogue", "dating", "agressif"} {
		host := firstDomain(t, filepath.Join(lists, "ut1", cat, "domains"))
		if v := rs.Decide(id, rules.Query{Host: host, Time: time.Now()}); v.Action != rules.Block {
			t.Errorf("eleves: %s (UT1 %s) not blocked: %+v", host, cat, v)
		}
	}
}

func firstDomain(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	t.Fatalf("%s: no domain", path)
	return ""
}
