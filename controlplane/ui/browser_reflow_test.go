package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pageScan checks a rendered page the way a reviewer on a phone would:
// nothing wider than the screen (WCAG 1.4.10), no untranslated key (⟦),
// no ordinary space before ; ! ? (French typography wants a narrow
// no-break one), and no common English word in the visible text outside
// code (identifiers, domains and rules are shown as code).
const pageScan = `(function(words){
  var out = [];
  var w = document.documentElement.scrollWidth, iw = window.innerWidth;
  if (w > iw) {
    var wide = [];
    document.querySelectorAll("body *").forEach(function(el){
      var r = el.getBoundingClientRect();
      if (r.right > iw + 1 && wide.length < 4 && (el.parentElement === null || el.parentElement.closest(".table-wrap") === null)) {
        wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && el.className.baseVal === undefined ? "." + el.className : "") + " " + Math.round(r.right));
      }
    });
    out.push("document " + w + " px wide for a " + iw + " px screen: " + wide.join(", "));
  }
  if (document.documentElement.outerHTML.indexOf("\u27e6") >= 0) { out.push("untranslated key ⟦"); }
  var body = document.body.cloneNode(true);
  body.querySelectorAll("code, pre, kbd, samp, script, style, svg, textarea, option, [translate=no]").forEach(function(el){ el.remove(); });
  // Only ordinary white space folds: \s would fold the no-break spaces
  // the scan is looking for.
  var text = body.textContent.replace(/[ \t\n\r]+/g, " ");
  var m = text.match(/.{0,30} [;!?].{0,10}/);
  if (m) { out.push("ordinary space before ; ! ? in " + JSON.stringify(m[0])); }
  var re = new RegExp("\\b(" + words.join("|") + ")\\b", "i");
  var e = text.match(new RegExp(".{0,30}\\b(" + words.join("|") + ")\\b.{0,30}", "i"));
  if (e) { out.push("English word " + JSON.stringify(e[1]) + " in " + JSON.stringify(e[0])); }
  return out;
})(%s)`

// scan runs pageScan on the page open.
func (p *person) scan() []string {
	p.t.Helper()
	words := `["` + strings.Join(englishWords, `","`) + `"]`
	return eval[[]string](p, fmt.Sprintf(pageScan, words))
}

// TestBrowserPhoneAndFrench opens every page of every role at 320 px
// and scans it: no horizontal overflow, no untranslated key, French
// typography, no English. The scan itself must catch each defect.
func TestBrowserPhoneAndFrench(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := newBrowser(t)

	t.Run("the scan finds each defect", func(t *testing.T) {
		p := b.person(t, e.srv.URL)
		p.open("/connexion")
		p.do("plant defects", chromedp.Evaluate[chromedp.Void](`(function(){
			var m = document.querySelector("main");
			var d = document.createElement("div"); d.style.width = "2000px"; d.textContent = "x"; m.appendChild(d);
			var q = document.createElement("p"); q.textContent = "Vraiment ? ⟦cle.absente⟧ The value is invalid"; m.appendChild(q);
		})()`))
		probs := strings.Join(p.scan(), "\n")
		for _, want := range []string{"px wide", "⟦", "space before", "English word"} {
			if !strings.Contains(probs, want) {
				t.Errorf("the scan misses %q: %s", want, probs)
			}
		}
	})

	year := fmt.Sprint(e.clock.now().In(paris).Year())
	pages := map[string][]string{
		"rssi": {"/", "/?periode=7j", "/?periode=30j", "/categories", "/categories?version=publiee", "/listes", "/listes?cherche=www.pornhub.com",
			"/listes/academie-bloque", "/profils", "/profils?version=publiee", "/profils/eleves/plages", "/pare-feu",
			"/tester", "/tester?adresse=https%3A%2F%2Fwww.pornhub.com%2F&lieu=" + monnet + "%7Cpedagogique", "/publier",
			"/etablissements", "/etablissements/" + monnet, "/etablissements/nouveau", "/journaux", "/audit", "/utilisateurs",
			"/utilisateurs/chef", "/compte", "/nulle-part", "/demandes", "/rapport-annuel", "/rapport-annuel?annee=" + year + "&uai=&departement=067"},
		"chef":  {"/", "/journaux", "/demandes", "/etablissements", "/etablissements/" + monnet, "/tester", "/compte", "/etablissements/" + hugo, "/rapport-annuel?annee=" + year},
		"tech":  {"/", "/etablissements", "/etablissements/" + monnet, "/pare-feu", "/profils", "/categories", "/publier", "/rapport-annuel?annee=" + year + "&uai=" + monnet},
		"audit": {"/", "/audit", "/publier", "/compte"},
	}
	for _, role := range []string{"rssi", "chef", "tech", "audit"} {
		t.Run(role, func(t *testing.T) {
			if _, ok := e.passwd[role]; !ok {
				t.Skipf("no %s account in the fixture", role)
			}
			p := b.person(t, e.srv.URL)
			p.login(role, e.passwd[role])
			p.do("phone screen", chromedp.EmulateViewport(320, 640))
			for _, path := range pages[role] {
				p.open(path)
				p.waitText("main", "", 5*time.Second)
				for _, prob := range p.scan() {
					t.Errorf("%s %s: %s", role, path, prob)
				}
			}
			p.open("/")
			p.shot("40-" + role + "-telephone")
		})
	}
	p := b.person(t, e.srv.URL)
	p.do("phone screen", chromedp.EmulateViewport(320, 640))
	for _, path := range []string{"/connexion", "/deblocage?uai=" + monnet + "&url=http%3A%2F%2Fjeux.example.fr%2F&categorie=games"} {
		p.open(path)
		for _, prob := range p.scan() {
			t.Errorf("%s: %s", path, prob)
		}
	}
}
