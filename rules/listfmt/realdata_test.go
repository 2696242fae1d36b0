package listfmt

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// blocklists holds the real lists the tests read (see its README.md for
// sources and licences). Tests fail rather than skip when it is missing: a
// pass that read nothing proves nothing.
const blocklists = "../../testdata/blocklists"

func TestRealUT1Tree(t *testing.T) {
	tree, probs, err := ReadTree(filepath.Join(blocklists, "ut1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Logf("tree problem: %v", p)
	}
	if n := len(tree.Categories); n < 60 {
		t.Errorf("%d categories, want at least 60", n)
	}
	for _, tt := range []struct{ alias, id string }{
		{"porn", "adult"},
		{"proxy", "redirector"},
		{"ads", "publicite"},
		{"stockage", "filehosting"}, // from filehosting/usage
		{"adult", "adult"},
	} {
		t.Run("alias "+tt.alias, func(t *testing.T) {
			c, ok := tree.Category(tt.alias)
			if !ok || c.ID != tt.id {
				t.Fatalf("Category(%q) = %v, %v; want %q", tt.alias, c, ok, tt.id)
			}
		})
	}
	adult, _ := tree.Category("adult")
	if adult.NameFR != "Adulte (X)" || adult.Usage != "black" || !contains(adult.Aliases, "porn") {
		t.Errorf("adult = %+v", *adult)
	}
	redirector, _ := tree.Category("redirector")
	if !contains(redirector.Aliases, "proxy") {
		t.Errorf("redirector aliases %q lack proxy", redirector.Aliases)
	}
	if c, _ := tree.Category("liste_blanche"); c.Usage != "white" {
		t.Errorf("liste_blanche usage %q, want white", c.Usage)
	}

	totals := map[Kind]int{}
	strict, rejected, lines := 0, 0, 0
	for i := range tree.Categories {
		c := &tree.Categories[i]
		reps, err := tree.Parse(c, func(e Entry) {
			totals[e.Kind]++
			if e.Strict {
				strict++
			}
		})
		if err != nil {
			t.Fatalf("category %s: %v", c.ID, err)
		}
		for _, r := range reps {
			rejected += r.Rejected
			lines += r.Accepted + r.Rejected
			for _, p := range r.Problems {
				t.Logf("list problem: %v", p)
			}
		}
	}
	t.Logf("UT1: %d categories, %d domains, %d URLs, %d expressions (%d strict), %d rejected",
		len(tree.Categories), totals[Domain], totals[URL], totals[Expression], strict, rejected)
	if n := totals[Domain]; n < 550_000 || n > 700_000 {
		t.Errorf("%d domain entries, want about 600,000", n)
	}
	if totals[URL] < 40_000 || totals[Expression] < 5 || strict == 0 {
		t.Errorf("too few URL (%d) or expression (%d, strict %d) entries", totals[URL], totals[Expression], strict)
	}
	if rejected > lines/1000 {
		t.Errorf("%d of %d entries rejected, want under 0.1%%", rejected, lines)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestRealAdultTop1M(t *testing.T) {
	for _, f := range []Format{FormatPlain, FormatAuto} {
		t.Run(f.String(), func(t *testing.T) {
			fh, err := os.Open(filepath.Join(blocklists, "adult-top1m", "domains"))
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			n := 0
			rep, err := ParseDomains(fh, fh.Name(), f, func(Entry) { n++ })
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				t.Logf("problem: %v", p)
			}
			if n != 11_868 || rep.Accepted != n || rep.Rejected != 0 {
				t.Errorf("%d entries, Accepted %d, Rejected %d; want 11868, 11868, 0", n, rep.Accepted, rep.Rejected)
			}
		})
	}
}

// BenchmarkParseDomainsUT1 parses the largest real domain file of the
// snapshot (redirector, 132 k lines) from memory.
func BenchmarkParseDomainsUT1(b *testing.B) {
	path := filepath.Join(blocklists, "ut1", "redirector", "domains")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Count(data, []byte{'\n'})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		rep, err := ParseDomains(bytes.NewReader(data), path, FormatPlain, func(Entry) {})
		if err != nil || rep.Accepted != lines {
			b.Fatalf("accepted %d of %d lines: %v", rep.Accepted, lines, err)
		}
	}
	runtime.ReadMemStats(&after)
	total := float64(lines) * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/line")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/line")
}
