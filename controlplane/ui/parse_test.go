package ui

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseEntries(t *testing.T) {
	for _, tc := range []struct {
		name          string
		in            string
		domains, urls []string
		bad           []int
	}{
		{"bare domains, case and trailing dot", "Exemple.FR.\nwww.exemple.fr", []string{"exemple.fr", "www.exemple.fr"}, nil, nil},
		{"comments and blanks", "# liste\n\n! adblock\n  exemple.fr  # demandé\n", []string{"exemple.fr"}, nil, nil},
		{"hosts file", "0.0.0.0 pub.exemple.fr\n127.0.0.1\tpistage.exemple.fr\n::1 v6.exemple.fr", []string{"pistage.exemple.fr", "pub.exemple.fr", "v6.exemple.fr"}, nil, nil},
		{"adblock", "||pub.exemple.fr^\n||pistes.exemple.fr^$third-party", []string{"pistes.exemple.fr", "pub.exemple.fr"}, nil, nil},
		{"wildcard", "*.casino.exemple.fr", []string{"casino.exemple.fr"}, nil, nil},
		{"urls", "https://video.exemple.fr/chaine/42\nexemple.fr/page?x=1", nil, []string{"exemple.fr/page?x=1", "video.exemple.fr/chaine/42"}, nil},
		{"a whole site as url is its domain", "https://exemple.fr/\nhttp://www.exemple.fr", []string{"exemple.fr", "www.exemple.fr"}, nil, nil},
		{"idn", "école.exemple.fr", []string{"xn--cole-9oa.exemple.fr"}, nil, nil},
		{"duplicates", "a.fr\nA.FR\na.fr.", []string{"a.fr"}, nil, nil},
		{"crlf", "a.fr\r\nb.fr\r\n", []string{"a.fr", "b.fr"}, nil, nil},
		{"bad lines reported by number", "ok.fr\nexemple fr\nfr\nhttp://[::1\n" + strings.Repeat("a", 64) + ".fr\nok2.fr", []string{"ok.fr", "ok2.fr"}, nil, []int{2, 3, 4, 5}},
		{"invalid utf-8", "a.fr\n\xff\xfe.fr", []string{"a.fr"}, nil, []int{2}},
		{"too long", strings.Repeat("a", 5000) + ".fr", nil, nil, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := parseEntries(tc.in)
			if !slices.Equal(p.Domains, tc.domains) || !slices.Equal(p.URLs, tc.urls) {
				t.Errorf("domains %q urls %q, want %q %q", p.Domains, p.URLs, tc.domains, tc.urls)
			}
			var bad []int
			for _, b := range p.Bad {
				bad = append(bad, b.Line)
				if b.Reason == "" || strings.Contains(b.Reason, "⟦") {
					t.Errorf("line %d: reason %q", b.Line, b.Reason)
				}
			}
			if !slices.Equal(bad, tc.bad) {
				t.Errorf("bad lines %v, want %v (%+v)", bad, tc.bad, p.Bad)
			}
		})
	}
}

func TestParseEntriesBound(t *testing.T) {
	var b strings.Builder
	for i := range maxPasteLines + 10 {
		b.WriteString("d")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(".exemple.fr\n")
	}
	p := parseEntries(b.String())
	if len(p.Bad) != 1 || !strings.Contains(p.Bad[0].Reason, "découpez") {
		t.Errorf("over the bound: %d bad lines, %+v", len(p.Bad), p.Bad[:min(len(p.Bad), 2)])
	}
}

// FuzzParseEntries: any paste gives canonical entries or numbered
// refusals, never a crash, and every entry parses again to itself.
func FuzzParseEntries(f *testing.F) {
	for _, s := range []string{"exemple.fr\n", "0.0.0.0 a.fr", "||a.fr^$x", "https://a.fr/b?c#d", "*.a.fr # x", "\xff", "a.fr\r\n\r\nb", "[::1]:80/x", "xn--cole-9oa.fr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p := parseEntries(in)
		lines := strings.Count(in, "\n") + 1
		for _, b := range p.Bad {
			if b.Line < 1 || b.Line > lines || !utf8.ValidString(b.Text) {
				t.Fatalf("bad line %+v out of %d lines", b, lines)
			}
		}
		for _, d := range p.Domains {
			if again := parseEntries(d); !slices.Equal(again.Domains, []string{d}) {
				t.Fatalf("domain %q parses again to %+v", d, again)
			}
		}
		for _, u := range p.URLs {
			if again := parseEntries(u); len(again.Bad) > 0 || len(again.URLs)+len(again.Domains) != 1 {
				t.Fatalf("url %q parses again to %+v", u, again)
			}
		}
	})
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/profils":              "/profils",
		"/listes?cherche=a.fr":  "/listes?cherche=a.fr",
		"//evil.example":        "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"/api/v1/me":            "/",
		"/a\r\nSet-Cookie: x":   "/",
		"profils":               "/",
		"/%2f 0":                "/",
		"/%2f%2fevil.example":   "/",
		"/%5cevil.example":      "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSafeNext: the destination after login is always a local path.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "https://x", "/a?b=c#d", "/%2f%2fx", "/\t/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := safeNext(in)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") || strings.ContainsAny(got, "\r\n\\") {
			t.Fatalf("safeNext(%q) = %q", in, got)
		}
	})
}

// FuzzSchoolForm: any form gives a school whose zone rows are bounded and
// whose lists hold no separator.
func FuzzSchoolForm(f *testing.F) {
	f.Add("pedagogique", "10.0.0.0/24, 10.1.0.0/24", "eth1", "eleves")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, name, cidrs, ifaces, profile string) {
		form := map[string][]string{"name": {"x"}, "zone.0.name": {name}, "zone.0.cidrs": {cidrs}, "zone.0.interfaces": {ifaces},
			"zone.0.profile": {profile}, "zone.1.name": {""}}
		s, rows := schoolFromForm(form, "0671234X")
		if len(rows) != 2 || len(s.Zones) > 1 {
			t.Fatalf("%d rows, %d zones", len(rows), len(s.Zones))
		}
		for _, z := range s.Zones {
			for _, c := range append(z.CIDRs, z.Interfaces...) {
				if c == "" || strings.ContainsAny(c, ", ;\n\r\t") {
					t.Fatalf("list item %q", c)
				}
			}
		}
	})
}
