package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// metricFamily is one vigie_* metric registered somewhere in the code,
// found by reading the source rather than by running it, so that the
// dashboard and alert checks cover components that cannot start in a
// unit test (the firewall needs root and a network namespace).
type metricFamily struct {
	Name   string
	Kind   string // counter, gauge, histogram, summary, untyped (custom collector)
	Labels []string
	Help   string
	Pos    string // file:line, relative to the repository root
}

// seriesNames are the names a family exposes in the text format.
func (m metricFamily) seriesNames() []string {
	switch m.Kind {
	case "histogram":
		return []string{m.Name + "_bucket", m.Name + "_sum", m.Name + "_count"}
	case "summary":
		return []string{m.Name, m.Name + "_sum", m.Name + "_count"}
	}
	return []string{m.Name}
}

var optsKinds = map[string]string{
	"CounterOpts":   "counter",
	"GaugeOpts":     "gauge",
	"HistogramOpts": "histogram",
	"SummaryOpts":   "summary",
}

var metricNameRE = regexp.MustCompile(`^vigie_[a-z0-9_]+$`)

var (
	registeredOnce sync.Once
	registered     map[string]metricFamily
	registeredErr  error
)

// registeredMetrics reads every non-test Go file of the repository and
// returns the vigie_* families it registers, by name.
func registeredMetrics(t *testing.T) map[string]metricFamily {
	t.Helper()
	registeredOnce.Do(func() { registered, registeredErr = scanMetrics("..") })
	if registeredErr != nil {
		t.Fatal(registeredErr)
	}
	if len(registered) == 0 {
		t.Fatal("no vigie_* metric registration found in the repository: the scanner is broken")
	}
	return registered
}

// registeredSeries maps every exposed series name (a histogram's _bucket,
// _sum and _count included) to its family.
func registeredSeries(t *testing.T) map[string]metricFamily {
	out := map[string]metricFamily{}
	for _, m := range registeredMetrics(t) {
		for _, s := range m.seriesNames() {
			out[s] = m
		}
	}
	return out
}

func scanMetrics(root string) (map[string]metricFamily, error) {
	out := map[string]metricFamily{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git", "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(src), "vigie_") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			// Another engineer's file may be mid-edit; its metrics are
			// then missing and the checks that need them say so.
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range metricsInFile(fset, f, rel) {
			if prev, ok := out[m.Name]; ok && prev.Pos != m.Pos {
				// Registered in two places (two components, or a
				// constructor per mode): keep the first, they must agree.
				if prev.Kind != m.Kind && m.Kind != "untyped" && prev.Kind != "untyped" {
					return fmt.Errorf("%s: metric %s registered as %s here and as %s at %s", m.Pos, m.Name, m.Kind, prev.Kind, prev.Pos)
				}
				continue
			}
			out[m.Name] = m
		}
		return nil
	})
	return out, err
}

// metricsInFile finds prometheus.XxxOpts{Name: "vigie_..."} literals (with
// their Namespace and Subsystem when those are literals too, and the label
// list of the enclosing NewXxxVec call) and prometheus.NewDesc("vigie_...").
func metricsInFile(fset *token.FileSet, f *ast.File, rel string) []metricFamily {
	var out []metricFamily
	labelsOf := map[*ast.CompositeLit][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		name := calleeName(call.Fun)
		switch {
		case name == "NewDesc" && len(call.Args) >= 3:
			s, ok := stringLit(call.Args[0])
			if !ok || !metricNameRE.MatchString(s) {
				return true
			}
			help, _ := stringLit(call.Args[1])
			kind := "untyped"
			if strings.HasSuffix(s, "_total") {
				kind = "counter"
			}
			out = append(out, metricFamily{Name: s, Kind: kind, Labels: stringList(call.Args[2]), Help: help, Pos: pos(fset, call, rel)})
		case strings.HasPrefix(name, "New") && strings.HasSuffix(name, "Vec") && len(call.Args) == 2:
			if lit, ok := call.Args[0].(*ast.CompositeLit); ok {
				labelsOf[lit] = stringList(call.Args[1])
			}
		}
		return true
	})
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		kind, ok := optsKinds[calleeName(lit.Type)]
		if !ok {
			return true
		}
		var ns, sub, name, help string
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			key, _ := kv.Key.(*ast.Ident)
			if key == nil {
				continue
			}
			v, _ := stringLit(kv.Value)
			switch key.Name {
			case "Namespace":
				ns = v
			case "Subsystem":
				sub = v
			case "Name":
				name = v
			case "Help":
				help = v
			}
		}
		full := name
		if sub != "" {
			full = sub + "_" + full
		}
		if ns != "" {
			full = ns + "_" + full
		}
		if metricNameRE.MatchString(full) {
			out = append(out, metricFamily{Name: full, Kind: kind, Labels: labelsOf[lit], Help: help, Pos: pos(fset, lit, rel)})
		}
		return true
	})
	return out
}

func calleeName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}

func stringLit(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		}
	case *ast.BinaryExpr: // "a" + "b"
		if x.Op == token.ADD {
			l, ok1 := stringLit(x.X)
			r, ok2 := stringLit(x.Y)
			return l + r, ok1 && ok2
		}
	}
	return "", false
}

func stringList(e ast.Expr) []string {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range lit.Elts {
		if s, ok := stringLit(el); ok {
			out = append(out, s)
		} else {
			out = append(out, "?")
		}
	}
	return out
}

func pos(fset *token.FileSet, n ast.Node, rel string) string {
	return fmt.Sprintf("%s:%d", filepath.ToSlash(rel), fset.Position(n.Pos()).Line)
}

// TestScannerFindsKnownMetrics guards the scanner itself: if it stopped
// finding registrations, every dashboard check would pass vacuously or
// fail for the wrong reason.
func TestScannerFindsKnownMetrics(t *testing.T) {
	got := registeredMetrics(t)
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d vigie_* metric families registered in the code", len(names))
	for _, n := range names {
		m := got[n]
		t.Logf("  %-55s %-9s %-28s %s", n, m.Kind, strings.Join(m.Labels, ","), m.Pos)
	}
	for _, want := range []struct{ name, kind string }{
		{"vigie_dns_queries_total", "counter"},
		{"vigie_dns_query_duration_seconds", "histogram"},
		{"vigie_http_requests_total", "counter"},
	} {
		m, ok := got[want.name]
		if !ok {
			t.Errorf("scanner did not find %s", want.name)
			continue
		}
		if m.Kind != want.kind {
			t.Errorf("%s: kind %s, want %s", want.name, m.Kind, want.kind)
		}
	}
}

// TestScannerCases runs the scanner on small sources.
func TestScannerCases(t *testing.T) {
	cases := []struct {
		name, src string
		want      []metricFamily
	}{
		{"counter vec", `package x
var c = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_a_total", Help: "h"}, []string{"verdict"})`,
			[]metricFamily{{Name: "vigie_a_total", Kind: "counter", Labels: []string{"verdict"}, Help: "h"}}},
		{"namespace and subsystem", `package x
var g = promauto.With(r).NewGauge(prometheus.GaugeOpts{Namespace: "vigie", Subsystem: "sync", Name: "serial"})`,
			[]metricFamily{{Name: "vigie_sync_serial", Kind: "gauge"}}},
		{"histogram", `package x
var h = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigie_b_seconds"})`,
			[]metricFamily{{Name: "vigie_b_seconds", Kind: "histogram"}}},
		{"desc", `package x
var d = prometheus.NewDesc("vigie_c_total", "help", []string{"reason", "zone"}, nil)`,
			[]metricFamily{{Name: "vigie_c_total", Kind: "counter", Labels: []string{"reason", "zone"}, Help: "help"}}},
		{"not a metric", `package x
const CookieName = "vigie_session"
var o = Options{Name: "vigie_x"}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", c.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := metricsInFile(fset, f, "x.go")
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range got {
				g, w := got[i], c.want[i]
				if g.Name != w.Name || g.Kind != w.Kind || strings.Join(g.Labels, ",") != strings.Join(w.Labels, ",") || g.Help != w.Help {
					t.Errorf("got %+v, want %+v", g, w)
				}
			}
		})
	}
}
