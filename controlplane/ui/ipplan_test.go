package ui

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/store"
)

// scopedTech creates a technicien of a département (scope "067": the
// Bas-Rhin) in this env's store and returns their password.
func (e *env) scopedTech(login, scope string) string {
	e.t.Helper()
	pw := "mot de passe de " + login
	h, _ := auth.HashPassword(pw, auth.Params{Memory: 64, Time: 1, Threads: 1})
	ctx := context.Background()
	err := e.st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Login: login, Name: "Technicien du Bas-Rhin", Role: string(auth.Technicien), Scope: scope,
			PasswordHash: h, CreatedAt: time.Now()})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return pw
}

// loginWith signs in through the form with a password.
func (e *env) loginWith(login, pw string) *client {
	e.t.Helper()
	c := e.client()
	if code, _, hd := c.post("/connexion", url.Values{"login": {login}, "password": {pw}}); code != http.StatusSeeOther || hd.Get("Location") != "/" {
		e.t.Fatalf("login %s: %d %q", login, code, hd.Get("Location"))
	}
	c.get("/")
	return c
}

// invalidField finds an input marked invalid and its message.
func invalidField(body, id string) string {
	if !regexp.MustCompile(`id="` + id + `"[^>]*aria-invalid="true"`).MatchString(body) {
		return ""
	}
	m := regexp.MustCompile(`<p class="field-error" id="` + id + `-err">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestIPPlanPages follows a proposal through the pages without a browser:
// the Bas-Rhin technicien sees only the Bas-Rhin's schools, is refused
// another département's (audited), reads each problem on its field (a
// blank row in the middle of the form included), proposes; the RSSI reads
// the diff, must give a reason to refuse, refuses; the technicien reads
// the reason.
func TestIPPlanPages(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	tech := e.loginWith("tech67", e.scopedTech("tech67", "067"))

	code, body, _ := tech.get("/plans-adressage")
	if code != 200 || !strings.Contains(body, `<option value="`+monnet+`"`) || strings.Contains(body, hugo) || strings.Contains(body, "⟦") {
		t.Fatalf("technicien's page: %d, or it offers another département's school", code)
	}
	if !strings.Contains(body, `href="/plans-adressage"`) {
		t.Error("no menu entry")
	}
	if code, body, _ := tech.get("/plans-adressage/proposer?uai=" + hugo); code != http.StatusForbidden || strings.Contains(body, "Victor Hugo") {
		t.Fatalf("another département's school: %d", code)
	}
	if code, body, _ := tech.get("/etablissements/" + monnet); code != 200 || !strings.Contains(body, `href="/plans-adressage/proposer?uai=`+monnet+`"`) {
		t.Fatalf("the school page has no way to propose (%d)", code)
	}
	code, body, _ = tech.get("/plans-adressage/proposer?uai=" + monnet)
	if code != 200 || !strings.Contains(body, `id="p-0-name" name="zone.0.name" value="pedagogique"`) {
		t.Fatalf("form: %d", code)
	}

	form := url.Values{"uai": {monnet}, "comment": {""},
		"zone.0.name": {"pedagogique"}, "zone.0.cidrs": {"10.10.0.0/24, 127.0.0.0/8, ::1/128"}, "zone.0.profile": {""},
		"zone.1.name": {"administratif"}, "zone.1.cidrs": {"10.20.0.0/24"}, "zone.1.profile": {"personnels"},
		"zone.2.name": {""}, "zone.2.cidrs": {""}, "zone.2.profile": {""},
		"zone.3.name": {"wifi"}, "zone.3.cidrs": {"10.50.0.0/25"}, "zone.3.profile": {"invites"},
		"zone.4.name": {"serveurs"}, "zone.4.cidrs": {"10.40.0.0/24"}, "zone.4.profile": {"serveurs"},
	}
	code, body, _ = tech.post("/plans-adressage/proposer", form)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("bad proposal: %d", code)
	}
	for id, want := range map[string]string{
		"p-0-profile": "zone des élèves sans profil",
		"p-3-cidrs":   "hors de votre périmètre",
		"p-comment":   "pourquoi le plan change",
	} {
		if got := invalidField(body, id); !strings.Contains(got, want) {
			t.Errorf("field %s: %q, want %q", id, got, want)
		}
	}
	if strings.Contains(body, "Victor Hugo") || !strings.Contains(body, `value="10.50.0.0/25"`) {
		t.Error("the form names the other school, or lost what was typed")
	}
	// A forged school outside the scope: refused by the API, audited.
	forged := url.Values{}
	for k, v := range form {
		forged[k] = v
	}
	forged.Set("uai", hugo)
	forged.Set("comment", "essai")
	if code, _, _ := tech.post("/plans-adressage/proposer", forged); code != http.StatusForbidden {
		t.Fatalf("forged school: %d", code)
	}

	form.Set("zone.0.profile", "eleves")
	form.Set("zone.3.cidrs", "10.31.0.0/24")
	form.Set("comment", "Nouveau réseau wifi du collège")
	code, _, hd := tech.post("/plans-adressage/proposer", form)
	if code != http.StatusSeeOther || !strings.HasPrefix(hd.Get("Location"), "/plans-adressage/1?ok=ipproposed") {
		t.Fatalf("proposal: %d %q", code, hd.Get("Location"))
	}
	if _, body, _ := tech.get(hd.Get("Location")); !strings.Contains(body, "Votre proposition est envoyée") || !strings.Contains(body, "En attente") {
		t.Fatal("the technicien is not told the proposal went")
	}

	rssi := e.login("rssi")
	if _, body, _ := rssi.get("/plans-adressage"); !strings.Contains(body, "1 proposition en attente") || !strings.Contains(body, "tech67") {
		t.Fatal("the RSSI does not see the pending proposal")
	}
	_, body, _ = rssi.get("/plans-adressage/1")
	for _, want := range []string{`class="diff-add"`, "10.31.0.0/24", `class="diff-del"`, "10.30.0.0/24", `id="valider"`, `id="refuser"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the RSSI's page lacks %s", want)
		}
	}
	if code, body, _ := rssi.post("/plans-adressage/1/refuser", url.Values{"reason": {" "}}); code != http.StatusUnprocessableEntity ||
		!strings.Contains(invalidField(body, "r-reason"), "dites pourquoi") {
		t.Fatalf("refusal without reason: %d", code)
	}
	if code, _, _ := tech.post("/plans-adressage/1/refuser", url.Values{"reason": {"moi-même"}}); code != http.StatusForbidden {
		t.Fatalf("the technicien decides: %d", code)
	}
	if code, _, hd := rssi.post("/plans-adressage/1/refuser", url.Values{"reason": {"La plage 10.31.0.0/24 est celle des visioconférences"}}); code != http.StatusSeeOther ||
		!strings.Contains(hd.Get("Location"), "ok=iprefused") {
		t.Fatalf("refusal: %d %q", code, hd.Get("Location"))
	}
	_, body, _ = tech.get("/plans-adressage/1")
	if !strings.Contains(body, "Refusée") || !strings.Contains(body, "La plage 10.31.0.0/24 est celle des visioconférences") || strings.Contains(body, `id="refuser"`) {
		t.Fatal("the technicien does not read the refusal and its reason")
	}
	if code, _, _ := e.login("chef").get("/plans-adressage"); code != http.StatusForbidden {
		t.Fatalf("a chef opens the proposals: %d", code)
	}
	// The unscoped technicien sees the académie's proposals.
	if code, body, _ := e.login("tech").get("/plans-adressage"); code != 200 || !strings.Contains(body, "Refusée") {
		t.Fatalf("unscoped technicien: %d", code)
	}

	es, err := e.st.AuditEntries(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, en := range es {
		if en.Action == "access.denied" && en.Target == "school/"+hugo {
			got["denied"] = en.Actor
		}
		if strings.HasPrefix(en.Action, "ipplan.") {
			got[en.Action] = en.Actor
		}
	}
	if got["denied"] != "tech67" || got["ipplan.propose"] != "tech67" || got["ipplan.refuse"] != "rssi" {
		t.Fatalf("audit: %v", got)
	}
}
