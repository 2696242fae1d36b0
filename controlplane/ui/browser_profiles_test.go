package ui

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"vigie/rules/policy"
)

// TestBrowserProfileHTTPS: the RSSI sets the explicit proxy's ports and
// the HTTPS block page of the pupils' profile in the profile editor; a
// bad port is refused in French and the page's title says so; the Tester
// says plainly what a pupil sees on a blocked HTTPS site, without the
// block page setting (published) and with it (draft), with and without
// the académie's CA on the device.
func TestBrowserProfileHTTPS(t *testing.T) {
	e := newEnv(t, envOptions{noArchive: true})
	b := newBrowser(t)
	p := b.person(t, e.srv.URL)
	p.login("rssi", e.passwd["rssi"])

	blocked := url.Values{"adresse": {"https://www.pornhub.com/"}, "lieu": {monnet + "|pedagogique"}}
	p.open("/tester?" + blocked.Encode())
	p.waitText("#verdict", "Bloqué", 30*time.Second)
	p.waitText("main", "ne voit pas la page de blocage, que l’autorité de certification de l’académie soit installée sur son poste ou non", 2*time.Second)

	p.open("/profils")
	p.waitText("#https-explique", "erreur de certificat", 5*time.Second)
	if got := eval[string](p, `document.getElementById("s-eleves-connect_ports").getAttribute("aria-label")`); !strings.HasPrefix(got, "Ports du proxy explicite pour Élèves") {
		t.Errorf("connect ports label %q", got)
	}
	save := `form[action="/profils"] button[type=submit]`
	p.do("type a bad port", chromedp.SetValue(chromedp.ID("s-eleves-connect_ports"), "443, 70000"))
	p.press(save)
	p.waitText("main", typo("« 70000 » n’est ni un port"), 10*time.Second)
	if got := eval[string](p, `document.title`); !strings.HasPrefix(got, "Erreur\u00a0: ") {
		t.Errorf("title after a refused form: %q", got)
	}
	p.accessible()

	p.open("/profils")
	p.do("set the ports and the HTTPS block page",
		chromedp.SetValue(chromedp.ID("s-eleves-connect_ports"), "443, 8443 8000-8100"),
		chromedp.Click(chromedp.ID("s-eleves-https_block_page")),
	)
	p.press(save)
	p.waitText("main", "enregistr", 10*time.Second)
	d, err := e.st.Draft(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(d.Policy.Profiles, func(pr policy.Profile) bool { return pr.ID == "eleves" })
	if pr := d.Policy.Profiles[i]; !pr.HTTPSBlockPage || !slices.Equal(pr.ConnectPorts, []string{"443", "8443", "8000-8100"}) {
		t.Fatalf("draft profile: block page %v, ports %v", pr.HTTPSBlockPage, pr.ConnectPorts)
	}
	if got := eval[string](p, `document.getElementById("s-eleves-connect_ports").value`); got != "443, 8443, 8000-8100" {
		t.Errorf("the form shows the ports %q", got)
	}
	p.accessible()
	p.shot("18-profils-https")

	blocked.Set("version", "brouillon")
	p.open("/tester?" + blocked.Encode())
	p.waitText("#verdict", "Bloqué", 120*time.Second)
	p.waitText("main", "dont le poste a l’autorité de certification de l’académie voit la page de blocage en français", 2*time.Second)
	p.waitText("main", "erreur de certificat", 2*time.Second)
}

// TestConnectPorts: the ports field reads ports and ranges however they
// are separated, and names the first value refused.
func TestConnectPorts(t *testing.T) {
	for _, tc := range []struct {
		in, want, bad string
	}{
		{"", "[]", ""},
		{"443", "[443]", ""},
		{" 443, 8443;8000-8100\t443 ", "[443 8443 8000-8100]", ""},
		{"443, 70000", "", "70000"},
		{"9-1", "", "9-1"},
		{"https", "", "https"},
		{"0", "", "0"},
	} {
		got, err := connectPorts(tc.in)
		if tc.bad != "" {
			if err == nil || err.Error() != tc.bad {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.bad)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != strings.Trim(tc.want, "[]") {
			t.Errorf("%q: %v %v, want %s", tc.in, got, err, tc.want)
		}
	}
}
