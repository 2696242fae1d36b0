package ui

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCatalog: every key the templates and the code name exists, so that
// no page shows a bracketed key; dynamic keys (print "prefix." x) are
// checked by the pages tests, which fail on "⟦".
func TestCatalog(t *testing.T) {
	static := regexp.MustCompile(`\{\{-?\s*t\s+"([a-z0-9_.]+)"|\bT\("([a-z0-9_.]+)"`)
	seen := 0
	check := func(name string, data []byte) {
		for _, m := range static.FindAllSubmatch(data, -1) {
			key := string(m[1]) + string(m[2])
			if strings.HasSuffix(key, ".") {
				continue
			}
			seen++
			if !Has(key) {
				t.Errorf("%s: key %q is not in the catalogue", name, key)
			}
		}
	}
	fs.WalkDir(templateFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := templateFS.ReadFile(p)
			check(p, b)
		}
		return nil
	})
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f)
		check(f, b)
	}
	if seen < 300 {
		t.Errorf("only %d keys found: the pattern no longer matches the templates", seen)
	}
	for k, v := range current {
		if strings.TrimSpace(v) == "" {
			t.Errorf("key %q has no text", k)
		}
	}
}
