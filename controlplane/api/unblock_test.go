package api

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"vigie/controlplane/store"
)

// TestChefApprovesOwnSchoolOnly: who approves unblock requests is the
// RSSI's setting. Under the default a chef writes no exception at all;
// once chefs may approve, a chef adds exceptions to their own school
// only, never to another school's, never académie-wide, never an
// expression; each refusal is audited, and the setting's changes too.
func TestChefApprovesOwnSchoolOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	body := EntriesChange{Domains: []string{"jeux-educatifs.example.fr"}, Comment: "Demande de déblocage n° 12"}
	setting := func(role string) string {
		var s UnblockSettings
		if err := json.Unmarshal(e.mustDo(role, "GET", "/api/v1/settings/unblock", nil, 200), &s); err != nil {
			t.Fatal(err)
		}
		return s.Approvers
	}
	if got := setting("chef_etablissement"); got != ApproversRSSI {
		t.Fatalf("default setting %q, want %q", got, ApproversRSSI)
	}
	e.mustDo("chef_etablissement", "POST", "/api/v1/schools/"+monnet+"/exceptions", body, 403)
	e.mustDo("chef_etablissement", "PUT", "/api/v1/settings/unblock", UnblockSettings{Approvers: ApproversChef}, 403)
	e.mustDo("technicien", "GET", "/api/v1/settings/unblock", nil, 403)
	e.mustDo("rssi", "PUT", "/api/v1/settings/unblock", UnblockSettings{Approvers: "tout le monde"}, 422)
	e.mustDo("rssi", "PUT", "/api/v1/settings/unblock", UnblockSettings{Approvers: ApproversChef}, 200)
	if got := setting("chef_etablissement"); got != ApproversChef {
		t.Fatalf("setting after the change %q", got)
	}

	var res SchoolExceptions
	if err := json.Unmarshal(e.mustDo("chef_etablissement", "POST", "/api/v1/schools/"+monnet+"/exceptions", body, 200), &res); err != nil {
		t.Fatal(err)
	}
	if res.List != "college-monnet-autorise" || res.Changed != 1 || res.Entries[0].Author != "chef" {
		t.Fatalf("chef's exception: %+v", res)
	}
	l, err := e.st.List(ctx, res.List)
	if err != nil || l.School != monnet {
		t.Fatalf("the exception went to %+v (%v), not the school's own list", l, err)
	}
	// Another school, the académie's lists, a new list, an expression:
	// all refused.
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/api/v1/schools/" + autre + "/exceptions", body, 403},
		{"POST", "/api/v1/lists/academie-autorise/entries", body, 403},
		{"POST", "/api/v1/lists", ListCreate{ID: "chef-autorise", Category: "academie_autorise"}, 403},
		{"POST", "/api/v1/schools/" + monnet + "/exceptions", EntriesChange{Expressions: []string{".*"}}, 422},
	} {
		e.mustDo("chef_etablissement", tc.method, tc.path, tc.body, tc.want)
	}
	if es, _ := e.st.Entries(ctx, "academie-autorise", store.Page{Limit: 100}); slices.ContainsFunc(es, func(en store.Entry) bool { return en.Author == "chef" }) {
		t.Error("a chef wrote to the académie's exceptions")
	}

	// The RSSI's school without an exception list yet gets one.
	if err := json.Unmarshal(e.mustDo("rssi", "POST", "/api/v1/schools/"+autre+"/exceptions", body, 200), &res); err != nil {
		t.Fatal(err)
	}
	if l, err := e.st.List(ctx, res.List); err != nil || l.School != autre || l.Category != "etablissement_autorise" {
		t.Fatalf("new school list: %+v (%v)", l, err)
	}

	// Back to the RSSI only: the chef is refused again.
	e.mustDo("rssi", "PUT", "/api/v1/settings/unblock", UnblockSettings{Approvers: ApproversRSSI}, 200)
	e.mustDo("chef_etablissement", "POST", "/api/v1/schools/"+monnet+"/exceptions", EntriesChange{Domains: []string{"autre.example.fr"}}, 403)

	es, err := e.st.AuditEntries(ctx, 0, 5000)
	if err != nil {
		t.Fatal(err)
	}
	count := func(action, actor, target string) int {
		n := 0
		for _, en := range es {
			if en.Action == action && en.Actor == actor && en.Target == target {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		action, actor, target string
		want                  int
	}{
		{"settings.unblock", "rssi", "settings/unblock", 2},
		{"list.entries.add", "chef", "list/college-monnet-autorise", 1},
		{"access.denied", "chef", "school/" + autre, 1},
		{"access.denied", "chef", "school/" + monnet, 2},
	} {
		if got := count(c.action, c.actor, c.target); got != c.want {
			t.Errorf("audit %s by %s on %s: %d entries, want %d", c.action, c.actor, c.target, got, c.want)
		}
	}
}
