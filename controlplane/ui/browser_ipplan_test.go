package ui

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigie/controlplane/store"
)

// TestBrowserIPPlanProposal: a Bas-Rhin technicien (scope 067) proposes a
// new wifi range for the Monnet collège from its page, is first told on
// the fields, in French, that the range overlaps another school's and that
// the pupils' zone has no profile; the RSSI reads the proposal as a diff
// and validates it; the draft then holds the plan, and both names are in
// the audit log.
func TestBrowserIPPlanProposal(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	pw := e.scopedTech("tech67", "067")
	b := newBrowser(t)

	tech := b.person(t, e.srv.URL)
	tech.login("tech67", pw)
	tech.open("/etablissements/" + monnet)
	tech.press("#proposer-plan")
	tech.waitText("h1", "Plan d’adressage proposé pour Collège Jean Monnet", 10*time.Second)
	tech.accessible()
	// The wifi row (the third) takes a range of the Haut-Rhin's Victor
	// Hugo collège, and the pupils' zone loses its profile.
	tech.do("fill a bad plan",
		chromedp.SetValue(chromedp.ID("p-2-cidrs"), "10.50.0.0/25"),
		chromedp.SetValue(chromedp.ID("p-0-profile"), ""),
		chromedp.SendKeys(chromedp.ID("p-comment"), "Nouveau réseau wifi du collège"),
	)
	tech.submit("#proposition")
	tech.waitText("#p-2-cidrs-err", "hors de votre périmètre", 10*time.Second)
	tech.waitText("#p-0-profile-err", "zone des élèves sans profil", 5*time.Second)
	tech.waitText("#erreurs", "chevauche", 5*time.Second)
	for _, id := range []string{"p-2-cidrs", "p-0-profile"} {
		if got := eval[string](tech, `document.getElementById("`+id+`").getAttribute("aria-invalid")`); got != "true" {
			t.Errorf("%s: aria-invalid %q", id, got)
		}
	}
	if strings.Contains(tech.textNow("main"), "Victor Hugo") {
		t.Error("the message names a school outside the technicien's scope")
	}
	for _, prob := range tech.scan() {
		t.Errorf("form with errors: %s", prob)
	}
	tech.accessible()
	tech.shot("50-plan-propose-erreurs")

	tech.do("fix the plan",
		chromedp.SetValue(chromedp.ID("p-2-cidrs"), "10.31.0.0/24"),
		chromedp.SetValue(chromedp.ID("p-0-profile"), "eleves"),
	)
	tech.submit("#proposition")
	tech.waitText("main", "Votre proposition est envoyée", 10*time.Second)
	tech.waitText("#etat", "En attente", 5*time.Second)
	tech.accessible()

	rssi := b.person(t, e.srv.URL)
	rssi.login("rssi", e.passwd["rssi"])
	rssi.open("/plans-adressage")
	rssi.waitText("#en-attente", "1 proposition en attente", 10*time.Second)
	rssi.waitText("#en-attente", "wifi", 5*time.Second)
	for _, prob := range rssi.scan() {
		t.Errorf("proposals page: %s", prob)
	}
	rssi.accessible()
	rssi.press(`#en-attente a[href^="/plans-adressage/"]`)
	rssi.waitText("#zone-wifi .diff-add", "10.31.0.0/24", 10*time.Second)
	rssi.waitText("#zone-wifi .diff-del", "10.30.0.0/24", 5*time.Second)
	rssi.waitText("#zone-pedagogique", "inchangée", 5*time.Second)
	for _, prob := range rssi.scan() {
		t.Errorf("proposal page: %s", prob)
	}
	rssi.accessible()
	rssi.shot("51-plan-propose-rssi")
	rssi.confirmAll()
	rssi.submit("#valider")
	rssi.waitText("main", "La proposition est validée", 10*time.Second)
	rssi.waitText("#etat", "Validée", 5*time.Second)

	// The draft holds the plan: the school's page (which reads the draft)
	// and the store say so.
	rssi.open("/etablissements/" + monnet)
	rssi.waitText("main table", "10.31.0.0/24", 10*time.Second)
	d, err := e.st.Draft(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var wifi []string
	for _, s := range d.Policy.Schools {
		if s.UAI != monnet {
			continue
		}
		for _, z := range s.Zones {
			if z.Name == "wifi" {
				wifi = z.CIDRs
			}
		}
	}
	if !slices.Equal(wifi, []string{"10.31.0.0/24"}) {
		t.Fatalf("the draft's wifi zone is %v", wifi)
	}
	rssi.waitText("#brouillon", "non publiée", 5*time.Second)

	// The technicien sees the decision.
	tech.open("/plans-adressage")
	tech.waitText("#traitees", "Validée", 10*time.Second)

	es, err := e.st.AuditEntries(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var validated map[string]any
	proposed := ""
	for _, en := range es {
		switch en.Action {
		case "ipplan.propose":
			proposed = en.Actor
		case "ipplan.validate":
			if en.Actor == "rssi" {
				json.Unmarshal(en.After, &validated)
			}
		}
	}
	if proposed != "tech67" || validated["proposed_by"] != "tech67" || validated["validated_by"] != "rssi" {
		t.Fatalf("audit: proposed by %q, validation %v", proposed, validated)
	}
	if p, err := e.st.IPProposal(context.Background(), 1); err != nil || p.Status != store.ProposalValidated || p.DraftRevision != d.Revision {
		t.Fatalf("stored proposal %+v (%v), draft revision %d", p, err, d.Revision)
	}
}
