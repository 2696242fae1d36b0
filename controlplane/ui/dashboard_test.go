package ui

import (
	"context"
	"strings"
	"testing"

	"vigie/controlplane/store"
)

// TestDashboardPeriodsAndStatus: the RSSI reads allowed against blocked
// with a share, over 24 h, 7 or 30 days, with the most blocked domains; a
// chef whose gateway never called reads that the school is not filtered,
// never "nothing blocked" as good news.
func TestDashboardPeriodsAndStatus(t *testing.T) {
	e := newEnv(t, envOptions{})
	rssi := e.login("rssi")
	for _, tc := range []struct{ q, title string }{
		{"", "Activité des dernières 24 heures"}, {"?periode=7j", "Activité des 7 derniers jours"}, {"?periode=30j", "Activité des 30 derniers jours"},
	} {
		_, body, _ := rssi.get("/" + tc.q)
		act := between(body, `id="activite"`, `</section>`)
		for _, want := range []string{tc.title, "autorisées", "bloquées (soit ", "\u00a0%", "Domaines les plus bloqués", `aria-current="true"`, "<table>"} {
			if !strings.Contains(act, want) {
				t.Errorf("%s: no %q in the activity", tc.q, want)
			}
		}
	}
	_, body, _ := e.login("chef").get("/")
	if !strings.Contains(body, `id="etat"`) || !strings.Contains(body, "le collège n’est pas encore filtré") {
		t.Errorf("chef status: %s", between(body, `id="etat"`, `</div>`))
	}
	if strings.Contains(between(body, `id="activite"`, `</section>`), "Domaines les plus bloqués") {
		t.Error("a chef sees the top domains")
	}
	_, body, _ = rssi.get("/etablissements/" + monnet)
	if !strings.Contains(between(body, `id="activite"`, `</section>`), "<svg") {
		t.Error("no activity chart on the school's page")
	}
}

// TestNotFoundInsideTheLayout: a signed-in person's 404 keeps the menu and
// leads back to the dashboard, not to the login form.
func TestNotFoundInsideTheLayout(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	code, body, _ := e.login("rssi").get("/nulle-part")
	if code != 404 || !strings.Contains(body, `<nav class="side"`) || !strings.Contains(body, "Retour au tableau de bord") ||
		strings.Contains(body, "Aller à la page de connexion") {
		t.Errorf("signed-in 404: %d %s", code, between(body, "<main", "</main>"))
	}
	code, body, _ = e.client().get("/nulle-part")
	if code != 404 || strings.Contains(body, `<nav class="side"`) {
		t.Errorf("anonymous 404: %d", code)
	}
}

// TestUnknownVersionShown: an edge that claims a version this control
// plane never published reads « Version inconnue » with the serial it
// claims, on the dashboard (state and alert) and on the school's page,
// not « Échec d'application » although the claim is also its last
// error, as the API's state says.
func TestUnknownVersionShown(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	rssi := e.login("rssi")
	ctx := context.Background()
	hd := e.pub.Head()
	err := e.st.Update(ctx, func(tx store.Tx) error {
		return tx.RecordEdgeStatus(ctx, map[string]store.EdgeStatus{"0671234x-1": {LastSeen: e.clock.now(), AppliedSerial: hd.Serial,
			AppliedHash: hd.Hash, LastError: "version 47 inconnue de la console", ClaimedSerial: 47, ClaimedHash: "deadbeef"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := rssi.get("/")
	row := between(body, `data-edge="0671234x-1"`, `</tr>`)
	if !strings.Contains(row, "Version inconnue") || !strings.Contains(row, "annonce la version 47") {
		t.Errorf("dashboard row: %s", row)
	}
	if !strings.Contains(body, "applique une version 47 que la console") {
		t.Errorf("no unknown-version alert naming serial 47 on the dashboard")
	}
	_, body, _ = rssi.get("/etablissements/" + monnet)
	edges := between(body, `id="pass-titre"`, `</table>`)
	cell := between(edges, "0671234x-1", "</tr>")
	if !strings.Contains(cell, "Version inconnue") || !strings.Contains(cell, "annonce la version 47") {
		t.Errorf("school page: %s", cell)
	}
	if strings.Contains(cell, `state-error">Échec`) {
		t.Errorf("school page says the apply failed for an unknown version: %s", cell)
	}
}
