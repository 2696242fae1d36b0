// Package deploy holds what an académie installs and runs Vigie with: the
// Debian package description (nfpm.yaml), the hardened systemd units, the
// example configurations, the Grafana dashboard and the Prometheus alert
// rules. Its Go code builds the package; its tests check every one of those
// files against the code they describe (config fields, metric names, unit
// syntax, package contents).
package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

// DebOptions say what to pack and where.
type DebOptions struct {
	// Root is the repository root: nfpm.yaml lives in Root/deploy and its
	// source paths are relative to Root.
	Root string
	// Binary is the vigie executable to ship (see BuildBinary).
	Binary string
	// Version is the package version (semver, e.g. 1.2.0 or 1.2.0-rc.1).
	Version string
	// Arch is the Go architecture (amd64, arm64; nfpm maps it to
	// Debian's name); empty means the running one.
	Arch string
	// Out is the .deb file to write, or a directory to write it in under
	// Debian's conventional name.
	Out string
}

var versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+([-+~][0-9A-Za-z.+~-]+)?$`)

// BuildDeb packs the Debian package described by deploy/nfpm.yaml and
// returns the path of the file written.
func BuildDeb(o DebOptions) (string, error) {
	if !versionRE.MatchString(o.Version) {
		return "", fmt.Errorf("deploy: deb: version %q is not x.y.z[-pre]", o.Version)
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return "", fmt.Errorf("deploy: deb: %w", err)
	}
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return "", fmt.Errorf("deploy: deb: %w", err)
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("deploy: deb: binary %s is not an executable file", bin)
	}
	env := map[string]string{"VERSION": o.Version, "ARCH": o.Arch, "VIGIE_BINARY": bin}
	spec := filepath.Join(root, "deploy", "nfpm.yaml")
	cfg, err := nfpm.ParseFileWithEnvMapping(spec, func(k string) string { return env[k] })
	if err != nil {
		return "", fmt.Errorf("deploy: deb: %s: %w", spec, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", fmt.Errorf("deploy: deb: %s: %w", spec, err)
	}
	// nfpm resolves sources against the working directory; anchor them at
	// the repository root so the build works from anywhere (tests run in
	// deploy/).
	for _, c := range info.Contents {
		if c.Source != "" && !filepath.IsAbs(c.Source) {
			c.Source = filepath.Join(root, c.Source)
		}
	}
	for _, s := range []*string{&info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove, &info.Scripts.PreInstall} {
		if *s != "" && !filepath.IsAbs(*s) {
			*s = filepath.Join(root, *s)
		}
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("deploy: deb: %s: %w", spec, err)
	}
	pkg := deb.Default
	out := o.Out
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		out = filepath.Join(out, pkg.ConventionalFileName(info))
	}
	info.Target = out
	tmp, err := os.CreateTemp(filepath.Dir(out), ".vigie-deb-*")
	if err != nil {
		return "", fmt.Errorf("deploy: deb: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := pkg.Package(info, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("deploy: deb: pack: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("deploy: deb: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("deploy: deb: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("deploy: deb: %w", err)
	}
	return out, nil
}

// BinaryOptions say how to compile the vigie binary.
type BinaryOptions struct {
	Root    string // repository root
	GOARCH  string // empty: the running architecture
	Version string // stamped into vigie/cli.Version
	Out     string // the executable to write
	// Release builds what ships: static (no cgo), paths trimmed. Tests
	// leave it off so the build reuses the cache of "go test ./...".
	Release bool
}

// BuildBinary compiles vigie for linux.
func BuildBinary(ctx context.Context, o BinaryOptions) error {
	if o.GOARCH == "" {
		o.GOARCH = runtime.GOARCH
	}
	args := []string{"build"}
	ldflags := "-X vigie/cli.Version=" + o.Version
	env := append(os.Environ(), "GOOS=linux", "GOARCH="+o.GOARCH)
	if o.Release {
		args = append(args, "-trimpath")
		ldflags = "-s -w " + ldflags
		env = append(env, "CGO_ENABLED=0")
	}
	args = append(args, "-ldflags", ldflags, "-o", o.Out, ".")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.Root
	cmd.Env = env
	msg, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("deploy: go build: %w\n%s", err, strings.TrimSpace(string(msg)))
		}
		return fmt.Errorf("deploy: go build: %w", err)
	}
	return nil
}
