package ui

import (
	"archive/zip"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"vigie/controlplane/store"
	"vigie/journal/export"
	"vigie/proxy/edge"
	"vigie/proxy/http/blockpage"
	"vigie/rules"
	"vigie/tstest"
)

// TestBrowser drives the real control plane with Debian's Chromium, as the
// people who use it would: the RSSI changes a list, publishes, watches a
// real edge apply the version and tests an address; a chef d'établissement
// exports their school's journal and verifies the ZIP as the AQSSI would,
// and cannot reach another school; a technician sees no browsing data.
// Every page visited is checked for accessibility (labels, one title, the
// language, focus, contrast) and captured; -update keeps the captures
// under testdata/screenshots.
func TestBrowser(t *testing.T) {
	start := time.Now()
	e := newEnv(t, envOptions{})
	ed := e.startEdge(t, "0671234x-1", monnet)
	b := newBrowser(t)
	t.Logf("control plane, edge and browser ready in %s", time.Since(start).Round(time.Millisecond))

	t.Run("rssi", func(t *testing.T) {
		p := b.person(t, e.srv.URL)
		p.open("/connexion")
		// The checker itself must find a field without a label.
		p.do("add an unlabelled field", chromedp.Evaluate[chromedp.Void](`document.querySelector("main").appendChild(document.createElement("input"))`))
		if probs := eval[[]string](p, a11yScript); len(probs) == 0 {
			t.Fatal("the accessibility check misses a field without label")
		}
		p.open("/connexion")
		p.accessible()
		p.shot("00-connexion")
		p.login("rssi", e.passwd["rssi"])

		// The edge started on the built-in strict policy and syncs
		// version 1 from the control plane: the dashboard shows it.
		p.waitText("#parc", "À jour", 30*time.Second)
		p.accessible()
		p.keyboard()

		// Add a domain to the académie's block list.
		p.open("/listes/academie-bloque")
		p.do("fill the list form",
			chromedp.SendKeys(chromedp.ID("entries"), "jeux-interdits.example.fr\nfaux domaine\n"),
			chromedp.SendKeys(chromedp.ID("comment"), "Signalé par le collège Jean Monnet"),
		)
		p.submit("#ajout")
		p.waitText("main", "1 ligne refusée", 10*time.Second)
		p.waitText("main", "jeux-interdits.example.fr", 5*time.Second)
		// The title says first that the form came back refused (RGAA 8.6).
		p.title("Erreur\u00a0: academie-bloque — Liste — Vigie")
		p.accessible()
		p.shot("04-liste")
		// The draft is visible: the banner on every page, the badge on
		// the new entry.
		p.waitText("#brouillon", "1 modification non publiée", 2*time.Second)
		p.waitText("main table", "non publié", 2*time.Second)

		// Publish it with a comment, after reading the diff.
		p.open("/publier")
		p.waitText("#diff-listes", "jeux-interdits.example.fr", 5*time.Second)
		p.do("comment", chromedp.SendKeys(chromedp.ID("comment"), "Blocage d'un site de jeux signalé par le collège"))
		p.accessible()
		p.shot("07-publier")
		p.confirmAll()
		p.submit("#publier")
		p.waitText("main", "La version 2 est publiée", 10*time.Second)

		// The real edge applies version 2; the dashboard shows it
		// without a reload (it refreshes itself).
		p.open("/")
		p.waitText("#parc", "version 2", 40*time.Second)
		p.waitText("#parc", "À jour", 10*time.Second)
		if g := ed.Generation().Load(); g.Serial != 2 || g.Rules.Decide(profileOf(t, g.Rules, monnet, "pedagogique"),
			rules.Query{Host: "www.jeux-interdits.example.fr"}).Action != rules.Block {
			t.Errorf("the edge runs serial %d and does not block the new domain", g.Serial)
		}
		p.shot("01-tableau-de-bord")

		// Test the address and read why it is blocked.
		p.open("/tester")
		p.do("test an address",
			chromedp.SendKeys(chromedp.ID("adresse"), "http://www.jeux-interdits.example.fr/accueil"),
		)
		p.submit("#tester")
		p.waitText("#verdict", "Bloqué", 10*time.Second)
		if got := p.text("#explication"); contains(got, "jeux-interdits.example.fr", "academie-bloque", "Élèves") != "" {
			t.Errorf("explanation %q", got)
		}
		p.accessible()
		p.shot("08-tester")

		// Every other page, checked and kept.
		for _, pg := range []struct{ path, shot, want string }{
			{"/categories", "02-categories", "Adulte"},
			{"/listes?cherche=www.pornhub.com", "03-listes", "adult-top1m"},
			{"/profils", "05-profils-et-zones", "Réglages des profils"},
			{"/pare-feu", "06-pare-feu", "table inet vigie"},
			{"/etablissements", "09-etablissements", "Collège Victor Hugo"},
			{"/etablissements/" + monnet, "10-etablissement", "Plan d'adressage"},
			{"/journaux", "11-journaux-rssi", "Gels"},
			{"/audit", "12-audit", "Chaîne intacte"},
			{"/utilisateurs", "13-utilisateurs", "chef.hugo"},
			{"/compte", "14-compte", "Jetons d'API"},
		} {
			p.open(pg.path)
			p.waitText("main", typo(pg.want), 10*time.Second)
			p.accessible()
			p.shot(pg.shot)
		}

		// Each title names its page and the object shown (RGAA 8.6).
		for path, want := range map[string]string{
			"/etablissements/" + monnet:       "Collège Jean Monnet (" + monnet + ") — Établissement — Vigie",
			"/utilisateurs/chef":              "chef — Compte — Vigie",
			"/utilisateurs/chef/jetons":       "chef — Jetons d’API — Vigie",
			"/listes/college-monnet-autorise": "college-monnet-autorise (Collège Jean Monnet) — Liste — Vigie",
			"/profils/eleves/plages":          "profil Élèves — Plages horaires — Vigie",
			"/tester?adresse=www.pornhub.com&lieu=" + monnet + "%7Cpedagogique": "www.pornhub.com — Tester une adresse — Vigie",
			"/demandes": "Demandes de déblocage — Vigie",
		} {
			p.open(path)
			p.title(want)
		}

		// A rollback names the draft changes it discards, and asks.
		p.open("/listes/academie-bloque")
		p.do("add a draft entry", chromedp.SendKeys(chromedp.ID("entries"), "encore-un.example.fr\n"))
		p.submit("#ajout")
		p.open("/publier")
		p.waitText("#brouillon", "1 modification non publiée", 5*time.Second)
		p.do("comment the rollback", chromedp.SendKeys(chromedp.ID("rb-1"), "Retour demandé par le rectorat"))
		p.submit("#rb-form-1")
		p.waitText("#retour", "Ces modifications non publiées du brouillon seront perdues", 5*time.Second)
		p.waitText("#retour-pertes", "encore-un.example.fr", 2*time.Second)
		if s := ed.Generation().Load().Serial; s != 2 {
			t.Errorf("the rollback was made before it was confirmed: the edge runs %d", s)
		}
		p.accessible()
		p.shot("17-retour-confirmation")
		p.submit("#retour-form")
		p.waitText("main", "Retour effectué", 10*time.Second)
		if _, err := e.st.LatestVersion(context.Background()); err != nil || e.pub.Head().Serial != 3 {
			t.Errorf("after the confirmed rollback the head is %d (%v)", e.pub.Head().Serial, err)
		}
	})

	// A teacher blocked by the filter asks from the block page; the RSSI
	// approves, publishes, and the school's edge lets the site through.
	t.Run("enseignant", func(t *testing.T) {
		const site = "007arcadegames.com" // in UT1's games, blocked for pupils
		before := e.pub.Head().Serial
		if g := ed.Generation().Load(); g.Rules.Decide(profileOf(t, g.Rules, monnet, "pedagogique"), rules.Query{Host: site}).Action != rules.Block {
			t.Fatalf("%s is not blocked to start with", site)
		}
		// The block page as the edge renders it, served from elsewhere:
		// its form posts to the control plane.
		page := blockpage.Bytes(blockpage.Blocked(blockpage.Page{Host: site, URL: "http://" + site + "/fractions", Time: time.Now(),
			Reference: "K7Q2-9XTR", School: "Collège Jean Monnet", CategoryName: "Jeux", UnblockURL: e.srv.URL + "/deblocage",
			UAI: monnet, Category: "games"}))
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			w.Write(page)
		}))
		defer origin.Close()
		teacher := b.person(t, origin.URL)
		teacher.open("/")
		teacher.do("ask", chromedp.SendKeys(chromedp.ID("motif"), "Jeu de calcul mental pour la 6e B"),
			chromedp.SendKeys(chromedp.ID("demandeur"), "m.dupont@ac-demo.fr"))
		teacher.submit("form.unblock")
		teacher.waitText("#demande-envoyee", "Demande transmise", 10*time.Second)
		teacher.shot("50-enseignant-demande")

		p := b.person(t, e.srv.URL)
		p.login("rssi", e.passwd["rssi"])
		p.open("/demandes")
		p.waitText("#en-attente", "m.dupont@ac-demo.fr", 5*time.Second)
		p.accessible()
		p.shot("51-demandes")
		p.press(`#en-attente form button[value=approve]`)
		p.waitText("main", "acceptée", 10*time.Second)
		p.open("/publier")
		p.waitText("#diff-listes", site, 5*time.Second)
		p.do("comment", chromedp.SendKeys(chromedp.ID("comment"), "Déblocage demandé par un enseignant"))
		p.confirmAll()
		p.submit("#publier")
		p.waitText("main", "est publiée", 10*time.Second)
		if !tstest.WaitFor(40*time.Second, func() bool {
			g := ed.Generation().Load()
			return g.Serial > before && g.Rules.Decide(profileOf(t, g.Rules, monnet, "pedagogique"), rules.Query{Host: site}).Action == rules.Allow
		}) {
			t.Fatalf("the edge runs %d and still blocks %s", ed.Generation().Load().Serial, site)
		}
	})

	// The RSSI lets chefs decide their school's requests; the chef of
	// Jean Monnet approves one, which lands in the school's exceptions
	// in the draft, and is offered no académie-wide exception.
	t.Run("chef-deblocage", func(t *testing.T) {
		const site = "www.jeux-educatifs.example.fr"
		rssi := b.person(t, e.srv.URL)
		rssi.login("rssi", e.passwd["rssi"])
		rssi.open("/demandes")
		rssi.do("let chefs decide", chromedp.Click(chromedp.ID("approbateurs-chef")))
		rssi.submit("#form-reglage")
		rssi.waitText("main", "Réglage enregistré", 10*time.Second)
		// The block page's form, posted as the teacher's browser would.
		code, body, _ := e.client().post("/deblocage", url.Values{"uai": {monnet}, "url": {"https://" + site + "/fractions"},
			"motif": {"Exercices de fractions en 6e"}, "demandeur": {"c.leroy@ac-demo.fr"}})
		if code != http.StatusCreated {
			t.Fatalf("request: %d %s", code, between(body, "<main", "</main>"))
		}

		p := b.person(t, e.srv.URL)
		p.login("chef", e.passwd["chef"])
		p.open("/demandes")
		p.waitText("#en-attente", site, 5*time.Second)
		if n := eval[float64](p, `document.querySelectorAll('#en-attente input[name=portee][value=academie], #reglage').length`); n != 0 {
			t.Error("the chef is offered an académie-wide exception or the setting")
		}
		p.accessible()
		p.shot("52-chef-demandes")
		p.press(`#en-attente form button[value=approve]`)
		p.waitText("main", "acceptée", 10*time.Second)
		es, err := e.st.Entries(context.Background(), "college-monnet-autorise", store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(es, func(en store.Entry) bool {
			return en.Value == site && en.Author == "chef" && strings.Contains(en.Comment, "c.leroy@ac-demo.fr")
		}) {
			t.Errorf("the chef's approval is not in the school's exceptions: %+v", es)
		}
		if !e.audited(t, "settings.unblock", "settings/unblock") {
			t.Error("the setting's change is not audited")
		}
	})

	t.Run("chef", func(t *testing.T) {
		p := b.person(t, e.srv.URL)
		p.login("chef", e.passwd["chef"])
		p.waitText("h1", "Collège Jean Monnet", 5*time.Second)
		p.title("Collège Jean Monnet — Tableau de bord — Vigie")
		if s := p.textNow("main"); strings.Contains(s, "Victor Hugo") || strings.Contains(s, hugo) {
			t.Error("the chef's dashboard names another school")
		}
		p.accessible()
		p.shot("20-chef-tableau-de-bord")

		// The requisition in two steps. A scope of last year holds
		// nothing: the count says so before anything is extracted.
		dir := t.TempDir()
		p.allowDownloads(dir)
		now := e.clock.now().In(paris)
		p.open("/journaux")
		if got := eval[string](p, `document.getElementById("x-to").value`); got != now.Add(time.Minute).Format("2006-01-02T15:04") {
			t.Errorf("« Au » defaults to %q, want now", got)
		}
		p.do("fill the export form with last year",
			chromedp.SetValue(chromedp.ID("x-from"), now.AddDate(-1, 0, 0).Format("2006-01-02T15:04")),
			chromedp.SetValue(chromedp.ID("x-to"), now.AddDate(-1, 0, 1).Format("2006-01-02T15:04")),
			chromedp.SendKeys(chromedp.ID("x-ref"), "PV 2026/4512"),
			chromedp.SendKeys(chromedp.ID("x-motive"), "Réquisition judiciaire du 27 novembre"),
		)
		p.accessible()
		p.shot("21-chef-journaux")
		p.press("#compter")
		p.waitText("#comptage", "Aucun enregistrement dans ce périmètre", 10*time.Second)
		p.waitText("#extraire", "archive vide", 2*time.Second)
		p.accessible()
		p.shot("23-chef-journaux-vide")

		// The last two days: counted, then extracted.
		p.do("fix the dates",
			chromedp.SetValue(chromedp.ID("x-from"), now.Add(-48*time.Hour).Format("2006-01-02T15:04")),
			chromedp.SetValue(chromedp.ID("x-to"), now.Add(time.Hour).Format("2006-01-02T15:04")),
		)
		p.press(`#form-export button[value=compter]`)
		p.waitText("#comptage", "6\u202f000 enregistrements dans ce périmètre", 10*time.Second)
		p.shot("24-chef-journaux-comptage")
		p.press("#extraire")
		p.waitText("#resultat", "Extraction terminée", 60*time.Second)
		sum := p.text("#resultat-empreinte")
		if len(sum) != 64 || !strings.Contains(p.text("#resultat-comptes"), "Navigation\u00a0: 6\u202f000") {
			t.Errorf("result: fingerprint %q, counts %q", sum, p.text("#resultat-comptes"))
		}
		// The history lists it at once, with the full fingerprint.
		p.waitText("#historique", sum, 2*time.Second)
		p.accessible()
		p.shot("25-chef-journaux-resultat")
		p.do("download", chromedp.Click(chromedp.ID("telecharger")))
		zipPath := waitZip(t, dir, 60*time.Second)
		res, err := export.VerifyFile(zipPath, e.key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatalf("vigie logs verify refuses the export: %v", err)
		}
		if res.Records["navigation"] == 0 || res.Manifest.Requete.UAI != monnet || res.Manifest.Reference != "PV 2026/4512" {
			t.Errorf("export: %v records, school %s, reference %q", res.Records, res.Manifest.Requete.UAI, res.Manifest.Reference)
		}
		if got := eval[string](p, `document.getElementById("resume").getAttribute("href")`); !strings.HasSuffix(got, "/resume.html") {
			t.Errorf("summary link %q", got)
		}

		// The same export handed to the AQSSI inside Vigie: no e-mail.
		p.confirmAll()
		p.press("#transmettre")
		p.waitText("main", "L’export a été transmis à l’AQSSI", 10*time.Second)
		p.waitText("#transmissions", "Transmis le", 2*time.Second)
		p.waitText("#transmissions", sum, 2*time.Second)
		p.accessible()
		p.shot("26-chef-transmis-aqssi")

		// Another school by direct address: refused, named nowhere.
		for _, path := range []string{"/etablissements/" + hugo, "/listes", "/utilisateurs", "/tester?adresse=x.fr&lieu=" + hugo + "%7Cpedagogique"} {
			p.open(path)
			if h := p.text("h1"); h != "Accès refusé" {
				t.Errorf("%s: page %q, want a refusal", path, h)
			}
		}
		p.open("/etablissements/" + hugo)
		p.shot("22-chef-acces-refuse")
	})

	t.Run("aqssi", func(t *testing.T) {
		// The AQSSI finds the chef's export on their page and downloads
		// it: the same signed file, verified as a court would.
		p := b.person(t, e.srv.URL)
		p.login("aqssi", e.passwd["aqssi"])
		dir := t.TempDir()
		p.allowDownloads(dir)
		p.open("/aqssi")
		p.waitText("h1", "Réquisitions reçues", 5*time.Second)
		p.waitText("#transmissions", monnet, 2*time.Second)
		p.accessible()
		p.shot("40-aqssi-requisitions")
		p.do("download", chromedp.Click(chromedp.CSS(`#transmissions a[id^="telecharger-"]`)))
		zipPath := waitZip(t, dir, 60*time.Second)
		res, err := export.VerifyFile(zipPath, e.key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatalf("the AQSSI's copy does not verify: %v", err)
		}
		if res.Manifest.Requete.UAI != monnet || res.Manifest.Reference != "PV 2026/4512" {
			t.Errorf("AQSSI's export: school %s, reference %q", res.Manifest.Requete.UAI, res.Manifest.Reference)
		}
		// Nothing else is the AQSSI's: no policy, no logs.
		for _, path := range []string{"/journaux", "/listes", "/utilisateurs"} {
			p.open(path)
			if h := p.text("h1"); h != "Accès refusé" {
				t.Errorf("aqssi %s: page %q, want a refusal", path, h)
			}
		}
		// The chef sees that the AQSSI has it.
		c := b.person(t, e.srv.URL)
		c.login("chef", e.passwd["chef"])
		c.open("/journaux")
		c.waitText("#transmissions", "téléchargé par l’AQSSI le", 5*time.Second)
		c.shot("41-chef-telecharge-par-aqssi")
		// Every step is in the audit log.
		es, err := e.st.AuditEntries(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, en := range es {
			if strings.HasPrefix(en.Action, "requisition.") || en.Action == "logs.export" || strings.HasPrefix(en.Action, "export") {
				seen[en.Action] = en.Actor
			}
		}
		if seen["requisition.transmit"] != "chef" || seen["requisition.download"] != "aqssi" {
			t.Errorf("audit of the transmission: %v", seen)
		}
	})

	t.Run("technicien", func(t *testing.T) {
		p := b.person(t, e.srv.URL)
		p.login("tech", e.passwd["tech"])
		p.waitText("#parc", "0671234x-1", 10*time.Second)
		if s := p.textNow("main"); strings.Contains(s, "Requêtes bloquées") {
			t.Error("a technician sees traffic statistics")
		}
		p.shot("30-technicien-tableau-de-bord")
		p.open("/journaux")
		if h := p.text("h1"); h != "Accès refusé" {
			t.Errorf("journaux: %q", h)
		}
		// The menu offers none of the pages with browsing data.
		if nav := p.text("nav.side"); strings.Contains(nav, "Journaux") || strings.Contains(nav, "Audit") || strings.Contains(nav, "Listes") {
			t.Errorf("technician menu: %q", nav)
		}
	})
	t.Logf("browser tests took %s", time.Since(start).Round(time.Millisecond))
}

// startEdge runs a real edge of school uai, syncing from the control
// plane with its edge token, its DNS filter on loopback.
func (e *env) startEdge(t *testing.T, id, uai string) *edge.Edge {
	cfg := edge.Config{
		UAI:      uai,
		StateDir: t.TempDir(),
		ControlPlane: edge.ControlPlaneConfig{URL: e.srv.URL, Token: e.edgeTok[id], PollTimeout: 2 * time.Second,
			MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second},
		// Nothing listens on the discard port: the scenario never
		// resolves a name, it watches the policy.
		DNS: edge.DNSConfig{Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:9"}},
	}
	ed, err := edge.New(cfg, edge.Deps{Log: quiet, PublicKey: e.key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ed.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ed.Shutdown(context.Background()) })
	return ed
}

func profileOf(t *testing.T, rs *rules.Ruleset, uai, zone string) rules.ProfileID {
	id, ok := rs.ZoneProfile(uai, zone)
	if !ok {
		t.Fatalf("no zone %s in %s", zone, uai)
	}
	return id
}

// TestReviewPortsAreTheEdgeDefaults: the firewall review renders with the
// edge's default redirect ports.
func TestReviewPortsAreTheEdgeDefaults(t *testing.T) {
	if reviewConfig.DNSPort != edge.DefaultFirewallDNSPort || reviewConfig.HTTPPort != edge.DefaultFirewallHTTPPort ||
		reviewConfig.HTTPSPort != edge.DefaultFirewallHTTPSPort {
		t.Errorf("review ports %+v differ from the edge's defaults", reviewConfig)
	}
}

// title checks the document's title.
func (p *person) title(want string) {
	p.t.Helper()
	if got := eval[string](p, `document.title`); got != want {
		p.t.Errorf("%s: title %q, want %q", p.location(), got, want)
	}
}

// confirmAll answers yes to the page's confirmation dialogs.
func (p *person) confirmAll() {
	p.do("accept confirmations", chromedp.Evaluate[chromedp.Void](`window.confirm = function () { return true; }`))
}

// allowDownloads saves this person's downloads in dir.
func (p *person) allowDownloads(dir string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
		BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
	})
	if err != nil {
		p.t.Fatalf("allow downloads: %v", err)
	}
}

// waitZip waits for a complete ZIP in dir: Chromium may write the file
// under its final name while the download is still running.
func waitZip(t *testing.T, dir string, within time.Duration) string {
	var found string
	if !tstest.WaitFor(within, func() bool {
		ents, _ := os.ReadDir(dir)
		for _, en := range ents {
			if !strings.HasSuffix(en.Name(), ".zip") {
				continue
			}
			path := filepath.Join(dir, en.Name())
			if zr, err := zip.OpenReader(path); err == nil {
				zr.Close()
				found = path
				return true
			}
		}
		return false
	}) {
		ents, _ := os.ReadDir(dir)
		t.Fatalf("no complete ZIP in %s after %s (%d files)", dir, within, len(ents))
	}
	return found
}

// accessible checks the page against the RGAA criteria a script can see:
// the language, one main title, a label for every field, a text
// alternative for every image, and the contrast of every text.
func (p *person) accessible() {
	p.t.Helper()
	problems := eval[[]string](p, a11yScript)
	for _, pr := range problems {
		p.t.Errorf("%s: %s", p.location(), pr)
	}
}

// keyboard checks that the first Tab reaches the skip link and that the
// focus is visible.
func (p *person) keyboard() {
	p.t.Helper()
	p.do("tab", chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`), chromedp.KeyEvent(kb.Tab))
	got := eval[string](p, `(function(){var a=document.activeElement;var s=getComputedStyle(a);return a.className+"|"+s.outlineStyle+"|"+s.top;})()`)
	parts := strings.Split(got, "|")
	if parts[0] != "skip" || parts[1] == "none" || parts[2] == "-48px" {
		p.t.Errorf("first Tab: focus %q (want the visible skip link with an outline)", got)
	}
}

// a11yScript returns the problems it finds, each in a sentence.
const a11yScript = `(function () {
  var out = [];
  if (document.documentElement.lang !== "fr") out.push("lang is " + document.documentElement.lang);
  var h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) out.push(h1 + " h1 elements");
  document.querySelectorAll("input, select, textarea").forEach(function (el) {
    if (el.type === "hidden" || el.type === "submit") return;
    if ((el.labels && el.labels.length) || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")) return;
    out.push("field without label: " + (el.name || el.id));
  });
  document.querySelectorAll("img").forEach(function (el) {
    if (!el.hasAttribute("alt")) out.push("image without alt: " + el.src);
  });
  document.querySelectorAll("button").forEach(function (el) {
    if (!el.textContent.trim() && !el.getAttribute("aria-label")) out.push("button without name");
  });
  function rgb(s) { var m = s.match(/[\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; }
  function lum(c) {
    var a = c.slice(0, 3).map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
  }
  function bg(el) {
    for (; el; el = el.parentElement) {
      var c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  }
  var seen = 0;
  var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (var n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    var el = n.parentElement;
    if (!el || el.closest("svg, option, .sr-only, .skip")) continue;
    var st = getComputedStyle(el);
    if (st.visibility === "hidden" || st.display === "none") continue;
    var fg = rgb(st.color), b = bg(el);
    var l1 = lum(fg), l2 = lum(b);
    var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    var size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
    var need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < need) {
      out.push("contrast " + ratio.toFixed(2) + " < " + need + " for \"" + n.textContent.trim().slice(0, 40) + "\"");
      if (++seen > 5) break;
    }
  }
  return out;
})()`
