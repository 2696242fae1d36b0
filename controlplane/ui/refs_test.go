package ui

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/journaltest/sealed"
)

// TestFindRefusalPage: the RSSI and the chef of the school find a refusal
// by its block page's reference; the chef of another school does not, and
// a technician has no such page.
func TestFindRefusalPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	at := e.clock.now().Truncate(time.Millisecond)
	sealed.Put(t, e.arch, "ref-test-chain-n", journal.Record{Stream: journal.Navigation, Time: at, UAI: monnet,
		Client: netip.MustParseAddrPort("10.10.0.14:51234"), User: "eleve.dupont", Proto: "http", Method: "GET",
		Host: "www.pornhub.com", URL: "http://www.pornhub.com/videos", Status: 403, Verdict: "block", Category: "adult",
		Reference: "Q3R6-RPAY"})
	for _, tc := range []struct {
		login  string
		status int
		want   []string
	}{
		{"rssi", 200, []string{"Refus Q3R6-RPAY", "10.10.0.14:51234", "eleve.dupont", "http://www.pornhub.com/videos", "adult", "liste adult-top1m"}},
		{"chef", 200, []string{"Refus Q3R6-RPAY", "eleve.dupont", "Recherche limitée à votre établissement"}},
		{"chef.hugo", 404, []string{"aucun refus de référence Q3R6-RPAY"}},
		{"tech", 403, nil},
	} {
		t.Run(tc.login, func(t *testing.T) {
			cl := e.login(tc.login)
			code, body, _ := cl.get("/journaux/reference?ref=q3r6-rpay")
			if code != tc.status {
				t.Fatalf("HTTP %d, want %d", code, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Fatalf("page lacks %q:\n%s", w, body)
				}
			}
		})
	}
	// The logs page links to the lookup.
	if _, body, _ := e.login("chef").get("/journaux"); !strings.Contains(body, `href="/journaux/reference"`) {
		t.Fatal("no link to the reference lookup on the logs page")
	}
}
