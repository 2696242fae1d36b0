package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"vigie/tstest"
)

const testVersion = "0.0.0-test.1"

// buildTestDeb compiles the real vigie binary and packs it, once per test
// binary run.
func buildTestDeb(t *testing.T) (deb, binary string) {
	t.Helper()
	dir := t.TempDir()
	binary = filepath.Join(dir, "vigie")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := BuildBinary(ctx, BinaryOptions{Root: "..", Version: testVersion, Out: binary}); err != nil {
		t.Fatal(err)
	}
	deb, err := BuildDeb(DebOptions{Root: "..", Binary: binary, Version: testVersion, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	return deb, binary
}

// TestDeb builds the package, checks its contents and metadata with
// dpkg-deb, installs it into a throwaway root with dpkg (maintainer scripts
// included), runs the installed binary, verifies the installed units, and
// purges it.
func TestDeb(t *testing.T) {
	dpkgDeb := needTool(t, "dpkg-deb", "dpkg")
	deb, _ := buildTestDeb(t)

	t.Run("contents", func(t *testing.T) {
		out, err := exec.Command(dpkgDeb, "-c", deb).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb -c: %v\n%s", err, out)
		}
		// path -> mode string, e.g. "-rwxr-xr-x"
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) < 6 {
				t.Fatalf("dpkg-deb -c line %q", line)
			}
			got[strings.TrimPrefix(f[len(f)-1], ".")] = f[0]
		}
		want := map[string]string{
			"/usr/bin/vigie":                                  "-rwxr-xr-x",
			"/lib/systemd/system/vigie-edge.service":          "-rw-r--r--",
			"/lib/systemd/system/vigie-controlplane.service":  "-rw-r--r--",
			"/usr/lib/sysusers.d/vigie.conf":                  "-rw-r--r--",
			"/etc/vigie/":                                     "drwxr-x---",
			"/etc/vigie/edge.yaml":                            "-rw-r-----",
			"/etc/vigie/controlplane.yaml":                    "-rw-r-----",
			"/usr/share/vigie/grafana/vigie.json":             "-rw-r--r--",
			"/usr/share/vigie/prometheus/alerts.yml":          "-rw-r--r--",
			"/usr/share/doc/vigie/operator-guide.md":          "-rw-r--r--",
			"/usr/share/doc/vigie/copyright":                  "-rw-r--r--",
			"/usr/share/doc/vigie/examples/edge.yaml":         "-rw-r--r--",
			"/usr/share/doc/vigie/examples/controlplane.yaml": "-rw-r--r--",
			"/usr/share/doc/vigie/examples/policy.yaml":       "-rw-r--r--",
		}
		for p, mode := range want {
			if g, ok := got[p]; !ok {
				t.Errorf("package lacks %s", p)
			} else if g != mode {
				t.Errorf("%s: mode %s, want %s", p, g, mode)
			}
		}
		for p := range got {
			if strings.HasSuffix(p, "/") {
				continue
			}
			if _, ok := want[p]; !ok {
				t.Errorf("package ships an unexpected file %s", p)
			}
		}
	})

	t.Run("control", func(t *testing.T) {
		out, err := exec.Command(dpkgDeb, "-f", deb).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb -f: %v\n%s", err, out)
		}
		// Debian spells a pre-release with ~, so that it sorts before 0.0.0.
		for _, want := range []string{"Package: vigie", "Version: 0.0.0~test.1", "Architecture: ", "Section: net", "Recommends: nftables", "Description: "} {
			if !strings.Contains(string(out), "\n"+want) && !strings.HasPrefix(string(out), want) {
				t.Errorf("control file lacks %q:\n%s", want, out)
			}
		}
		dir := t.TempDir()
		if out, err := exec.Command(dpkgDeb, "-e", deb, dir).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
		}
		conf, err := os.ReadFile(filepath.Join(dir, "conffiles"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(conf))
		slices.Sort(lines)
		if want := []string{"/etc/vigie/controlplane.yaml", "/etc/vigie/edge.yaml"}; !slices.Equal(lines, want) {
			t.Errorf("conffiles %q, want %q (an upgrade must never overwrite the configuration)", lines, want)
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			if st, err := os.Stat(filepath.Join(dir, s)); err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("maintainer script %s missing or not executable", s)
			}
		}
	})

	t.Run("install", func(t *testing.T) {
		tstest.RequireRoot(t)
		dpkg := needTool(t, "dpkg", "dpkg")
		root := t.TempDir()
		for _, d := range []string{"var/lib/dpkg/updates", "var/lib/dpkg/info", "etc"} {
			os.MkdirAll(filepath.Join(root, d), 0o755)
		}
		os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
		// Maintainer scripts run on the host with DPKG_ROOT set
		// (--force-script-chrootless): they must touch only the root.
		run := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(dpkg, append([]string{"--root=" + root, "--force-script-chrootless", "--force-not-root"}, args...)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		run("-i", deb)

		passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
		if err != nil || !regexp.MustCompile(`(?m)^vigie:x:[0-9]+:[0-9]+:.*:/var/lib/vigie:`).Match(passwd) {
			t.Errorf("postinst did not create the vigie account in the target root: %v\n%s", err, passwd)
		}
		st, err := os.Stat(filepath.Join(root, "etc/vigie"))
		if err != nil || st.Mode().Perm() != 0o750 {
			t.Errorf("/etc/vigie: %v, mode %v, want 0750", err, st)
		}
		installed := filepath.Join(root, "usr/bin/vigie")
		out, err := exec.Command(installed, "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), testVersion) {
			t.Errorf("installed vigie version: %v %q, want %s", err, out, testVersion)
		}
		// The units as installed, pointed at the installed binary.
		dir := t.TempDir()
		for _, u := range units {
			data, err := os.ReadFile(filepath.Join(root, "lib/systemd/system", u))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, u), []byte(strings.ReplaceAll(string(data), "ExecStart=/usr/bin/vigie ", "ExecStart="+installed+" ")), 0o644)
		}
		verifyUnits(t, dir)

		// A purge keeps the journal: the law asks for a year of it.
		keep := filepath.Join(root, "var/lib/vigie/journal/segment-1")
		os.MkdirAll(filepath.Dir(keep), 0o750)
		os.WriteFile(keep, []byte("journal"), 0o640)
		// It keeps the secrets an operator added, and says which and how
		// to destroy them.
		secrets := []string{filepath.Join(root, "etc/vigie/academie.key"), filepath.Join(root, "etc/vigie/edge.token"),
			filepath.Join(root, "etc/vigie/tls/key.pem"), filepath.Join(root, "etc/vigie/sso-secret")}
		for _, f := range secrets {
			os.MkdirAll(filepath.Dir(f), 0o750)
			os.WriteFile(f, []byte("secret"), 0o640)
		}
		purge := run("--purge", "vigie")
		for _, want := range append([]string{"-type f -exec shred -u {} +", "/var/lib/vigie kept", "vigie account is kept"}, secrets...) {
			if !strings.Contains(purge, want) {
				t.Errorf("purge does not say %q:\n%s", want, purge)
			}
		}
		for _, f := range secrets {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("purge removed %s: %v", f, err)
			}
		}
		if _, err := os.Stat(installed); !os.IsNotExist(err) {
			t.Errorf("purge left %s: %v", installed, err)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/vigie/edge.yaml")); !os.IsNotExist(err) {
			t.Errorf("purge left the configuration: %v", err)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("purge removed the journal: %v", err)
		}
	})
}

func TestBuildDebRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "vigie")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	notExe := filepath.Join(dir, "data")
	os.WriteFile(notExe, []byte("x"), 0o644)
	cases := []struct {
		name string
		o    DebOptions
		want string
	}{
		{"bad version", DebOptions{Root: "..", Binary: exe, Version: "v1", Out: dir}, "version"},
		{"missing binary", DebOptions{Root: "..", Binary: filepath.Join(dir, "nope"), Version: "1.0.0", Out: dir}, "not an executable"},
		{"binary not executable", DebOptions{Root: "..", Binary: notExe, Version: "1.0.0", Out: dir}, "not an executable"},
		{"no nfpm.yaml", DebOptions{Root: dir, Binary: exe, Version: "1.0.0", Out: dir}, "nfpm.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := BuildDeb(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("BuildDeb: %v, want an error naming %q", err, c.want)
			}
		})
	}
}
