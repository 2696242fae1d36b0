package ui

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"vigie/rules"
	"vigie/rules/policy"
)

// TestCheckWindow: each refusal of the policy validator is said in
// French next to its field, and what the validator accepts passes.
func TestCheckWindow(t *testing.T) {
	cats := []rules.CategoryInfo{{ID: "social_networks", NameFR: "Réseaux sociaux"}, {ID: "games", Alias: []string{"jeux"}}}
	ok := policy.Window{Categories: []string{"social_networks"}, Action: "allow", Days: []string{"mer"}, From: "12:00", To: "13:30"}
	for _, tc := range []struct {
		name  string
		edit  func(w *policy.Window)
		field string // "" when valid
		want  string
	}{
		{"valid", func(w *policy.Window) {}, "", ""},
		{"whole day until midnight", func(w *policy.Window) { w.From, w.To = "00:00", "24:00" }, "", ""},
		{"alias", func(w *policy.Window) { w.Categories = []string{"jeux"} }, "", ""},
		{"every day", func(w *policy.Window) { w.Days = nil }, "", ""},
		{"end before start", func(w *policy.Window) { w.From, w.To = "14:00", "13:00" }, "to", "la fin doit être après le début"},
		{"empty window", func(w *policy.Window) { w.To = w.From }, "to", "la fin doit être après le début"},
		{"bad start", func(w *policy.Window) { w.From = "midi" }, "from", "l'heure de début s'écrit HH:MM"},
		{"start at 24:00", func(w *policy.Window) { w.From = "24:00" }, "from", "l'heure de début"},
		{"bad end", func(w *policy.Window) { w.To = "25:00" }, "to", "l'heure de fin s'écrit HH:MM"},
		{"missing end", func(w *policy.Window) { w.To = "" }, "to", "l'heure de fin"},
		{"no category", func(w *policy.Window) { w.Categories = nil }, "categories", "au moins une catégorie"},
		{"unknown category", func(w *policy.Window) { w.Categories = []string{"inconnue"} }, "categories", "« inconnue » n'existe pas"},
		{"bad action", func(w *policy.Window) { w.Action = "peut-être" }, "action", "autorisées"},
		{"bad day", func(w *policy.Window) { w.Days = []string{"mer", "funday"} }, "days", "« funday »"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := ok
			w.Categories, w.Days = append([]string(nil), ok.Categories...), append([]string(nil), ok.Days...)
			tc.edit(&w)
			field, other := checkWindow(w, cats)
			if len(other) > 0 {
				t.Errorf("unexplained problems %q", other)
			}
			if tc.field == "" {
				if len(field) > 0 {
					t.Errorf("refused: %v", field)
				}
				// What passes here passes the validator.
				p := policy.Policy{Version: 1, Profiles: []policy.Profile{{ID: "p", Windows: []policy.Window{w}}}}
				if err := p.Validate(); err != nil {
					t.Errorf("accepted, but the validator refuses: %v", err)
				}
				return
			}
			if !strings.Contains(field[tc.field], typo(tc.want)) || len(field) != 1 {
				t.Errorf("field errors %v, want %q on %s alone", field, tc.want, tc.field)
			}
		})
	}
}

// TestProfileWindowsForm: the RSSI adds, edits and removes a window
// through the forms, each change one audited profile change in the
// draft; refusals are pages in French, never a 500.
func TestProfileWindowsForm(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	ctx := context.Background()
	windows := func() []policy.Window {
		d, err := e.st.Draft(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Policy.Profiles {
			if p.ID == "personnels" {
				return p.Windows
			}
		}
		t.Fatal("no profile personnels")
		return nil
	}
	c := e.login("rssi")
	code, body, _ := c.get("/profils/personnels/plages")
	if code != http.StatusOK || !strings.Contains(body, "Aucune plage horaire") || !strings.Contains(body, `id="plage-form"`) {
		t.Fatalf("empty page: %d", code)
	}
	form := url.Values{"index": {"-1"}, "key": {""}, "categories": {"games"}, "action": {"block"},
		"days": {"lun", "mar", "jeu", "ven"}, "from": {"08:00"}, "to": {"12:00"}}
	code, _, hd := c.post("/profils/personnels/plages", form)
	if code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "ok=windowadded") {
		t.Fatalf("add: %d to %q", code, hd.Get("Location"))
	}
	want := policy.Window{Categories: []string{"games"}, Action: "block", Days: []string{"lun", "mar", "jeu", "ven"}, From: "08:00", To: "12:00"}
	if ws := windows(); len(ws) != 1 || windowKey(ws[0]) != windowKey(want) {
		t.Fatalf("windows after add: %+v", ws)
	}
	if !e.audited(t, "draft.profile.put", "profile/personnels") {
		t.Error("the change is not audited")
	}
	_, body, _ = c.get("/profils/personnels/plages")
	if got := html.UnescapeString(body); !strings.Contains(got, "bloqué lun., mar., jeu., ven. de 08:00 à 12:00") {
		t.Errorf("the window is not said in French: %s", between(got, `class="window-sentence">`, "</td>"))
	}

	// Refusals: the values stay in the form, the reason is next to the field.
	bad := url.Values{"index": {"-1"}, "categories": {"games"}, "action": {"block"}, "from": {"14:00"}, "to": {"13:00"}}
	code, body, _ = c.post("/profils/personnels/plages", bad)
	if code != http.StatusUnprocessableEntity || !strings.Contains(between(body, `id="w-to-erreur">`, "</p>"), "la fin doit être après le début") ||
		!strings.Contains(body, `value="14:00"`) {
		t.Errorf("end before start: %d, %q", code, between(body, `id="w-to-erreur">`, "</p>"))
	}
	for name, f := range map[string]url.Values{
		"no index":         {"categories": {"games"}},
		"index too large":  {"index": {"7"}, "key": {"x"}, "categories": {"games"}, "action": {"block"}, "from": {"08:00"}, "to": {"09:00"}},
		"negative index":   {"index": {"-5"}},
		"garbage":          {"index": {"-1"}, "categories": {"../../etc", "games"}, "action": {"<script>"}, "days": {"lun", "jamais"}, "from": {"99:99"}, "to": {"xx"}},
		"unknown category": {"index": {"-1"}, "categories": {"n_existe_pas"}, "action": {"allow"}, "from": {"08:00"}, "to": {"09:00"}},
	} {
		code, body, _ := c.post("/profils/personnels/plages", f)
		if code >= 500 || code < 400 || strings.Contains(body, "⟦") {
			t.Errorf("%s: status %d", name, code)
		}
	}
	if code, _, _ := c.post("/profils/inconnu/plages", form); code != http.StatusNotFound {
		t.Errorf("unknown profile: %d", code)
	}
	if code, _, _ := c.post("/profils/serveurs/plages", form); code != http.StatusBadRequest {
		t.Errorf("unfiltered profile: %d", code)
	}
	if len(windows()) != 1 {
		t.Fatalf("a refused form changed the draft: %+v", windows())
	}

	// Edit: the form shows the window; the change replaces it.
	key := windowKey(windows()[0])
	code, body, _ = c.get("/profils/personnels/plages?modifier=0")
	if code != http.StatusOK || !strings.Contains(body, `value="08:00"`) || !strings.Contains(html.UnescapeString(body), `name="key" value="`+key+`"`) {
		t.Fatalf("edit form: %d", code)
	}
	edit := url.Values{"index": {"0"}, "key": {key}, "categories": {"games"}, "action": {"block"},
		"days": {"lun", "mar", "jeu", "ven"}, "from": {"08:00"}, "to": {"00:00"}}
	code, _, hd = c.post("/profils/personnels/plages", edit)
	if code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "ok=windowsaved") {
		t.Fatalf("edit: %d to %q", code, hd.Get("Location"))
	}
	if ws := windows(); len(ws) != 1 || ws[0].To != "24:00" {
		t.Fatalf("after edit: %+v", ws)
	}
	// The same form again names a window that is no longer there.
	if code, body, _ := c.post("/profils/personnels/plages", edit); code != http.StatusConflict || !strings.Contains(body, "a changé depuis") {
		t.Errorf("stale edit: %d", code)
	}
	if code, _, _ := c.post("/profils/personnels/plages/retirer", url.Values{"index": {"0"}, "key": {key}}); code != http.StatusConflict {
		t.Errorf("stale removal: %d", code)
	}
	code, _, hd = c.post("/profils/personnels/plages/retirer", url.Values{"index": {"0"}, "key": {windowKey(windows()[0])}})
	if code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "ok=windowremoved") || len(windows()) != 0 {
		t.Errorf("remove: %d to %q, %d windows", code, hd.Get("Location"), len(windows()))
	}

	// A technician reads the windows but gets no form and cannot post.
	tech := e.login("tech")
	code, body, _ = tech.get("/profils/eleves/plages")
	if code != http.StatusOK || strings.Contains(body, `id="plage-form"`) || !strings.Contains(html.UnescapeString(body), "de 12:00 à 13:30") {
		t.Errorf("technician page: %d", code)
	}
	if code, _, _ := tech.post("/profils/personnels/plages", form); code != http.StatusForbidden {
		t.Errorf("technician post: %d", code)
	}
	// And a form without its CSRF token is refused.
	if code, _, _ := c.post("/profils/personnels/plages", url.Values{"csrf_token": {"faux"}, "index": {"-1"}}); code != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", code)
	}
}
