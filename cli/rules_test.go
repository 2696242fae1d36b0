package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesCheckRefusesOpenEgress: a policy in the old form, whose
// internet line opened every port, is refused by rules check with the
// file, line and field, and the form to write instead.
func TestRulesCheckRefusesOpenEgress(t *testing.T) {
	const old = `version: 1
academie: "Test"
profiles:
  - {id: eleves}
schools:
  - uai: 0671234X
    name: "Collège"
    zones:
      - {name: pedagogique, cidrs: [10.10.0.0/24], profile: eleves}
  - uai: 0671235Y
    name: "Autre collège"
    zones:
      - {name: pedagogique, cidrs: [10.10.0.0/24], profile: eleves}
firewall:
  internet:
    - {from: pedagogique, proto: udp, ports: ["123"]}
    - {from: pedagogique, action: allow}
`
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"rules", "check", "--policy", path}, &stdout, &stderr); code == 0 {
		t.Fatalf("accepted:\n%s", stdout.String())
	}
	// One académie-wide line, reported once for both schools.
	want := path + `:17: schools 0671234X and 1 more: firewall.internet[1]: opens every port to the internet, and egress is default-deny: write {from: pedagogique, services: [web, dns, ntp]}`
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}

	fixed := strings.Replace(old, "{from: pedagogique, action: allow}", "{from: pedagogique, services: [web, dns, ntp]}", 1)
	if err := os.WriteFile(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := Main([]string{"rules", "check", "--policy", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("new form refused:\n%s", stderr.String())
	}
}

// TestPoliciesShippedAreDefaultDeny: the policies an operator starts from
// pass rules check.
func TestPoliciesShippedPassCheck(t *testing.T) {
	for _, path := range []string{"../examples/policy.yaml"} {
		var stdout, stderr bytes.Buffer
		if code := Main([]string{"rules", "check", "--policy", path}, &stdout, &stderr); code != 0 {
			t.Errorf("%s: %s", path, stderr.String())
		}
	}
}
