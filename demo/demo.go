// Package demo holds the embedded defaults of "vigie demo": a policy for one
// collège and sample blocklists, so that a newcomer sees real filtering on a
// fresh machine without downloading anything.
package demo

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"vigie/rules/policy"
)

//go:embed policy.yaml
var policyYAML []byte

//go:embed all:sample
var sample embed.FS

// UAI is the demo school.
const UAI = "0671234X"

// PolicyYAML returns the demo policy text.
func PolicyYAML() []byte { return policyYAML }

// Policy returns the demo policy reading its lists from listsDir, a folder
// holding ut1/ and adult-top1m/.
func Policy(listsDir string) (*policy.Policy, error) {
	p, err := policy.Parse(policyYAML, "demo/policy.yaml")
	if err != nil {
		return nil, err
	}
	p.Dir = listsDir
	return p, nil
}

// WriteSample copies the embedded sample lists into dir and returns dir.
func WriteSample(dir string) (string, error) {
	err := fs.WalkDir(sample, "sample", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("sample", path)
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := sample.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("demo: write sample lists: %w", err)
	}
	return dir, nil
}

// FindLists returns the lists folder to use: explicit if set, else
// ../shared/blocklists (or testdata/blocklists) near the working directory
// when present, else "" (use the embedded sample).
func FindLists(explicit string) string {
	if explicit != "" {
		return explicit
	}
	for _, c := range []string{"../shared/blocklists", "testdata/blocklists"} {
		if st, err := os.Stat(filepath.Join(c, "ut1")); err == nil && st.IsDir() {
			abs, err := filepath.Abs(c)
			if err == nil {
				return abs
			}
		}
	}
	return ""
}
