// Command mkdeb builds Vigie's Debian package: it compiles a static vigie
// binary and packs it with the units, example configuration, dashboard and
// alert rules described by deploy/nfpm.yaml.
//
//	go run ./deploy/mkdeb -version 1.0.0 -out dist/
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"vigie/deploy"
)

func main() {
	version := flag.String("version", "0.0.0-dev", "package version (semver)")
	arch := flag.String("arch", runtime.GOARCH, "Go architecture to build for (amd64, arm64...)")
	out := flag.String("out", ".", "the .deb file to write, or a directory")
	root := flag.String("root", ".", "repository root")
	binary := flag.String("binary", "", "ship this vigie binary instead of building one")
	flag.Parse()
	if err := run(*root, *version, *arch, *out, *binary); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run(root, version, arch, out, binary string) error {
	dir := out
	if filepath.Ext(out) == ".deb" {
		dir = filepath.Dir(out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if binary == "" {
		dir, err := os.MkdirTemp("", "vigie-mkdeb-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "vigie")
		if err := deploy.BuildBinary(context.Background(), deploy.BinaryOptions{Root: root, GOARCH: arch, Version: version, Out: binary, Release: true}); err != nil {
			return err
		}
	}
	path, err := deploy.BuildDeb(deploy.DebOptions{Root: root, Binary: binary, Version: version, Arch: arch, Out: out})
	if err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}
