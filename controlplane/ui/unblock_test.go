package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"vigie/controlplane/store"
)

// TestUnblockRequests: a request from a block page lands in the RSSI's
// queue (and the chef's, read-only); a bad one is refused on its fields;
// approving adds the host to the school's exceptions in the draft with
// the request as comment; refusing needs a reason; every step is audited;
// a client sending too many is slowed down.
func TestUnblockRequests(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	anon := e.client()
	send := func(form url.Values) (int, string) {
		code, body, _ := anon.post("/deblocage", form)
		return code, body
	}
	good := url.Values{"uai": {monnet}, "url": {"https://www.jeux-educatifs.example.fr/fractions"}, "categorie": {"games"},
		"reference": {"K7Q2-9XTR"}, "motif": {"Séquence sur les fractions en 6e"}, "demandeur": {"m.dupont@ac-demo.fr"}}
	if code, body := send(good); code != http.StatusCreated || !strings.Contains(body, "www.jeux-educatifs.example.fr") {
		t.Fatalf("request: %d %s", code, between(body, "<main", "</main>"))
	}
	bad := url.Values{"uai": {"0000000Z"}, "url": {""}, "motif": {""}, "demandeur": {""}}
	code, body := send(bad)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `aria-describedby="d-reason-err"`) ||
		!strings.Contains(body, `<a href="#d-requester">`) {
		t.Fatalf("bad request: %d", code)
	}
	if !e.audited(t, "unblock.request", "school/"+monnet) {
		t.Error("the request is not audited")
	}

	rssi := e.login("rssi")
	_, body, _ = rssi.get("/demandes")
	q := between(body, `id="en-attente"`, `</section>`)
	if !strings.Contains(q, "1 demande en attente") || !strings.Contains(q, "m.dupont@ac-demo.fr") || !strings.Contains(q, "Collège Jean Monnet") {
		t.Fatalf("queue: %s", q)
	}
	seq := between(between(body, `action="/demandes/`, `"`), "", `"`)
	if _, body, _ := e.login("chef").get("/demandes"); !strings.Contains(body, "jeux-educatifs") || strings.Contains(body, `action="/demandes/`) {
		t.Error("the chef does not see their school's request, or may decide it")
	}
	code, _, hd := rssi.post("/demandes/"+seq, url.Values{"decision": {"approve"}, "portee": {"etablissement"}})
	if code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "unblockapproved") {
		t.Fatalf("approve: %d %s", code, hd.Get("Location"))
	}
	es, err := e.st.Entries(context.Background(), "college-monnet-autorise", store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, en := range es {
		if en.Value == "www.jeux-educatifs.example.fr" && strings.Contains(en.Comment, "m.dupont@ac-demo.fr") && strings.Contains(en.Comment, "fractions") {
			found = true
		}
	}
	if !found {
		t.Errorf("the approved host is not in the school's exceptions with the request as comment: %+v", es)
	}
	if code, _, _ := rssi.post("/demandes/"+seq, url.Values{"decision": {"refuse"}, "note": {"non"}}); code != http.StatusUnprocessableEntity {
		t.Errorf("a decided request was decided again: %d", code)
	}
	// A refusal needs its reason.
	send(good)
	_, body, _ = rssi.get("/demandes")
	seq2 := between(between(body, `action="/demandes/`, `"`), "", `"`)
	if code, _, _ := rssi.post("/demandes/"+seq2, url.Values{"decision": {"refuse"}}); code != http.StatusUnprocessableEntity {
		t.Errorf("refused without a reason: %d", code)
	}
	if code, _, _ := rssi.post("/demandes/"+seq2, url.Values{"decision": {"refuse"}, "note": {"Site déjà accessible par l’ENT"}}); code != http.StatusSeeOther {
		t.Errorf("refuse: %d", code)
	}
	if !e.audited(t, "unblock.approve", "unblock/"+seq) || !e.audited(t, "unblock.refuse", "unblock/"+seq2) {
		t.Error("the decisions are not audited")
	}
	// Rate limit: 5 in 10 minutes per address (2 sent, 1 refused on
	// its fields before counting).
	for i := 0; i < 3; i++ {
		send(good)
	}
	if code, _ := send(good); code != http.StatusTooManyRequests {
		t.Errorf("the 6th request in a row: %d, want 429", code)
	}
}

// TestChefDecidesWhenAllowed: a chef decides nothing under the default
// setting; once the RSSI allows it, the chef approves their school's
// requests as school exceptions only, and another school's chef cannot
// reach them.
func TestChefDecidesWhenAllowed(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	code, _, _ := e.client().post("/deblocage", url.Values{"uai": {monnet}, "url": {"https://jeux-educatifs.example.fr/"},
		"motif": {"Fractions"}, "demandeur": {"m.dupont@ac-demo.fr"}})
	if code != http.StatusCreated {
		t.Fatalf("request: %d", code)
	}
	rssi := e.login("rssi")
	_, body, _ := rssi.get("/demandes")
	seq := between(between(body, `action="/demandes/`, `"`), "", `"`)
	chef, hugoChef := e.login("chef"), e.login("chef.hugo")
	chef.get("/demandes")
	if code, _, _ := chef.post("/demandes/"+seq, url.Values{"decision": {"approve"}, "portee": {"etablissement"}}); code != http.StatusForbidden {
		t.Fatalf("a chef decided under the default setting: %d", code)
	}
	if code, _, _ := chef.post("/demandes/reglage", url.Values{"approbateurs": {"rssi_chef"}}); code != http.StatusForbidden {
		t.Fatalf("a chef changed the setting: %d", code)
	}
	if code, body, _ := rssi.post("/demandes/reglage", url.Values{"approbateurs": {"tous"}}); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, `aria-describedby="approbateurs-rssi-err"`) {
		t.Fatalf("a bad setting: %d", code)
	}
	if code, _, hd := rssi.post("/demandes/reglage", url.Values{"approbateurs": {"rssi_chef"}}); code != http.StatusSeeOther {
		t.Fatalf("setting: %d %s", code, hd.Get("Location"))
	}
	_, body, _ = chef.get("/demandes")
	if !strings.Contains(body, `action="/demandes/`+seq+`"`) || strings.Contains(body, `value="academie"`) {
		t.Fatal("the chef is not offered the decision, or is offered an académie-wide exception")
	}
	hugoChef.get("/demandes")
	if code, _, _ := hugoChef.post("/demandes/"+seq, url.Values{"decision": {"approve"}, "portee": {"etablissement"}}); code != http.StatusNotFound {
		t.Errorf("another school's chef reached the request: %d", code)
	}
	if code, _, _ := chef.post("/demandes/"+seq, url.Values{"decision": {"approve"}, "portee": {"academie"}}); code != http.StatusForbidden {
		t.Errorf("a chef approved an académie-wide exception: %d", code)
	}
	if code, _, hd := chef.post("/demandes/"+seq, url.Values{"decision": {"approve"}, "portee": {"etablissement"}}); code != http.StatusSeeOther ||
		!strings.Contains(hd.Get("Location"), "unblockapproved") {
		t.Fatalf("the chef's approval: %d %s", code, hd.Get("Location"))
	}
	es, err := e.st.Entries(context.Background(), "college-monnet-autorise", store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, en := range es {
		found = found || (en.Value == "jeux-educatifs.example.fr" && en.Author == "chef")
	}
	if !found || !e.audited(t, "unblock.approve", "unblock/"+seq) {
		t.Errorf("the chef's approval is not in the school's exceptions or not audited: %+v", es)
	}
}
