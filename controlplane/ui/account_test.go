package ui

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestGeneratedPasswordMustChange: an account created with a generated
// password reaches nothing but the password form until it picks its own,
// and the change ends its other sessions.
func TestGeneratedPasswordMustChange(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	rssi := e.login("rssi")
	rssi.get("/utilisateurs")
	code, body, _ := rssi.post("/utilisateurs", url.Values{"login": {"nouvelle"}, "role": {"technicien"}})
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	m := regexp.MustCompile(`<code[^>]*>([A-Z0-9-]{20,})</code>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the generated password is not shown")
	}
	pw := m[1]
	c := e.client()
	if code, _, hd := c.post("/connexion", url.Values{"login": {"nouvelle"}, "password": {pw}}); code != http.StatusSeeOther {
		t.Fatalf("login: %d %v", code, hd)
	}
	for _, p := range []string{"/", "/etablissements", "/compte"} {
		if code, _, hd := c.get(p); code != http.StatusSeeOther || hd.Get("Location") != "/compte/mot-de-passe" {
			t.Fatalf("%s with a generated password: %d to %q", p, code, hd.Get("Location"))
		}
	}
	other := e.client()
	other.post("/connexion", url.Values{"login": {"nouvelle"}, "password": {pw}})
	_, body, _ = c.get("/compte/mot-de-passe")
	if !strings.Contains(body, "choisissez le vôtre") {
		t.Fatal("the form does not say why")
	}
	tests := []struct {
		name, cur, next, again string
		want                   int
		text                   string
	}{
		{"mismatch", pw, "une phrase de passe à moi", "une autre phrase", 422, "diffèrent"},
		{"too short", pw, "court", "court", 422, "12 caractères"},
		{"wrong current", "pas le bon", "une phrase de passe à moi", "une phrase de passe à moi", 422, "actuel est incorrect"},
		{"good", pw, "une phrase de passe à moi", "une phrase de passe à moi", http.StatusSeeOther, ""},
	}
	for _, tt := range tests {
		code, body, _ := c.post("/compte/mot-de-passe", url.Values{"current": {tt.cur}, "new": {tt.next}, "again": {tt.again}})
		if code != tt.want || !strings.Contains(body, tt.text) {
			t.Errorf("%s: %d, want %d with %q", tt.name, code, tt.want, tt.text)
		}
	}
	if code, body, _ := c.get("/compte?ok=passwordchanged"); code != 200 || !strings.Contains(body, "Votre mot de passe a été changé") {
		t.Fatalf("after the change: %d", code)
	}
	if code, _, hd := other.get("/compte"); code != http.StatusSeeOther || !strings.HasPrefix(hd.Get("Location"), "/connexion") {
		t.Fatalf("the other session: %d to %q, want the login form", code, hd.Get("Location"))
	}
}

// TestUserTokensPage: the RSSI sees and revokes another account's tokens.
func TestUserTokensPage(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	chef := e.login("chef")
	chef.get("/compte")
	if code, _, _ := chef.post("/compte/jetons", url.Values{"name": {"script du collège"}, "days": {"30"}}); code != http.StatusCreated {
		t.Fatalf("token: %d", code)
	}
	rssi := e.login("rssi")
	code, body, _ := rssi.get("/utilisateurs/chef/jetons")
	m := regexp.MustCompile(`action="/utilisateurs/chef/jetons/(\d+)/revoquer"`).FindStringSubmatch(body)
	if code != 200 || !strings.Contains(body, "script du collège") || m == nil {
		t.Fatalf("tokens page: %d", code)
	}
	if code, _, hd := rssi.post("/utilisateurs/chef/jetons/"+m[1]+"/revoquer", nil); code != http.StatusSeeOther {
		t.Fatalf("revoke: %d %v", code, hd)
	}
	if _, body, _ := rssi.get("/utilisateurs/chef/jetons"); strings.Contains(body, "script du collège") {
		t.Fatal("the token is still listed")
	}
	if code, _, _ := chef.get("/utilisateurs/chef/jetons"); code != http.StatusForbidden {
		t.Fatalf("a chef on the page: %d", code)
	}
}
