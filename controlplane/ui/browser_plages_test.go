package ui

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserProfileWindows: the RSSI gives the pupils social networks on
// Wednesday lunchtime through the profile's time windows form, sees the
// window said in French, checks it in the Tester page inside and outside
// the window (on the draft), edits it, is told in French next to the field
// when the end is before the start, and removes it.
func TestBrowserProfileWindows(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	b := newBrowser(t)
	p := b.person(t, e.srv.URL)
	p.login("rssi", e.passwd["rssi"])

	// From the profiles page to the eleves profile's windows.
	p.open("/profils")
	p.do("follow the windows link", chromedp.Click(chromedp.CSS(`a[href="/profils/eleves/plages"]`)), chromedp.WaitVisible(chromedp.ID("plage-form")))
	p.waitText("h1", "Plages horaires du profil Élèves", 10*time.Second)
	p.waitText("#plages", "de 12:00 à 13:30", 5*time.Second)
	p.keyboard()

	// Add: social networks allowed on Wednesday from 12:00 to 13:30. The
	// day is ticked with the keyboard.
	p.do("fill the window form",
		chromedp.Click(chromedp.CSS(`#plage-form input[name=categories][value=social_networks]`)),
		chromedp.Click(chromedp.CSS(`#plage-form input[name=action][value=allow]`)),
		chromedp.Focus(chromedp.CSS(`#plage-form input[name=days][value=mer]`)),
		chromedp.KeyEvent(" "),
		chromedp.SetValue(chromedp.ID("w-from"), "12:00"),
		chromedp.SetValue(chromedp.ID("w-to"), "13:30"),
	)
	if !eval[bool](p, `document.querySelector('#plage-form input[name=days][value=mer]').checked`) {
		t.Fatal("the space bar does not tick the day")
	}
	p.accessible()
	p.shot("15-plages-horaires")
	p.submit("#plage-form")
	p.waitText("main", "La plage horaire a été ajoutée au brouillon", 10*time.Second)
	sentence := p.text("#plage-1 .window-sentence")
	if miss := contains(sentence, "autorisé mer. de 12:00 à 13:30"); miss != "" {
		t.Errorf("the new window reads %q", sentence)
	}
	p.open("/profils")
	p.waitText("main", sentence, 10*time.Second)

	// The draft's verdict for a social network at the Monnet collège:
	// allowed on Wednesday at 12:30, blocked at 14:00.
	for _, tc := range []struct{ when, verdict string }{{"2026-12-02T12:30", "Autorisé"}, {"2026-12-02T14:00", "Bloqué"}} {
		q := url.Values{"adresse": {"www.facebook.com"}, "lieu": {monnet + "|pedagogique"}, "quand": {tc.when}, "version": {"brouillon"}}
		p.open("/tester?" + q.Encode())
		p.waitText("#verdict", tc.verdict, 120*time.Second)
	}

	// Edit: the window ends at 12:45.
	p.open("/profils/eleves/plages")
	p.do("edit the window", chromedp.Click(chromedp.CSS(`#plage-1 a`)), chromedp.WaitVisible(chromedp.ID("plage-form")))
	p.waitText("#form-titre", "Modifier la plage 2", 10*time.Second)
	if got := eval[string](p, `document.getElementById("w-to").value`); got != "13:30" {
		t.Fatalf("the edit form shows the end %q", got)
	}
	p.do("change the end", chromedp.SetValue(chromedp.ID("w-to"), "12:45"))
	p.submit("#plage-form")
	p.waitText("main", "La plage horaire a été modifiée", 10*time.Second)
	p.waitText("#plage-1", "mer. de 12:00 à 12:45", 5*time.Second)
	if n := eval[int](p, `document.querySelectorAll("#plages tbody tr").length`); n != 2 {
		t.Errorf("%d windows after the edit, want 2", n)
	}

	// A refused window: the end before the start, said next to the end.
	p.do("fill a bad window",
		chromedp.Click(chromedp.CSS(`#plage-form input[name=categories][value=games]`)),
		chromedp.Click(chromedp.CSS(`#plage-form input[name=action][value=block]`)),
		chromedp.SetValue(chromedp.ID("w-from"), "14:00"),
		chromedp.SetValue(chromedp.ID("w-to"), "13:00"),
	)
	p.submit("#plage-form")
	p.waitText("#w-to-erreur", "la fin doit être après le début", 10*time.Second)
	if got := eval[string](p, `document.getElementById("w-to").getAttribute("aria-invalid")+"|"+document.getElementById("w-to").getAttribute("aria-describedby")+"|"+document.getElementById("w-from").value+"|"+document.activeElement.id`); got != "true|w-to-hint w-to-erreur|14:00|erreurs" {
		t.Errorf("refused field: %q (aria-invalid, described by, start kept, focus)", got)
	}
	if !eval[bool](p, `document.querySelector('#plage-form input[name=categories][value=games]').checked`) {
		t.Error("the ticked category was lost")
	}
	p.accessible()
	p.shot("16-plages-horaires-erreur")

	// Remove the window.
	p.open("/profils/eleves/plages")
	p.confirmAll()
	p.submit("#plage-1")
	p.waitText("main", "La plage horaire a été retirée", 10*time.Second)
	if s := p.textNow("#plages"); strings.Contains(s, "12:45") || !strings.Contains(s, "de 12:00 à 13:30") {
		t.Errorf("after removal the windows read %q", s)
	}
}
