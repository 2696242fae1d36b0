package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/auth"
	"vigie/controlplane/report"
	"vigie/controlplane/store"
)

// reportFixture is a fixed report of one school: every section filled,
// partial coverage where the history started in the year, an ongoing
// outage, categories beyond the chart's ten.
func reportFixture() *report.Report {
	at := func(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, paris).UTC() }
	since := at(3, 1, 0)
	part := report.Coverage{From: since, To: at(12, 7, 10)}
	r := &report.Report{Year: 2026, UAI: monnet, Title: "Collège Jean Monnet",
		From: at(1, 1, 0), To: time.Date(2027, 1, 1, 0, 0, 0, 0, paris).UTC(), Until: at(12, 7, 10), Generated: at(12, 7, 10),
		Schools: []report.School{{UAI: monnet, Name: "Collège Jean Monnet", Commune: "Strasbourg", Edges: 2}}}
	r.Versions = report.Versions{Coverage: part,
		Published: []report.Version{{Serial: 12, Created: at(2, 3, 9), Comment: "Rentrée de février"}, {Serial: 13, Created: at(4, 10, 14), Comment: "Retour arrière", RollbackOf: 11}},
		Applied:   []report.Applied{{Edge: "0671234x-1", UAI: monnet, Serial: 13, At: at(4, 10, 15), Delay: time.Hour}},
		InForce:   []report.EdgeVersion{{Edge: "0671234x-1", UAI: monnet, Serial: 13, Software: "vigie 1.4.0", LastSeen: at(12, 7, 9)}, {Edge: "0671234x-2", UAI: monnet, Serial: 12, LastSeen: at(11, 30, 8)}}}
	r.Versions.Monthly[1], r.Versions.Monthly[3] = 1, 1
	r.Availability = report.Availability{Coverage: part, OfflineAfter: 70 * time.Second, Permille: 981,
		Edges:   []report.EdgeAvailable{{Edge: "0671234x-1", UAI: monnet, Permille: 999, Down: 3 * time.Hour, Outages: 1}, {Edge: "0671234x-2", UAI: monnet, Permille: 963, Down: 7*24*time.Hour + 2*time.Hour, Outages: 1}},
		Outages: []report.Outage{{Edge: "0671234x-1", UAI: monnet, From: at(5, 12, 8), To: at(5, 12, 11)}, {Edge: "0671234x-2", UAI: monnet, From: at(11, 30, 8), To: at(12, 7, 10), Ongoing: true}}}
	r.Availability.MonthlyMinutes[4], r.Availability.MonthlyMinutes[10], r.Availability.MonthlyMinutes[11] = 180, 960, 9240
	b := &report.Blocked{Coverage: report.Coverage{From: at(6, 10, 10), To: at(12, 7, 10)}, Retention: 180 * 24 * time.Hour}
	for i, id := range []string{"adult", "games", "social_networks", "agressif", "?", "a", "b", "c", "d", "e", "f", "g", ""} {
		c := report.CategoryMonths{ID: id, Label: map[string]string{"adult": "Adulte", "games": "Jeux en ligne"}[id]}
		for m := 5; m < 12; m++ {
			c.Monthly[m] = int64((13-i)*(m+1)*7) % 997
			c.Total += c.Monthly[m]
			b.Monthly[m] += c.Monthly[m]
			b.Allowed[m] += 10 * c.Monthly[m]
			b.Total += c.Monthly[m]
		}
		b.Categories = append(b.Categories, c)
	}
	r.Blocked = b
	r.Exports = report.Exports{Completed: 2, Interrupted: 1, Transmitted: 1, Downloaded: 1}
	r.Exports.Monthly[2], r.Exports.Monthly[9] = 1, 1
	r.Incidents = report.Incidents{RefusedCoverage: part, Missing: 40, OpenGaps: 1,
		Refused: []report.Refused{{Edge: "0671234x-2", UAI: monnet, At: at(9, 2, 7), Serial: 12, Error: "signature du bundle invalide"}},
		Gaps:    []report.Gap{{UAI: monnet, Stream: "navigation", At: at(10, 4, 16), First: 1201, Last: 1240}}}
	r.Software = report.Software{Coverage: part,
		InService: []report.SoftwareCount{{Version: "vigie 1.4.0", Edges: []string{"0671234x-1"}}, {Version: "?", Edges: []string{"0671234x-2"}}},
		Changes:   []report.SoftwareChange{{Edge: "0671234x-1", UAI: monnet, At: at(9, 1, 6), Version: "vigie 1.4.0"}}}
	return r
}

// TestYearlyReportGolden: the stand-alone document "vigie admin report
// --out" writes is stable byte for byte; refresh with -update and review.
func TestYearlyReportGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderReport(&buf, reportFixture()); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	golden := filepath.Join("testdata", "golden", "report.html")
	if *update {
		os.MkdirAll(filepath.Dir(golden), 0o755)
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("the report differs from %s (run with -update and review the diff)", golden)
	}
	for _, s := range []string{"⟦", "<link", "<script", "http://", "https://"} {
		if strings.Contains(got, s) {
			t.Errorf("the stand-alone report contains %q: it must need nothing else", s)
		}
	}
	// Five charts, each followed by its table; French typography.
	if n := strings.Count(got, `<svg class="chart"`); n != 5 {
		t.Errorf("%d charts, want 5", n)
	}
	for _, want := range []string{"Période couverte\u00a0: du 01/03/2026", "98,1\u00a0%", "en cours", "7 j 2 h", "Adulte", "Autres catégories",
		"Sans catégorie", "2 extractions complètes", "40 enregistrements manquants", "non communiquée", "@page"} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

// addScopedTechnician creates a technicien of the given scope and signs
// them in.
func (e *env) addScopedTechnician(login, scope string) *client {
	e.t.Helper()
	ctx := context.Background()
	pw := "mot de passe de " + login
	h, _ := auth.HashPassword(pw, auth.Params{Memory: 64, Time: 1, Threads: 1})
	err := e.st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Login: login, Role: string(auth.Technicien), Scope: scope, PasswordHash: h, CreatedAt: time.Now()})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.client()
	if code, _, _ := c.post("/connexion", url.Values{"login": {login}, "password": {pw}}); code != http.StatusSeeOther {
		e.t.Fatalf("login %s: %d", login, code)
	}
	return c
}

// TestYearlyReportScope: the report's API route admits the RSSI and the
// AQSSI everywhere, a scoped technicien in their département (without
// traffic figures), a chef for their school only; every refusal is a
// 403 written in the audit log, and every report generated is audited.
func TestYearlyReportScope(t *testing.T) {
	e := newEnv(t, envOptions{})
	year := strconv.Itoa(e.clock.now().In(paris).Year())
	clients := map[string]*client{"tech67": e.addScopedTechnician("tech67", "067")}
	for _, l := range []string{"rssi", "aqssi", "chef", "audit"} {
		clients[l] = e.login(l)
	}
	get := func(who, query string) (int, *report.Report) {
		t.Helper()
		code, body, _ := clients[who].get(report.Path + "?year=" + year + "&" + query)
		if code != http.StatusOK {
			return code, nil
		}
		var r report.Report
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("%s %s: %v", who, query, err)
		}
		return code, &r
	}
	for _, tc := range []struct {
		who, query string
		want       int
		target     string // the audit entry's target
		blocked    bool   // traffic figures included
	}{
		{"rssi", "uai=" + monnet, 200, "school/" + monnet, true},
		{"rssi", "departement=68", 200, "departement/068", true},
		{"aqssi", "uai=" + hugo, 200, "school/" + hugo, true},
		{"chef", "uai=" + monnet, 200, "school/" + monnet, true},
		{"chef", "uai=" + hugo, 403, "school/" + hugo, false},
		{"chef", "departement=67", 403, "departement/067", false},
		{"tech67", "uai=" + monnet, 200, "school/" + monnet, false},
		{"tech67", "departement=067", 200, "departement/067", false},
		{"tech67", "uai=" + hugo, 403, "school/" + hugo, false},
		{"tech67", "departement=68", 403, "departement/068", false},
		{"audit", "uai=" + monnet, 403, "", false},
		{"rssi", "uai=" + monnet + "&departement=67", 422, "", false},
		{"rssi", "uai=ABC", 422, "", false},
	} {
		t.Run(tc.who+" "+tc.query, func(t *testing.T) {
			before := e.auditCount(t)
			code, r := get(tc.who, tc.query)
			if code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
			entries := e.auditSince(t, before)
			switch {
			case code == 200:
				if r.Blocked != nil != tc.blocked {
					t.Errorf("traffic figures shown=%v, want %v", r.Blocked != nil, tc.blocked)
				}
				if !hasEntry(entries, "report.yearly", tc.target) {
					t.Errorf("no report.yearly entry on %s in %+v", tc.target, entries)
				}
			case tc.target != "":
				if !hasEntry(entries, "access.denied", tc.target) {
					t.Errorf("the refusal is not audited on %s: %+v", tc.target, entries)
				}
			}
		})
	}
	// The school's traffic is counted from the archive (a day of seeded
	// navigation), and the département's report lists its schools.
	if _, r := get("rssi", "uai="+monnet); r == nil || r.Blocked == nil || r.Blocked.Total == 0 || len(r.Schools) != 1 {
		t.Errorf("Jean Monnet's report: %+v", r)
	}
	if _, r := get("rssi", "departement=67"); r == nil || len(r.Schools) != 1 || r.Schools[0].UAI != monnet {
		t.Errorf("Bas-Rhin's report schools: %+v", r)
	}
}

func (e *env) auditCount(t *testing.T) uint64 {
	es, err := e.st.AuditEntries(context.Background(), 0, 1000000)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(len(es))
}

func (e *env) auditSince(t *testing.T, seq uint64) []audit.Entry {
	es, err := e.st.AuditEntries(context.Background(), seq, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func hasEntry(es []audit.Entry, action, target string) bool {
	for _, a := range es {
		if a.Action == action && a.Target == target {
			return true
		}
	}
	return false
}

// TestReportPage: the page's form, and the report under it, for a chef
// (their school, without choosing) and the RSSI (a département).
func TestReportPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	year := strconv.Itoa(e.clock.now().In(paris).Year())
	_, body, _ := e.login("chef").get("/rapport-annuel?annee=" + year)
	for _, want := range []string{`id="rapport"`, "Collège Jean Monnet", "Requêtes bloquées", `<svg class="chart"`} {
		if !strings.Contains(body, want) {
			t.Errorf("chef's report lacks %q", want)
		}
	}
	if strings.Contains(body, "Victor Hugo") || strings.Contains(body, `name="departement"`) {
		t.Error("the chef's page offers another school or a département")
	}
	_, body, _ = e.login("rssi").get("/rapport-annuel?annee=" + year + "&uai=&departement=068")
	if !strings.Contains(body, "Département 068") || !strings.Contains(body, "Collège Victor Hugo") {
		t.Error("the RSSI's Haut-Rhin report does not list its school")
	}
}
