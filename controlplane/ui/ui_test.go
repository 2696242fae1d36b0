package ui

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/tstest"
)

// pagesByRole is who may open which page, written out rather than derived
// from the routes, so that a route given the wrong roles fails here.
var pagesByRole = []struct {
	path  string
	roles string // logins that get 200; the others get 403
}{
	{"/", "rssi chef tech audit"},
	{"/fragments/parc", "rssi chef tech audit"},
	{"/categories", "rssi tech"},
	{"/listes", "rssi"},
	{"/listes/academie-bloque", "rssi"},
	{"/profils", "rssi tech"},
	{"/profils/eleves/plages", "rssi tech"},
	{"/pare-feu", "rssi tech"},
	{"/tester", "rssi chef tech"},
	{"/publier", "rssi tech audit"},
	{"/etablissements", "rssi chef tech"},
	{"/etablissements/0671234X", "rssi chef tech"},
	{"/etablissements/nouveau", "rssi"},
	{"/plans-adressage", "rssi tech"},
	{"/plans-adressage/proposer?uai=0671234X", "tech"},
	{"/journaux", "rssi chef"},
	{"/audit", "rssi audit"},
	{"/rapport-annuel", "rssi chef tech"},
	{"/utilisateurs", "rssi"},
	{"/utilisateurs/chef", "rssi"},
	{"/compte", "rssi chef tech audit"},
}

func TestPagesByRole(t *testing.T) {
	e := newEnv(t, envOptions{})
	anon := e.client()
	clients := map[string]*client{}
	for _, l := range []string{"rssi", "chef", "tech", "audit"} {
		clients[l] = e.login(l)
	}
	for _, pg := range pagesByRole {
		t.Run(strings.TrimPrefix(pg.path, "/"), func(t *testing.T) {
			code, _, hd := anon.get(pg.path)
			switch {
			case strings.HasPrefix(pg.path, "/fragments/"):
				// Fetched by script: it is told where to send the person.
				if code != http.StatusUnauthorized || !strings.HasPrefix(hd.Get("X-Vigie-Login"), "/connexion") {
					t.Errorf("anonymous fragment: %d, login %q", code, hd.Get("X-Vigie-Login"))
				}
			case code != http.StatusSeeOther || !strings.HasPrefix(hd.Get("Location"), "/connexion"):
				t.Errorf("anonymous: %d to %q, want a redirect to the login form", code, hd.Get("Location"))
			}
			for login, c := range clients {
				want := http.StatusForbidden
				if slices.Contains(strings.Fields(pg.roles), login) {
					want = http.StatusOK
				}
				code, body, hd := c.get(pg.path)
				if code != want {
					t.Errorf("%s: status %d, want %d", login, code, want)
					continue
				}
				if ct := hd.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("%s: content type %q", login, ct)
				}
				if strings.Contains(body, "⟦") {
					t.Errorf("%s: a catalogue key is missing: %s", login, regexp.MustCompile(`⟦[^⟧]*⟧`).FindString(body))
				}
				if want == http.StatusForbidden && !strings.Contains(body, "Accès refusé") {
					t.Errorf("%s: the refusal page does not say so", login)
				}
				if csp := hd.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
					t.Errorf("%s: no content security policy", login)
				}
			}
		})
	}
}

// TestMenuShowsOnlyAllowedPages: a page not allowed is not offered.
func TestMenuShowsOnlyAllowedPages(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	for _, login := range []string{"rssi", "chef", "tech", "audit"} {
		t.Run(login, func(t *testing.T) {
			_, body, _ := e.login(login).get("/")
			nav := body[strings.Index(body, `<nav class="side"`):strings.Index(body, `</nav>`)]
			for _, pg := range pagesByRole {
				if strings.Count(pg.path, "/") > 1 || pg.path == "/" {
					continue
				}
				link := `href="` + pg.path + `"`
				if got, want := strings.Contains(nav, link), slices.Contains(strings.Fields(pg.roles), login); got != want {
					t.Errorf("menu link %s shown=%v, want %v", pg.path, got, want)
				}
			}
		})
	}
}

// TestChefSeesOnlyTheirSchool: a chef d'établissement cannot reach another
// school's pages or data, by the menu or by typing the address.
func TestChefSeesOnlyTheirSchool(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.login("chef")
	for _, path := range []string{
		"/etablissements/" + hugo,
		"/tester?adresse=exemple.fr&lieu=" + url.QueryEscape(hugo+"|pedagogique"),
		"/listes/hugo-autorise",
		"/listes?cherche=theatre.demo.ac-demo.fr",
	} {
		if code, body, _ := c.get(path); code != http.StatusForbidden || strings.Contains(body, "Victor Hugo") {
			t.Errorf("%s: status %d (want 403), or the other school is named", path, code)
		}
	}
	// Direct API calls with the browser session are refused too.
	if code, _, _ := c.get("/api/v1/schools/" + hugo); code != http.StatusForbidden {
		t.Errorf("API school of another school: %d", code)
	}
	// Their own pages do not show the other school.
	for _, path := range []string{"/", "/etablissements", "/tester", "/journaux"} {
		if _, body, _ := c.get(path); strings.Contains(body, "Victor Hugo") || strings.Contains(body, hugo) {
			t.Errorf("%s names the other school", path)
		}
	}
	// An export of another school through a forged form is refused and
	// the refusal is audited.
	c.get("/journaux")
	code, body, _ := c.post("/journaux/exports", url.Values{"uai": {hugo}, "from": {"2026-01-01T00:00"}, "to": {"2030-01-01T00:00"},
		"reference": {"PV 1"}, "motive": {"essai"}})
	if code == http.StatusOK || !strings.Contains(body, "Accès refusé") && !strings.Contains(body, "refusée") {
		t.Fatalf("export of another school: %d", code)
	}
	if !e.audited(t, "export.denied", "school/"+hugo) {
		t.Error("the refused export is not in the audit log")
	}
}

// audited reports whether the audit log holds an entry of action on target.
func (e *env) audited(t *testing.T, action, target string) bool {
	es, err := e.st.AuditEntries(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(es, func(a audit.Entry) bool { return a.Action == action && a.Target == target })
}

// TestTechnicianSeesNoBrowsingData: no host, URL or client of the journal
// appears on any page a technician can open, and the journal pages and
// exports are refused.
func TestTechnicianSeesNoBrowsingData(t *testing.T) {
	e := newEnv(t, envOptions{})
	hosts, clients := e.journalContent(t)
	if len(hosts) < 100 {
		t.Fatalf("only %d hosts in the journal: the test would prove nothing", len(hosts))
	}
	c := e.login("tech")
	for _, pg := range pagesByRole {
		if !slices.Contains(strings.Fields(pg.roles), "tech") {
			continue
		}
		_, body, _ := c.get(pg.path)
		text := visibleText(body)
		for h := range hosts {
			if strings.Contains(text, h) {
				t.Errorf("%s shows the journal host %s", pg.path, h)
			}
		}
		for a := range clients {
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(a) + `\b`).MatchString(text) {
				t.Errorf("%s shows the journal client %s", pg.path, a)
			}
		}
		if strings.Contains(body, "Requêtes bloquées") {
			t.Errorf("%s shows traffic statistics", pg.path)
		}
	}
	for _, path := range []string{"/journaux", "/audit"} {
		if code, _, _ := c.get(path); code != http.StatusForbidden {
			t.Errorf("%s: %d", path, code)
		}
	}
	c.get("/")
	if code, _, _ := c.post("/journaux/exports", url.Values{"uai": {monnet}, "from": {"2026-01-01T00:00"}, "to": {"2030-01-01T00:00"},
		"reference": {"x"}, "motive": {"x"}}); code != http.StatusForbidden {
		t.Errorf("export form as technician: %d", code)
	}
}

// journalContent returns the hosts and client addresses of the seeded
// journal, the browsing data a technician must never see.
func (e *env) journalContent(t *testing.T) (hosts, clients map[string]bool) {
	hosts, clients = map[string]bool{}, map[string]bool{}
	for _, uai := range []string{monnet, hugo} {
		q := archive.Query{UAI: uai, From: time.Unix(0, 0), To: e.clock.now().Add(time.Hour)}
		var r journal.Record
		err := e.arch.Scan(context.Background(), q, func(_ archive.Chain, s *archive.Stored) error {
			if err := journal.DecodeRecord(s.Payload, &r); err != nil {
				return err
			}
			hosts[r.Host] = true
			clients[r.Client.Addr().String()] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return hosts, clients
}

var tags = regexp.MustCompile(`(?s)<[^>]*>`)

func visibleText(html string) string { return tags.ReplaceAllString(html, " ") }

// TestDashboardChart: the chart counts the blocked navigation records of
// the last day, per category: the académie's for the RSSI, the school's
// for its chef.
func TestDashboardChart(t *testing.T) {
	e := newEnv(t, envOptions{})
	want := map[string]int64{}
	for _, uai := range []string{monnet, hugo} {
		var r journal.Record
		from := e.clock.now().Truncate(time.Hour).Add(-23 * time.Hour)
		e.arch.Scan(context.Background(), archive.Query{UAI: uai, From: from, To: e.clock.now()}, func(_ archive.Chain, s *archive.Stored) error {
			journal.DecodeRecord(s.Payload, &r)
			if r.Verdict == "block" {
				want[uai]++
			}
			return nil
		})
	}
	if want[monnet] == 0 || want[hugo] == 0 {
		t.Fatalf("no blocked record seeded: %v", want)
	}
	total := regexp.MustCompile(`Par catégorie \(([0-9\x{202f}]+) requêtes bloquées\)`)
	read := func(body string) int64 {
		m := total.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no chart total on the page")
		}
		n, _ := strconv.ParseInt(strings.ReplaceAll(m[1], "\u202f", ""), 10, 64)
		return n
	}
	_, body, _ := e.login("rssi").get("/")
	if got := read(body); got != want[monnet]+want[hugo] {
		t.Errorf("RSSI chart: %d blocked, want %d", got, want[monnet]+want[hugo])
	}
	if !strings.Contains(body, `<svg class="chart"`) || !strings.Contains(body, "Adulte") {
		t.Error("the RSSI's dashboard has no chart with category names")
	}
	_, body, _ = e.login("chef").get("/")
	if got := read(body); got != want[monnet] {
		t.Errorf("chef chart: %d blocked, want their school's %d", got, want[monnet])
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	t.Run("wrong password", func(t *testing.T) {
		code, body, _ := e.client().post("/connexion", url.Values{"login": {"rssi"}, "password": {"non"}})
		if code != http.StatusUnauthorized || !strings.Contains(body, "Identifiant ou mot de passe incorrect") {
			t.Errorf("status %d", code)
		}
		if !strings.Contains(body, `value="rssi"`) {
			t.Error("the login is not kept in the form")
		}
	})
	t.Run("unknown account says the same", func(t *testing.T) {
		_, body, _ := e.client().post("/connexion", url.Values{"login": {"personne"}, "password": {"non"}})
		if !strings.Contains(body, "Identifiant ou mot de passe incorrect") {
			t.Error("an unknown account is told apart from a wrong password")
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		var code int
		var body string
		for range 6 {
			code, body, _ = e.client().post("/connexion", url.Values{"login": {"audit"}, "password": {"non"}})
		}
		if code != http.StatusTooManyRequests || !strings.Contains(body, "Trop de tentatives") {
			t.Errorf("6th failure: %d", code)
		}
	})
	t.Run("next page kept", func(t *testing.T) {
		c := e.client()
		_, _, hd := c.get("/profils")
		loc := hd.Get("Location")
		if loc != "/connexion?suite=%2Fprofils" {
			t.Fatalf("redirect to %q", loc)
		}
		_, body, _ := c.get(loc)
		if !strings.Contains(body, `name="suite" value="/profils"`) {
			t.Fatal("the login form lost the page asked for")
		}
		code, _, hd := c.post("/connexion", url.Values{"login": {"tech"}, "password": {e.passwd["tech"]}, "suite": {"/profils"}})
		if code != http.StatusSeeOther || hd.Get("Location") != "/profils" {
			t.Errorf("after login: %d to %q", code, hd.Get("Location"))
		}
	})
	t.Run("no open redirect", func(t *testing.T) {
		for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "/api/v1/me", "javascript:alert(1)"} {
			_, _, hd := e.client().post("/connexion", url.Values{"login": {"tech"}, "password": {e.passwd["tech"]}, "suite": {next}})
			if loc := hd.Get("Location"); loc != "/" {
				t.Errorf("suite %q: redirected to %q", next, loc)
			}
		}
	})
	t.Run("foreign origin refused", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/connexion", strings.NewReader(url.Values{"login": {"tech"}, "password": {e.passwd["tech"]}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestSessionExpiryAndLogout(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	c := e.login("rssi")
	if code, _, _ := c.get("/profils"); code != http.StatusOK {
		t.Fatalf("before expiry: %d", code)
	}
	e.clock.advance(9 * time.Hour)
	code, _, hd := c.get("/profils")
	if code != http.StatusSeeOther || hd.Get("Location") != "/connexion?motif=expiree&suite=%2Fprofils" {
		t.Fatalf("after expiry: %d to %q", code, hd.Get("Location"))
	}
	if _, body, _ := c.get(hd.Get("Location")); !strings.Contains(body, "Votre session a expiré") {
		t.Error("the login form does not say the session expired")
	}
	// The refresh of the dashboard tells its script where to go.
	if code, _, hd := c.get("/fragments/parc"); code != http.StatusUnauthorized || hd.Get("X-Vigie-Login") == "" {
		t.Errorf("fragment after expiry: %d", code)
	}

	c = e.login("tech")
	code, _, hd = c.post("/deconnexion", nil)
	if code != http.StatusSeeOther || hd.Get("Location") != "/connexion?motif=deconnecte" {
		t.Fatalf("logout: %d to %q", code, hd.Get("Location"))
	}
	if code, _, _ := c.get("/"); code != http.StatusSeeOther {
		t.Errorf("still signed in after logout: %d", code)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	c := e.login("rssi")
	code, body, _ := c.post("/listes", url.Values{"id": {"x"}, "category": {"academie_bloque"}, "csrf_token": {"faux"}})
	if code != http.StatusForbidden || !strings.Contains(body, "Formulaire expiré") {
		t.Errorf("wrong token: %d", code)
	}
	if _, err := e.st.List(context.Background(), "x"); err == nil {
		t.Error("the list was created without a valid token")
	}
}

// TestListPaste: a paste adds every valid line, reports each invalid one
// with its number, and keeps the invalid lines for correction.
func TestListPaste(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	c := e.login("rssi")
	c.get("/listes/academie-bloque")
	paste := "# demandes du 3 mars\nJeux.Exemple.FR.\nhttps://video.exemple.fr/chaine/42\n||pub.exemple.fr^\n0.0.0.0 pistage.exemple.fr\n" +
		"exemple fr\nfr\nhttp://[::1\n*.casino.exemple.fr  # signalé\nbloque.demo.ac-demo.fr\n"
	code, body, _ := c.post("/listes/academie-bloque/ajouter", url.Values{"entries": {paste}, "comment": {"Signalements de mars"}})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"3 lignes refusées", "Ligne 6", "Ligne 7", "Ligne 8", typo("Entrées ajoutées : 5 ; déjà présentes : 1.")} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	kept := regexp.MustCompile(`(?s)<textarea id="entries"[^>]*>(.*?)</textarea>`).FindStringSubmatch(body)
	if kept == nil || kept[1] != "exemple fr\nfr\nhttp://[::1" {
		t.Errorf("kept lines: %q", kept)
	}
	es, err := e.st.Entries(context.Background(), "academie-bloque", store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range es {
		got = append(got, en.Value)
		if en.Value != "bloque.demo.ac-demo.fr" && (en.Comment != "Signalements de mars" || en.Author != "rssi") {
			t.Errorf("entry %s: comment %q, author %q", en.Value, en.Comment, en.Author)
		}
	}
	want := []string{"bloque.demo.ac-demo.fr", "casino.exemple.fr", "jeux.exemple.fr", "pistage.exemple.fr", "pub.exemple.fr", "video.exemple.fr/chaine/42"}
	if !slices.Equal(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
	// A clean paste redirects with the count.
	code, _, hd := c.post("/listes/academie-bloque/ajouter", url.Values{"entries": {"autre.exemple.fr"}})
	if code != http.StatusSeeOther || !strings.Contains(hd.Get("Location"), "ok=entriesadded") {
		t.Errorf("clean paste: %d to %q", code, hd.Get("Location"))
	}
	// Removal.
	c.get("/listes/academie-bloque")
	code, _, _ = c.post("/listes/academie-bloque/retirer", url.Values{"kind": {"domain"}, "value": {"autre.exemple.fr"}})
	if code != http.StatusSeeOther {
		t.Errorf("remove: %d", code)
	}
	if !e.audited(t, "list.entries.remove", "list/academie-bloque") {
		t.Error("the removal is not audited")
	}
}

// TestPublishAndRollback publishes a change through the form and rolls
// it back, each with its comment in the history.
func TestPublishAndRollback(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	c := e.login("rssi")
	c.get("/publier")
	code, body, _ := c.post("/publier", url.Values{"comment": {""}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Le commentaire est obligatoire") {
		t.Errorf("no comment: %d", code)
	}
	code, body, _ = c.post("/publier", url.Values{"comment": {"rien"}})
	if code != http.StatusConflict || !strings.Contains(body, "Rien à publier") {
		t.Errorf("nothing changed: %d", code)
	}
	c.post("/listes/academie-bloque/ajouter", url.Values{"entries": {"nouveau.exemple.fr"}})
	_, body, _ = c.get("/publier")
	if !strings.Contains(body, "nouveau.exemple.fr") {
		t.Error("the diff does not show the added domain")
	}
	code, _, hd := c.post("/publier", url.Values{"comment": {"Blocage demandé par le collège"}})
	if code != http.StatusSeeOther || hd.Get("Location") != "/publier?n=2&ok=published" {
		t.Fatalf("publish: %d to %q", code, hd.Get("Location"))
	}
	if e.pub.Head().Serial != 2 {
		t.Fatalf("serial %d", e.pub.Head().Serial)
	}
	_, body, _ = c.get("/publier?n=2&ok=published")
	if !strings.Contains(body, "La version 2 est publiée") || !strings.Contains(body, "Blocage demandé par le collège") {
		t.Error("the history does not show the publication")
	}
	// A rollback asks first, naming the draft changes it discards.
	c.post("/listes/academie-bloque/ajouter", url.Values{"entries": {"brouillon.exemple.fr"}})
	_, body, _ = c.get("/publier")
	if !strings.Contains(body, "1 modification non publiée") && !strings.Contains(body, "1 modification non publiée") {
		t.Errorf("no draft banner: %s", between(body, `<body>`, `<main`))
	}
	code, body, _ = c.post("/publier/retour/1", url.Values{"comment": {"Erreur de saisie"}})
	if code != http.StatusOK || e.pub.Head().Serial != 2 || !strings.Contains(between(body, `id="retour"`, `</section>`), "brouillon.exemple.fr") ||
		!strings.Contains(body, `name="confirme" value="1"`) {
		t.Fatalf("rollback question: %d, serial %d", code, e.pub.Head().Serial)
	}
	code, _, _ = c.post("/publier/retour/1", url.Values{"comment": {"Erreur de saisie"}, "confirme": {"1"}})
	if code != http.StatusSeeOther || e.pub.Head().Serial != 3 {
		t.Fatalf("rollback: %d, serial %d", code, e.pub.Head().Serial)
	}
	if _, err := e.st.Entries(context.Background(), "academie-bloque", store.Page{Limit: 10}); err != nil {
		t.Fatal(err)
	}
}

// TestTester checks the explanation of a verdict in French.
func TestTester(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	c := e.login("tech")
	for _, tc := range []struct {
		name, address, place, want string
		block                      bool
	}{
		{"adult blocked for pupils", "https://www.pornhub.com/", monnet + "|pedagogique", "figure dans la liste adult-top1m", true},
		{"académie exception wins", "https://eduscol.education.fr/", monnet + "|pedagogique", "liste d'exceptions academie-autorise", false},
		{"unfiltered servers", "https://www.pornhub.com/", monnet + "|serveurs", "n'applique aucun filtrage", false},
		{"school exception of Monnet", "autorise.demo.ac-demo.fr", monnet + "|pedagogique", "college-monnet-autorise", false},
		{"nothing listed", "exemple-inconnu.fr", monnet + "|administratif", "aucune liste bloquée", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := c.get("/tester?" + url.Values{"adresse": {tc.address}, "lieu": {tc.place}}.Encode())
			body = html.UnescapeString(body)
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			word := "Autorisé"
			if tc.block {
				word = "Bloqué"
			}
			if !strings.Contains(body, `id="verdict">`+word) || !strings.Contains(body, typo(tc.want)) {
				t.Errorf("want %s and %q in %s", word, tc.want, between(body, `id="explication">`, "</p>"))
			}
		})
	}
	code, body, _ := c.get("/tester?adresse=" + url.QueryEscape("http://exemple fr") + "&lieu=" + url.QueryEscape(monnet+"|pedagogique"))
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "ni un nom de domaine ni une adresse valide") {
		t.Errorf("bad address: %d", code)
	}
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

// TestChartRefreshesInBackground: once the figures are older than their
// time to live, a page gets them at once and a recomputation runs behind.
func TestChartRefreshesInBackground(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	uais := []string{monnet}
	first, err := e.ui.blockedActivity(ctx, uais, e.clock.now())
	if err != nil || first.Total == 0 {
		t.Fatalf("%v, %+v", err, first)
	}
	if again, _ := e.ui.blockedActivity(ctx, uais, e.clock.now()); again != first {
		t.Fatal("recomputed within the time to live")
	}
	e.clock.advance(2 * activityTTL)
	if stale, _ := e.ui.blockedActivity(ctx, uais, e.clock.now()); stale != first {
		t.Fatal("a page waited for the recomputation")
	}
	fresh := first
	tstest.Eventually(t, 20*time.Second, func() bool {
		fresh, _ = e.ui.blockedActivity(ctx, uais, e.clock.now())
		return fresh != first
	}, "the figures were never recomputed")
	if !fresh.To.After(first.To) {
		t.Errorf("the new figures end at %s, the old at %s", fresh.To, first.To)
	}
}

// TestFirewallServicesLine: the ports field takes the matrix's services,
// the matrix shows them, and a line opening every port to the internet
// (the old form) is refused with the form to write instead.
func TestFirewallServicesLine(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	c := e.login("rssi")
	c.get("/pare-feu")
	code, body, _ := c.post("/pare-feu/flux", url.Values{"section": {"internet"}, "from": {"serveurs"}, "proto": {"any"}, "action": {"allow"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "services: [web, dns, ntp]") {
		t.Fatalf("allow-everything line: status %d", code)
	}
	code, _, _ = c.post("/pare-feu/flux", url.Values{"section": {"internet"}, "from": {"serveurs"}, "proto": {"any"}, "ports": {"ntp"}, "action": {"allow"}, "comment": {"Heure"}})
	if code != http.StatusSeeOther {
		t.Fatalf("services line: status %d", code)
	}
	d, err := e.st.Draft(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	last := d.Policy.Firewall.Internet[len(d.Policy.Firewall.Internet)-1]
	if strings.Join(last.Services, ",") != "ntp" || len(last.Ports) != 0 {
		t.Fatalf("saved line %+v", last)
	}
}
