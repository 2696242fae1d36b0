package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigie/controlplane/auth/sso"
	"vigie/controlplane/auth/sso/ssotest"
)

// TestBrowserSSO drives the whole sign-in with the académie's identity
// provider in Chromium, against a real OpenID provider: the RSSI by
// group, a chef d'établissement whose school comes from a FrEduRne-style
// claim, and a person whose claims map to no role, refused with a French
// page that says why.
func TestBrowserSSO(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	idp := ssotest.Start(t, e.srv.URL+"/connexion/academique/retour",
		ssotest.User{ID: "u1", Username: "claire.martin", Password: "mot de passe 1", First: "Claire", Last: "Martin",
			Claims: map[string]any{"groups": []string{"personnels", "vigie-rssi"}}},
		ssotest.User{ID: "u2", Username: "anne.petit", Password: "mot de passe 2", First: "Anne", Last: "Petit",
			Claims: map[string]any{"FrEduFonctAdm": "DIR", "FrEduRneResp": []string{hugo + "$UAJ$PU$N$T3$CLG$340"}}},
		ssotest.User{ID: "u3", Username: "eleve.curieux", Password: "mot de passe 3", First: "Élève", Last: "Curieux",
			Claims: map[string]any{"groups": []string{"eleves"}}})
	flow, err := sso.New(sso.Config{Issuer: idp.Issuer, ClientID: idp.ClientID, ClientSecretFile: idp.SecretFile,
		RedirectURL: e.srv.URL + "/connexion/academique/retour",
		Mapping: sso.Mapping{UAIClaim: "FrEduRneResp", Roles: []sso.RoleRule{
			{Claim: "groups", Value: "vigie-rssi", Role: "rssi"},
			{Claim: "FrEduFonctAdm", Value: "DIR", Role: "chef_etablissement"},
		}}}, e.api.Auth(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.ui.sso = flow
	b := newBrowser(t)

	// signIn clicks "Se connecter avec le compte académique" and fills
	// the provider's own form.
	signIn := func(p *person, user, password string) {
		p.t.Helper()
		p.open("/connexion?suite=%2Fetablissements")
		p.do("click the SSO button", chromedp.Click(chromedp.ID("sso")), chromedp.WaitVisible(chromedp.ID("username")))
		p.do("sign in at the provider",
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	}
	t.Run("rssi", func(t *testing.T) {
		p := b.person(t, e.srv.URL)
		p.open("/connexion")
		if got := p.text("#sso"); got != "Se connecter avec le compte académique" {
			t.Fatalf("login page offers %q", got)
		}
		p.accessible()
		signIn(p, "claire.martin", "mot de passe 1")
		waitAcross(p, ".who-name", "Claire Martin")
		if loc := p.location(); !strings.HasSuffix(loc, "/etablissements") {
			t.Fatalf("after sign-in at %s, want the page asked for", loc)
		}
		p.open("/listes")
		p.waitText("h1", "Listes", 10*time.Second)
		// Signing out ends the local session.
		p.do("sign out", chromedp.Click(chromedp.CSS(`form[action="/deconnexion"] button`)), chromedp.WaitVisible(chromedp.ID("sso")))
		p.open("/listes")
		if loc := p.location(); !strings.Contains(loc, "/connexion") {
			t.Fatalf("after sign-out /listes shows %s", loc)
		}
	})
	t.Run("chef with a UAI from a claim", func(t *testing.T) {
		p := b.person(t, e.srv.URL)
		signIn(p, "anne.petit", "mot de passe 2")
		waitAcross(p, ".who-name", "Anne Petit")
		p.open("/etablissements")
		body := p.textNow("main")
		if !strings.Contains(body, "Victor Hugo") || strings.Contains(body, "Jean Monnet") {
			t.Fatalf("the chef of %s sees: %s", hugo, shorten(body, 300))
		}
		p.open("/listes")
		if got := p.textNow("main"); !strings.Contains(got, "Accès refusé") && !strings.Contains(got, "refus") {
			t.Fatalf("a chef on /listes: %s", shorten(got, 200))
		}
	})
	t.Run("unmapped user refused in French", func(t *testing.T) {
		p := b.person(t, e.srv.URL)
		signIn(p, "eleve.curieux", "mot de passe 3")
		waitAcross(p, "h1", "Votre compte académique ne donne pas accès à Vigie")
		if got := p.text("#sso-refus"); !strings.Contains(got, "eleve.curieux") || !strings.Contains(got, "aucun des attributs") {
			t.Fatalf("refusal says %q", got)
		}
		p.accessible()
		p.shot("sso-refus")
		p.open("/")
		if loc := p.location(); !strings.Contains(loc, "/connexion") {
			t.Fatalf("the refused person reaches %s", loc)
		}
	})
}

// waitAcross waits for want in css while the browser goes through the
// redirects between Vigie and the provider: evaluating a page that is
// navigating away fails, and is retried.
func waitAcross(p *person, css, want string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.readyState === "complete" ? ((document.querySelector(%q)||{}).textContent||"") : ""`, css)))
		cancel()
		if err == nil && strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting for %q in %s: page %s, last error %v", want, css, p.location(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
