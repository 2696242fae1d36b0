package ui

import (
	"net/url"
	"strings"
	"testing"
)

// TestTitles: a page's title names the object shown before the page
// (RGAA 8.6), and says "Erreur" first when a form comes back refused,
// the login form included.
func TestTitles(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	title := func(body string) string { return between(body, "<title>", "</title>") }
	anon := e.client()
	if _, body, _ := anon.post("/connexion", url.Values{"login": {"rssi"}, "password": {"faux"}}); title(body) != "Erreur\u00a0: Connexion — Vigie" {
		t.Errorf("refused login: title %q", title(body))
	}
	rssi := e.login("rssi")
	for path, want := range map[string]string{
		"/etablissements/" + hugo:  "Collège Victor Hugo (" + hugo + ") — Établissement — Vigie",
		"/etablissements/nouveau":  "Nouvel établissement — Vigie",
		"/utilisateurs/chef.hugo":  "chef.hugo — Compte — Vigie",
		"/listes/academie-bloque":  "academie-bloque — Liste — Vigie",
		"/profils/invites/plages":  "profil Invités — Plages horaires — Vigie",
		"/categories":              "Catégories — Vigie",
		"/etablissements/0000000Z": "Page introuvable — Vigie",
	} {
		if _, body, _ := rssi.get(path); title(body) != want {
			t.Errorf("%s: title %q, want %q", path, title(body), want)
		}
	}
	// A refused school form: the error first, then the school.
	code, body, _ := rssi.post("/etablissements/"+hugo, url.Values{"name": {"Collège Victor Hugo"}, "zone.0.name": {"pedagogique"},
		"zone.0.cidrs": {"10.50.0.999/24"}, "zone.0.profile": {"eleves"}})
	if code != 422 || title(body) != "Erreur\u00a0: Collège Victor Hugo ("+hugo+") — Établissement — Vigie" {
		t.Errorf("refused school form: %d, title %q", code, title(body))
	}
	if !strings.Contains(body, `aria-invalid="true"`) {
		t.Error("the refused field is not marked")
	}
}
