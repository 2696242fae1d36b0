package blockpage

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run go test -update and review the diff\n%s", name, got)
	}
}

func TestGolden(t *testing.T) {
	at := time.Date(2026, 11, 28, 18, 52, 3, 0, time.UTC) // 19:52:03 in Paris
	tests := []struct {
		name string
		page Page
	}{
		{"blocked.html", Blocked(Page{
			Host: "pornhub.com", URL: "http://pornhub.com/view?id=<script>alert(1)</script>",
			CategoryName: "Adulte", CategoryDesc: "Sites pour adultes, pornographie.",
			Time: at, Reference: "K7Q2-M9TD",
			School: "Collège Jean Monnet", Contact: "Secrétariat du collège, 03 88 00 00 00",
			Academie: "Académie de Strasbourg",
		})},
		{"blocked-minimal.html", Blocked(Page{Host: "x.example", Time: at, Reference: "AAAA-BBBB"})},
		{"error-502.html", Error(502, Page{Host: "down.example", Time: at, Academie: "Académie de Strasbourg"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, Bytes(tc.page))
		})
	}
}

func TestSelfContained(t *testing.T) {
	out := string(Bytes(Blocked(Page{Host: "a.example", URL: "http://a.example/", Time: time.Now()})))
	for _, bad := range []string{"src=", "href=", "url(", "@import", "<script", "<link"} {
		if strings.Contains(out, bad) {
			t.Errorf("page contains %q: it must not need any external resource", bad)
		}
	}
}

func TestEscapesAndBounds(t *testing.T) {
	long := "http://a.example/" + strings.Repeat("x", 10000)
	out := string(Bytes(Blocked(Page{Host: "a.example", URL: long + "<b>", Time: time.Now()})))
	if strings.Contains(out, "<b>") {
		t.Error("URL not escaped")
	}
	if len(out) > 8000 {
		t.Errorf("page of %d bytes for a 10 KB URL: the URL is not truncated", len(out))
	}
}

func TestFrenchTime(t *testing.T) {
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 28, 18, 52, 3, 0, time.UTC), "samedi 28 novembre 2026 à 19:52:03"},
		{time.Date(2026, 7, 1, 6, 0, 0, 0, time.UTC), "mercredi 1er juillet 2026 à 08:00:00"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := FrenchTime(tc.at); got != tc.want {
				t.Errorf("got %q", got)
			}
		})
	}
}

// TestUnblockForm: a refusal with an unblock address offers the request
// form, carrying the school, the address and the category; an error page
// or a refusal without the address offers none.
func TestUnblockForm(t *testing.T) {
	p := Blocked(Page{URL: "http://jeux.example.fr/x", Host: "jeux.example.fr", Reference: "K7Q2-9XTR",
		UnblockURL: "https://vigie.ac-demo.fr/deblocage", UAI: "0671234X", Category: "games", Time: time.Unix(0, 0)})
	html := string(Bytes(p))
	for _, want := range []string{`action="https://vigie.ac-demo.fr/deblocage"`, `name="uai" value="0671234X"`, `name="categorie" value="games"`,
		`name="url" value="http://jeux.example.fr/x"`, `name="motif"`, `name="demandeur"`, "Demander le déblocage"} {
		if !strings.Contains(html, want) {
			t.Errorf("no %q in the block page", want)
		}
	}
	p.UnblockURL = ""
	if strings.Contains(string(Bytes(p)), "<form") {
		t.Error("a form without an unblock address")
	}
	if strings.Contains(string(Bytes(Error(502, Page{UnblockURL: "https://x/deblocage"}))), "<form") {
		t.Error("an error page offers an unblock request")
	}
}
