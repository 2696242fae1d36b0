package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// dashboard is the part of Grafana's JSON model the checks read.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // collapsed rows
}

// query is one PromQL expression of the dashboard or the alert rules, with
// where it comes from for error messages.
type query struct {
	Where string
	Expr  string
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("grafana", "vigie.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/vigie.json: %v", err)
	}
	return d
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// dashboardQueries returns every panel target and annotation expression.
func dashboardQueries(d dashboard) []query {
	var out []query
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, query{fmt.Sprintf("annotation %q", a.Name), a.Expr})
		}
	}
	return out
}

// alertQueries returns the expression of every rule of alerts.yml.
func alertQueries(t *testing.T) []query {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	var out []query
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, query{"alert " + r.Alert, r.Expr})
		}
	}
	return out
}

// grafanaVars replaces Grafana's variables with what Prometheus would see,
// so the expression can be parsed and run.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h", `"$uai"`, `".*"`, "${uai}", ".*", "$uai", ".*")

// metricRefRE finds metric names in PromQL. Vigie's all start with vigie_;
// label names and values never do (a label value would be quoted, and the
// regexp would still find it: quoted names count as references too, which
// is the strict side to err on).
var metricRefRE = regexp.MustCompile(`\bvigie_[a-zA-Z0-9_]+`)

// unknownMetrics returns the vigie_* names the queries use that no code
// registers, each with the first query using it.
func unknownMetrics(qs []query, known map[string]metricFamily) map[string]string {
	out := map[string]string{}
	for _, q := range qs {
		for _, name := range metricRefRE.FindAllString(q.Expr, -1) {
			if _, ok := known[name]; !ok {
				if _, seen := out[name]; !seen {
					out[name] = q.Where
				}
			}
		}
	}
	return out
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 {
		t.Errorf("dashboard title %q uid %q schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["uai"] != "query" {
		t.Errorf("templating variables %v: want a datasource variable and a uai query", vars)
	}
	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource must be the ${datasource} variable, so the dashboard imports anywhere", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s has an empty expression", p.Title, tg.RefID)
			}
		}
	}
	// The panels the issue asks for, found by the metrics they read.
	qs := dashboardQueries(d)
	for _, want := range []string{
		"vigie_dns_queries_total", "vigie_dns_query_duration_seconds_bucket", "vigie_http_requests_total",
		"vigie_http_request_duration_seconds_bucket", "vigie_dns_cache_hits_total", "vigie_dns_upstream_errors_total",
		"vigie_firewall_dropped_packets_total", "vigie_edge_policy_serial", "vigie_journal_ship_lag_records",
		"vigie_journal_dropped_records_total", "vigie_controlplane_publishes_total", "vigie_controlplane_serial",
	} {
		found := false
		for _, q := range qs {
			if strings.Contains(q.Expr, want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no panel reads %s", want)
		}
	}
}

// TestDashboardAndAlertsNameRealMetrics fails when a panel or an alert
// names a metric that no code registers (a rename, a typo, a metric never
// built): such a panel would stay empty without anyone noticing.
func TestDashboardAndAlertsNameRealMetrics(t *testing.T) {
	known := registeredSeries(t)
	qs := append(dashboardQueries(loadDashboard(t)), alertQueries(t)...)
	unknown := unknownMetrics(qs, known)
	for _, name := range sortedKeys(unknown) {
		t.Errorf("%s names %s, which no Go code registers", unknown[name], name)
	}
}

// TestUnknownMetricIsCaught proves the check above can fail.
func TestUnknownMetricIsCaught(t *testing.T) {
	known := map[string]metricFamily{"vigie_dns_queries_total": {}, "vigie_dns_query_duration_seconds_bucket": {}}
	cases := []struct {
		expr string
		want []string
	}{
		{`sum(rate(vigie_dns_queries_total[5m]))`, nil},
		{`histogram_quantile(0.99, sum by (le) (rate(vigie_dns_query_duration_seconds_bucket[1m])))`, nil},
		{`sum(rate(vigie_dns_query_total[5m]))`, []string{"vigie_dns_query_total"}},
		{`vigie_dns_queries_total / vigie_dns_answers_total`, []string{"vigie_dns_answers_total"}},
		{`histogram_quantile(0.5, rate(vigie_dns_query_duration_seconds[1m]))`, []string{"vigie_dns_query_duration_seconds"}},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			got := sortedKeys(unknownMetrics([]query{{"test", c.expr}}, known))
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("unknown %v, want %v", got, c.want)
			}
		})
	}
}

// TestDashboardQueriesParse hands every dashboard expression to promtool
// as a recording rule: a PromQL syntax error fails here.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	qs := dashboardQueries(loadDashboard(t))
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		expr, _ := json.Marshal(grafanaVars.Replace(q.Expr))
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	os.WriteFile(path, []byte(b.String()), 0o644)
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules on the dashboard's %d queries: %v\n%s", len(qs), err, out)
	}
}

func TestAlertRules(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(promtool, args...)
			cmd.Dir = "prometheus"
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestAlertsHaveRunbooks checks every alert links to a section of the
// operator guide that exists.
func TestAlertsHaveRunbooks(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join("..", "docs", "operator-guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(guide), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	data, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			rb := r.Annotations["runbook"]
			anchor, ok := strings.CutPrefix(rb, "operator-guide.md#")
			if !ok || !anchors[anchor] {
				t.Errorf("%s: runbook %q is not a heading of docs/operator-guide.md", r.Alert, rb)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description are required", r.Alert)
			}
		}
	}
	sort.Strings(names)
	t.Logf("%d alerts: %s", len(names), strings.Join(names, ", "))
}

// githubAnchor is how GitHub and most Markdown renderers name a heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
