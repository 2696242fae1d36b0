package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vigie/tstest"
)

// needTool returns the path of a command the test needs. CI installs every
// one of them (.ci/run), so there a missing tool fails the test; on a
// developer's machine it skips with the package to install.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	return tstest.RequireCommand(t, name, debianPackage)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

var units = []string{"vigie-edge.service", "vigie-controlplane.service"}

// unitCopies writes the units to a temporary directory with ExecStart
// pointing at binary: systemd-analyze verify refuses a unit whose binary
// does not exist, and the test machine has no /usr/bin/vigie.
func unitCopies(t *testing.T, binary string) string {
	t.Helper()
	dir := t.TempDir()
	for _, u := range units {
		data, err := os.ReadFile(filepath.Join("systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "ExecStart=/usr/bin/vigie ", "ExecStart="+binary+" ")
		if text == string(data) {
			t.Fatalf("%s: no ExecStart=/usr/bin/vigie line", u)
		}
		if err := os.WriteFile(filepath.Join(dir, u), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// verifyUnits runs systemd-analyze verify, which also warns about unknown
// or misspelt directives: any output is a failure.
func verifyUnits(t *testing.T, dir string) {
	t.Helper()
	analyze := needTool(t, "systemd-analyze", "systemd")
	for _, u := range units {
		t.Run("verify "+u, func(t *testing.T) {
			cmd := exec.Command(analyze, "verify", filepath.Join(dir, u))
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
			}
		})
	}
}

func TestUnitsVerify(t *testing.T) {
	verifyUnits(t, unitCopies(t, "/bin/true"))
}

// TestUnitsCatchMistakes proves the verify step can fail: a misspelt
// directive and a missing binary must both be reported.
func TestUnitsCatchMistakes(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	dir := unitCopies(t, "/bin/true")
	cases := []struct{ name, from, to string }{
		{"misspelt directive", "\nProtectSystem=strict\n", "\nProtectSystm=strict\n"},
		{"missing binary", "\nExecStart=/bin/true", "\nExecStart=/nonexistent/vigie"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "vigie-edge.service"))
			if err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(t.TempDir(), "vigie-edge.service")
			os.WriteFile(bad, []byte(strings.Replace(string(data), c.from, c.to, 1)), 0o644)
			out, err := exec.Command(analyze, "verify", bad).CombinedOutput()
			if err == nil && len(strings.TrimSpace(string(out))) == 0 {
				t.Errorf("systemd-analyze verify accepted a unit with a %s", c.name)
			}
		})
	}
}

// unitDirectives reads a unit's [Service] section; a directive set twice
// keeps every value, in order.
func unitDirectives(t *testing.T, name string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not key=value", name, line)
		}
		out[section+"."+k] = append(out[section+"."+k], v)
	}
	return out
}

// TestUnitsHardening checks what the issue asks of each unit, directive by
// directive, and the overall exposure systemd itself computes.
func TestUnitsHardening(t *testing.T) {
	common := map[string]string{
		"Service.NoNewPrivileges":        "yes",
		"Service.ProtectSystem":          "strict",
		"Service.ProtectHome":            "yes",
		"Service.PrivateTmp":             "yes",
		"Service.PrivateDevices":         "yes",
		"Service.User":                   "vigie",
		"Service.RestrictNamespaces":     "yes",
		"Service.MemoryDenyWriteExecute": "yes",
	}
	cases := []struct {
		unit      string
		want      map[string]string
		stateDirs []string
		// maxExposure is systemd-analyze security's threshold (exposure ×
		// 10): the edge needs two capabilities and netlink, the control
		// plane nothing.
		maxExposure string
	}{
		{"vigie-edge.service", map[string]string{
			"Service.CapabilityBoundingSet": "CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
			"Service.AmbientCapabilities":   "CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
			"Service.ExecStart":             "/usr/bin/vigie edge --config /etc/vigie/edge.yaml",
			"Service.Restart":               "always",
		}, []string{"vigie/edge", "vigie/journal"}, "20"},
		{"vigie-controlplane.service", map[string]string{
			"Service.CapabilityBoundingSet": "",
			"Service.AmbientCapabilities":   "",
			"Service.ExecStart":             "/usr/bin/vigie controlplane --config /etc/vigie/controlplane.yaml",
			"Service.PrivateUsers":          "yes",
		}, []string{"vigie/controlplane"}, "15"},
	}
	for _, c := range cases {
		t.Run(c.unit, func(t *testing.T) {
			got := unitDirectives(t, c.unit)
			for k, v := range common {
				if g := got[k]; len(g) != 1 || g[0] != v {
					t.Errorf("%s: %s=%q, want %q", c.unit, k, g, v)
				}
			}
			for k, v := range c.want {
				if g := got[k]; len(g) != 1 || g[0] != v {
					t.Errorf("%s: %s=%q, want %q", c.unit, k, g, v)
				}
			}
			dirs := strings.Fields(strings.Join(got["Service.StateDirectory"], " "))
			for _, d := range c.stateDirs {
				if !slices.Contains(dirs, d) {
					t.Errorf("%s: StateDirectory %q lacks %s", c.unit, dirs, d)
				}
			}
		})
	}
	analyze := needTool(t, "systemd-analyze", "systemd")
	dir := unitCopies(t, "/bin/true")
	for _, c := range cases {
		t.Run("exposure "+c.unit, func(t *testing.T) {
			cmd := exec.Command(analyze, "security", "--offline=yes", "--threshold="+c.maxExposure, c.unit)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze security %s above %s: %v\n%s", c.unit, c.maxExposure, err, out)
			}
		})
	}
}
