package ui

import (
	"testing"
	"time"
)

// TestLook is a scratch test for looking at pages while building them.
func TestLook(t *testing.T) {
	start := time.Now()
	e := newEnv(t, envOptions{})
	t.Logf("env ready in %s", time.Since(start))
	b := newBrowser(t)
	p := b.person(t, e.srv.URL)
	p.login("rssi", e.passwd["rssi"])
	for _, pg := range []struct{ path, name string }{
		{"/categories", "categories"}, {"/listes?cherche=www.bloque.demo.ac-demo.fr", "listes"}, {"/listes/academie-bloque", "liste"},
		{"/profils", "profils"}, {"/pare-feu", "pare-feu"}, {"/tester?adresse=https%3A%2F%2Fwww.pornhub.com%2F&lieu=0671234X%7Cpedagogique", "tester"},
		{"/publier", "publier"}, {"/etablissements", "etablissements"}, {"/etablissements/0671234X", "etablissement"},
		{"/audit", "audit"}, {"/utilisateurs", "utilisateurs"}, {"/compte", "compte"},
	} {
		p.open(pg.path)
		p.shot("look-" + pg.name)
	}
	t.Logf("done in %s", time.Since(start))
}
