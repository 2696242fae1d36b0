package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
	"vigie/rules/policy"
)

// techToken signs a new account in as its owner would (generated password,
// changed at once) and creates an API token for its scripts.
func techToken(t *testing.T, base, login, password string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	csrf := ""
	call := func(path string, in, out any) {
		t.Helper()
		b, _ := json.Marshal(in)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
		json.NewDecoder(resp.Body).Decode(out)
	}
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	call("/api/v1/session", map[string]string{"login": login, "password": password}, &s)
	csrf = s.CSRF
	call("/api/v1/me/password", map[string]string{"current": password, "new": "une phrase de passe du Bas-Rhin"}, &s)
	csrf = s.CSRF
	var tok struct {
		Token string `json:"token"`
	}
	call("/api/v1/tokens", map[string]any{"name": "scripts"}, &tok)
	if !strings.HasPrefix(tok.Token, "vga_") {
		t.Fatalf("token %q", tok.Token)
	}
	return tok.Token
}

// TestAdminIPProposals: a Bas-Rhin technicien proposes a plan from the
// command line (starting from the JSON of the school's current plan), the
// RSSI lists, reads the diff and validates; a second one is refused with
// a reason the technicien reads.
func TestAdminIPProposals(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	runAs := func(token string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := runAdmin(append([]string{"--server", cp.URL, "--token", token}, args...), &out, &errb)
		return out.String() + errb.String(), err
	}
	must := func(token, want string, args ...string) string {
		t.Helper()
		out, err := runAs(token, args...)
		if err != nil {
			t.Fatalf("vigie admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(out, want) {
			t.Fatalf("vigie admin %s: output lacks %q:\n%s", strings.Join(args, " "), want, out)
		}
		return out
	}
	rssi := cp.RSSIToken
	out := must(rssi, "password: ", "users", "add", "tech67", "--role", "technicien", "--scope", "067")
	tech := techToken(t, cp.URL, "tech67", regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out)[1])

	var school policy.School
	if err := json.Unmarshal([]byte(must(tech, "0671234X", "--json", "schools", "show", "0671234X")), &school); err != nil {
		t.Fatal(err)
	}
	plan := func(wifi string) string {
		zs := append([]policy.Zone(nil), school.Zones...)
		for i := range zs {
			if zs[i].Name == "wifi" {
				zs[i].CIDRs = []string{wifi}
			}
		}
		b, _ := json.Marshal(zs)
		f := filepath.Join(t.TempDir(), "plan.json")
		os.WriteFile(f, b, 0o600)
		return f
	}
	if out, err := runAs(tech, "ip-plans", "propose", "0671234X", "--file", plan("10.31.0.300/24"), "-m", "wifi"); err == nil ||
		!strings.Contains(err.Error(), "zones[2].cidrs[0]") || !strings.Contains(err.Error(), "n’est pas une plage") {
		t.Fatalf("a bad prefix: %v\n%s", err, out)
	}
	must(tech, "proposal 1 sent to the RSSI", "ip-plans", "propose", "0671234X", "--file", plan("10.31.0.0/24"), "-m", "Nouveau wifi")
	must(rssi, "wifi changed", "ip-plans", "--status", "pending")
	show := must(rssi, "10.31.0.0/24", "ip-plans", "show", "1")
	if !strings.Contains(show, "10.30.0.0/24") || !strings.Contains(show, "validate --revision") {
		t.Fatalf("show:\n%s", show)
	}
	if _, err := runAs(tech, "ip-plans", "validate", "1"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("the technicien validates: %v", err)
	}
	must(rssi, "proposal 1 validated", "ip-plans", "validate", "1", "-m", "Vu")
	must(rssi, "10.31.0.0/24", "schools", "show", "0671234X")

	must(tech, "proposal 2 sent", "ip-plans", "propose", "0671234X", "--file", plan("10.32.0.0/24"), "-m", "Autre wifi")
	if _, err := runAs(rssi, "ip-plans", "refuse", "2"); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("refusal without reason: %v", err)
	}
	must(rssi, "proposal 2 refused", "ip-plans", "refuse", "2", "-m", "Plage réservée")
	must(tech, "Plage réservée", "ip-plans", "show", "2")
	for _, args := range [][]string{{"ip-plans", "-h"}, {"ip-plans", "propose", "-h"}} {
		var o, e bytes.Buffer
		if code := Main(append([]string{"admin"}, args...), &o, &e); code != 0 {
			t.Errorf("vigie admin %s: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), e.String())
		}
	}
}
