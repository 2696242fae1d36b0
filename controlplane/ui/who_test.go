package ui

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest/sealed"
)

// seedFlow archives one pupil's flow as 198.51.100.1:40123 for school uai.
func seedFlow(t *testing.T, arch archive.Store, uai string, at time.Time) {
	t.Helper()
	sealed.Put(t, arch, uai+"-chain-flows", journal.Record{Stream: journal.Connexions, Time: at.Add(-30 * time.Second), UAI: uai, Proto: "tcp",
		Client: netip.MustParseAddrPort("10.10.0.10:51000"), MAC: "02:00:5e:00:00:10", User: "eleve.dupont",
		NAT: netip.MustParseAddrPort("198.51.100.1:40123"), Dest: netip.MustParseAddrPort("203.0.113.80:8443"),
		Duration: 40 * time.Second, Verdict: "allow", Zone: "pedagogique"})
}

func TestWhoPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	seedFlow(t, e.arch, monnet, at)
	q := url.Values{"ip": {"198.51.100.1"}, "port": {"40123"}, "at": {at.In(paris).Format("2006-01-02T15:04:05")}}.Encode()

	chef := e.login("chef")
	if _, body, _ := chef.get("/journaux"); !strings.Contains(body, `id="form-qui-court"`) {
		t.Fatal("the Journaux page has no requisition search field")
	}
	code, body, _ := chef.get("/journaux/qui?" + q)
	if code != http.StatusOK || !strings.Contains(body, "eleve.dupont") || !strings.Contains(body, "02:00:5e:00:00:10") || !strings.Contains(body, "form-qui-export") {
		t.Fatalf("chef's search: %d\n%s", code, body)
	}
	if !e.audited(t, "logs.who", "logs/who") {
		t.Error("the search is not in the audit log")
	}
	// Another school's chef finds nothing: their scope is their school.
	other := e.login("chef.hugo")
	if code, body, _ := other.get("/journaux/qui?" + q); code != http.StatusOK || strings.Contains(body, "eleve.dupont") {
		t.Fatalf("other chef's search: %d, shows the pupil: %v", code, strings.Contains(body, "eleve.dupont"))
	}
	// The technicien has no Journaux page, hence no search.
	if code, _, _ := e.login("tech").get("/journaux/qui?" + q); code != http.StatusForbidden {
		t.Fatalf("technicien: %d, want 403", code)
	}
	// A bad address is explained on the page.
	if code, body, _ := chef.get("/journaux/qui?ip=pas-une-adresse&at=2026-03-12T14:32:05"); code != 422 || !strings.Contains(body, "adresse") {
		t.Fatalf("bad address: %d", code)
	}
}
