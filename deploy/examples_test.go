package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"vigie/controlplane"
	"vigie/proxy/edge"
)

// TestEdgeExampleLoads loads the shipped example with the edge's own strict
// loader: a renamed or removed field fails here before it fails on a
// gateway.
func TestEdgeExampleLoads(t *testing.T) {
	cfg, err := edge.LoadConfig(filepath.Join("examples", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UAI != "0671234X" || cfg.StateDir != "/var/lib/vigie/edge" || cfg.PublicKey == "" {
		t.Errorf("example edge config: uai %q, state_dir %q, public_key %q", cfg.UAI, cfg.StateDir, cfg.PublicKey)
	}
	if !cfg.Firewall.Enabled || cfg.Metrics.Listen == "" || cfg.ControlPlane.URL == "" || cfg.DNS.Listen == "" {
		t.Errorf("example edge config leaves a component off: %+v", cfg)
	}
	// The firewall redirects to the ports the listeners use.
	for _, c := range []struct {
		name   string
		listen string
		port   uint16
	}{
		{"dns", cfg.DNS.Listen, cfg.Firewall.DNSPort},
		{"http", cfg.HTTP.TransparentHTTP, cfg.Firewall.HTTPPort},
		{"https", cfg.HTTP.TransparentHTTPS, cfg.Firewall.HTTPSPort},
	} {
		if !strings.HasSuffix(c.listen, ":"+strconv.Itoa(int(c.port))) {
			t.Errorf("example: firewall redirects %s to port %d but the listener is %q", c.name, c.port, c.listen)
		}
	}
}

// TestEdgeExampleRefusesUnknownField proves the strictness the example
// relies on: a misspelt key is an error naming it.
func TestEdgeExampleRefusesUnknownField(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("examples", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "edge.yaml")
	os.WriteFile(bad, []byte(strings.Replace(string(data), "\nstate_dir:", "\nstate_directory:", 1)), 0o600)
	_, err = edge.LoadConfig(bad)
	if err == nil || !strings.Contains(err.Error(), "state_directory") {
		t.Errorf("LoadConfig with a misspelt key: %v, want an error naming state_directory", err)
	}
}

// TestEdgeExampleDocumentsEveryField walks the configuration types and
// requires each YAML key to appear in the example, set or commented out,
// so that a field added to the edge shows up where operators look.
func TestEdgeExampleDocumentsEveryField(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("examples", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeFor[edge.Config](), "") {
		name := key[strings.LastIndex(key, ".")+1:]
		re := regexp.MustCompile(`(?m)^\s*(#\s*)?` + regexp.QuoteMeta(name) + `:`)
		if !re.Match(data) {
			t.Errorf("examples/edge.yaml does not mention %s", key)
		}
	}
}

// yamlKeys lists the dotted YAML paths of a struct type's fields, nested
// structs included.
func yamlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		opts := strings.Split(f.Tag.Get("yaml"), ",")
		tag := opts[0]
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if slices.Contains(opts[1:], "inline") {
			// An inlined struct's keys sit beside the others.
			out = append(out, yamlKeys(f.Type, prefix)...)
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		path := prefix + tag
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" {
			out = append(out, path)
			out = append(out, yamlKeys(ft, path+".")...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// TestControlPlaneExampleLoads loads the shipped example with the control
// plane's own strict loader.
func TestControlPlaneExampleLoads(t *testing.T) {
	path := filepath.Join("examples", "controlplane.yaml")
	cfg, err := controlplane.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/vigie/controlplane" || cfg.Key != "/etc/vigie/academie.key" || cfg.MetricsListen == "" {
		t.Errorf("example control plane config: %+v", cfg)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeFor[controlplane.Config](), "") {
		name := key[strings.LastIndex(key, ".")+1:]
		if !regexp.MustCompile(`(?m)^\s*(#\s*)?` + regexp.QuoteMeta(name) + `:`).Match(data) {
			t.Errorf("examples/controlplane.yaml does not mention %s", key)
		}
	}
}

// TestGuideScrapeTargetsMatchExamples: the operator guide's Prometheus
// targets are the metrics addresses of the example configurations, so
// an operator copying both gets a scrape that connects.
func TestGuideScrapeTargetsMatchExamples(t *testing.T) {
	ecfg, err := edge.LoadConfig(filepath.Join("examples", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := controlplane.LoadConfig(filepath.Join("examples", "controlplane.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile(filepath.Join("..", "docs", "operator-guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, monitoring, ok := strings.Cut(string(guide), "## 7. Monitoring")
	if !ok {
		t.Fatal("the guide has no monitoring section")
	}
	monitoring, _, _ = strings.Cut(monitoring, "\n## ")
	want := map[string]bool{ecfg.Metrics.Listen: false, ccfg.MetricsListen: false}
	for _, m := range regexp.MustCompile(`targets: \["([^"]+)"\]`).FindAllStringSubmatch(monitoring, -1) {
		if _, ok := want[m[1]]; !ok {
			t.Errorf("the guide scrapes %s, which no example configuration listens on (%s, %s)", m[1], ecfg.Metrics.Listen, ccfg.MetricsListen)
			continue
		}
		want[m[1]] = true
	}
	for addr, seen := range want {
		if !seen {
			t.Errorf("the guide never scrapes %s, the metrics address of an example configuration", addr)
		}
	}
}
