package ui

import (
	"crypto/ed25519"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vigie/journal/export"
)

// TestRequisitionTwoSteps: the chef counts before extracting, is warned
// of an empty scope, and gets a result page with the full fingerprint,
// the counts per stream, the download and the summary; the history lists
// the export at once. A bad address is refused on its field, in French.
func TestRequisitionTwoSteps(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.login("chef")
	now := e.clock.now().In(paris)
	_, body, _ := c.get("/journaux")
	if !strings.Contains(body, `value="`+now.Add(time.Minute).Format("2006-01-02T15:04")+`"`) {
		t.Error("the form's « Au » does not default to now")
	}
	form := func(from, to time.Time, client string) url.Values {
		return url.Values{"uai": {monnet}, "from": {from.Format("2006-01-02T15:04")}, "to": {to.Format("2006-01-02T15:04")},
			"client": {client}, "reference": {"PV 2026/77"}, "motive": {"Réquisition judiciaire"}, "etape": {"compter"}}
	}

	// An empty scope (last year): warned before anything is extracted.
	code, body, _ := c.post("/journaux/exports", form(now.AddDate(-1, 0, 0), now.AddDate(-1, 0, 1), ""))
	if code != 200 || !strings.Contains(body, "Aucun enregistrement dans ce périmètre") || !strings.Contains(body, `id="extraire"`) {
		t.Fatalf("empty count: %d %s", code, between(body, `id="export"`, `</form>`))
	}

	// A bad address: on its field, in French, with the summary's link.
	code, body, _ = c.post("/journaux/exports", form(now.Add(-48*time.Hour), now, "10.10.0.999"))
	if code != 422 || !strings.Contains(body, `id="x-client" name="client"`) ||
		!regexp.MustCompile(`id="x-client"[^>]*aria-invalid="true" aria-describedby="x-client-err"`).MatchString(body) ||
		!strings.Contains(body, `<a href="#x-client">`) || strings.Contains(body, "ParseAddr") ||
		!strings.Contains(body, "n’est pas une adresse IP") || !strings.Contains(body, "<title>Erreur\u00a0: ") {
		t.Fatalf("bad client: %d %s", code, between(body, `<title>`, `id="recherches"`))
	}
	// The range reversed: on the « Au » field.
	code, body, _ = c.post("/journaux/exports", form(now, now.Add(-time.Hour), ""))
	if code != 422 || !strings.Contains(body, `id="x-to-err"`) || strings.Contains(body, "must start") {
		t.Fatalf("reversed range: %d", code)
	}

	// The real scope: counted, then extracted.
	f := form(now.Add(-48*time.Hour), now.Add(time.Hour), "")
	code, body, _ = c.post("/journaux/exports", f)
	if code != 200 || !strings.Contains(body, "6\u202f000 enregistrements dans ce périmètre") {
		t.Fatalf("count: %d %s", code, between(body, `id="comptage"`, `</div>`))
	}
	f.Set("etape", "extraire")
	code, body, _ = c.post("/journaux/exports", f)
	if code != 200 {
		t.Fatalf("extract: %d %s", code, between(body, `<main`, `</form>`))
	}
	sum := regexp.MustCompile(`id="resultat-empreinte">([0-9a-f]{64})<`).FindStringSubmatch(body)
	link := regexp.MustCompile(`href="(/journaux/exports/[0-9a-f]+)"`).FindStringSubmatch(body)
	if sum == nil || link == nil || !strings.Contains(body, "Navigation\u00a0: 6\u202f000") || !strings.Contains(body, "PV 2026/77") ||
		!strings.Contains(body, link[1]+`/resume.html"`) {
		t.Fatalf("result page: %s", between(body, `id="resultat"`, `</section>`))
	}
	// The history has it already, with its full fingerprint.
	if !strings.Contains(between(body, `id="historique"`, `</section>`), sum[1]) {
		t.Error("the history does not list the export just made")
	}
	code, zipBody, hd := c.get(link[1])
	if code != 200 || hd.Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %s", code, hd.Get("Content-Type"))
	}
	p := filepath.Join(t.TempDir(), "x.zip")
	os.WriteFile(p, []byte(zipBody), 0o600)
	res, err := export.VerifyFile(p, e.key.Public().(ed25519.PublicKey))
	if err != nil || res.Records["navigation"] != 6000 {
		t.Fatalf("verify: %v %v", res, err)
	}
	code, summary, _ := c.get(link[1] + "/resume.html")
	if code != 200 || !strings.Contains(summary, "PV 2026/77") {
		t.Fatalf("summary: %d", code)
	}
	// Another account cannot download it.
	if code, _, _ := e.login("rssi").get(link[1]); code != http.StatusNotFound {
		t.Errorf("another account downloads the export: %d", code)
	}
}
