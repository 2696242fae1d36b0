package ui

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestSchoolErrorsOnTheirFields: a new school whose zones have no
// profile or a bad range is refused with French messages on each input,
// linked from the summary; no validator English reaches the page.
func TestSchoolErrorsOnTheirFields(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	c := e.login("rssi")
	c.get("/etablissements/nouveau")
	code, body, _ := c.post("/etablissements/nouveau", url.Values{"uai": {"0679999Z"}, "name": {"Collège Test"},
		"zone.0.name": {"pedagogique"}, "zone.0.cidrs": {"10.50.0.0/24"}, "zone.0.interfaces": {""}, "zone.0.profile": {""},
		"zone.1.name": {"wifi"}, "zone.1.cidrs": {"10.51.0.999/24"}, "zone.1.interfaces": {""}, "zone.1.profile": {"eleves"}})
	if code != 422 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`id="z-0-profile"`, `aria-describedby="z-0-profile-err"`, `<a href="#z-0-profile">`, "choisissez un profil pour cette zone",
		`aria-describedby="z-1-cidrs-err"`, "n’est pas une plage d’adresses", "<title>Erreur\u00a0: ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if w := englishIn(visibleText(between(body, "<main", "</main>"))); w != "" {
		t.Errorf("English on the page: %q", w)
	}
}

// englishIn returns the first common English word of text ("" if none).
func englishIn(text string) string {
	re := regexp.MustCompile(`(?i)\b(` + strings.Join(englishWords, "|") + `)\b`)
	return re.FindString(text)
}

func TestProblemsTranslate(t *testing.T) {
	for _, tc := range []struct{ detail, field, want string }{
		{"client: ParseAddr(\"10.10.0.999\"): IPv4 field has value >255", "x-client", "n’est pas une adresse IP"},
		{"export: the range must start before it ends", "", "la date de fin doit être après la date de début"},
		{"schools[1].zones[1].profile: unknown profile \"\"", "z-1-profile", "choisissez un profil"},
		{"to: \"demain\" is not a time (write 2026-03-02T08:00:00+01:00, or 2026-03-02 08:00 in Paris time)", "x-to", "n’est pas une date lisible"},
		{"something went wrong with the value", "", "cette valeur a été refusée"},
	} {
		fe := problems(&apiError{Detail: tc.detail}, map[string]string{"client": "x-client", "to": "x-to", "schools[*].zones[*].profile": "z-%d-profile"})
		if len(fe) != 1 || fe[0].Field != tc.field || !strings.Contains(fe[0].Text, tc.want) {
			t.Errorf("%q: %+v, want %q on %q", tc.detail, fe, tc.want, tc.field)
		}
	}
}

// TestUserErrorsOnTheirFields: a chef without a school is refused on the
// school field, in the console's words.
func TestUserErrorsOnTheirFields(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	c := e.login("rssi")
	c.get("/utilisateurs")
	code, body, _ := c.post("/utilisateurs", url.Values{"login": {"nouveau.chef"}, "name": {"Jean Nouveau"}, "role": {"chef_etablissement"}, "uai": {""}})
	if code != 422 || !strings.Contains(body, `aria-describedby="u-uai-err"`) || !strings.Contains(body, `<a href="#u-uai">`) ||
		strings.Contains(visibleText(between(body, "<main", "</main>")), "chef_etablissement") {
		t.Errorf("chef without school: %d %s", code, between(body, `id="erreurs"`, `</div>`))
	}
}
