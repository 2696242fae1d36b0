package listfmt

import (
	"bytes"
	"regexp"
	"testing"
	"unicode/utf8"

	"vigie/rules/normalize"
)

// checkReport holds for every parse: counts add up, problems are bounded,
// name the file, and come in line order.
func checkReport(t *testing.T, rep Report, emitted int, file string) {
	t.Helper()
	if rep.Accepted != emitted {
		t.Fatalf("Accepted = %d, emitted %d", rep.Accepted, emitted)
	}
	if len(rep.Problems) > MaxProblems || len(rep.Problems) > rep.Rejected {
		t.Fatalf("%d problems for %d rejected", len(rep.Problems), rep.Rejected)
	}
	last := 0
	for _, p := range rep.Problems {
		if p.File != file || p.Line < last || p.Line < 1 || p.Reason == "" {
			t.Fatalf("bad problem %+v after line %d", p, last)
		}
		last = p.Line
	}
}

// FuzzParseDomains checks every format on arbitrary input: no panic, no
// error from an in-memory reader, and every entry a canonical host.
func FuzzParseDomains(f *testing.F) {
	for _, s := range []string{
		"example.com\n# c\n.a.fr\r\n",
		"0.0.0.0 a.com b.com # x\n::1 localhost\n",
		"[Adblock Plus 2.0]\n! c\n||a.com^$important\n@@||b.com^|\n##.ad\n",
	} {
		for format := range byte(4) {
			f.Add([]byte(s), format)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, format byte) {
		fm := Format(format % 4)
		n, lastLine := 0, 0
		rep, err := ParseDomains(bytes.NewReader(data), "f", fm, func(e Entry) {
			n++
			if e.Kind != Domain || e.Strict || e.Line < lastLine || e.Line < 1 {
				t.Fatalf("bad entry %+v after line %d", e, lastLine)
			}
			if e.Allow && fm != FormatAdBlock && fm != FormatAuto {
				t.Fatalf("Allow entry in %v format: %+v", fm, e)
			}
			if h, err := normalize.Host(e.Value); err != nil || h != e.Value {
				t.Fatalf("entry %q not canonical: %q, %v", e.Value, h, err)
			}
			lastLine = e.Line
		})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep, n, "f")
	})
}

// FuzzParseURLs checks that every URL entry is canonical: normalize.URL
// gives it back unchanged.
func FuzzParseURLs(f *testing.F) {
	f.Add([]byte("example.com/path\nhttp://A.com:8080/x/../y?q#f\n# c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		rep, err := ParseURLs(bytes.NewReader(data), "f", func(e Entry) {
			n++
			host, rest, err := normalize.URL(e.Value)
			if e.Kind != URL || err != nil || host+rest != e.Value {
				t.Fatalf("entry %+v not canonical: %q %q %v", e, host, rest, err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep, n, "f")
	})
}

// FuzzParseExpressions checks that every entry compiles.
func FuzzParseExpressions(f *testing.F) {
	f.Add([]byte("(banner|sponsor)\n(a)\\1\n[x\n# c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		rep, err := ParseExpressions(bytes.NewReader(data), "f", func(e Entry) {
			n++
			if _, err := regexp.Compile(e.Value); e.Kind != Expression || err != nil {
				t.Fatalf("entry %+v: %v", e, err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep, n, "f")
	})
}

// FuzzGlobalUsage checks that the parser never panics and keeps only valid
// UTF-8 and known usage values.
func FuzzGlobalUsage(f *testing.F) {
	f.Add([]byte("# c\nNAME:\tadult\nDEFAULT_TYPE: black\nNAME FR: Adulte (X)\nDESC RU: x\n\nNAME: adult\nX\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, probs, err := parseGlobalUsage(bytes.NewReader(data), "f")
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) > MaxProblems {
			t.Fatalf("%d problems", len(probs))
		}
		for id, b := range blocks {
			if id == "" || id != b.ID || b.Line < 1 {
				t.Fatalf("bad block %q: %+v", id, b)
			}
			if b.DefaultType != "" && b.DefaultType != "black" && b.DefaultType != "white" {
				t.Fatalf("DEFAULT_TYPE %q kept", b.DefaultType)
			}
			for _, s := range []string{b.ID, b.Source, b.NameFR, b.NameEN, b.DescFR, b.DescEN} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 kept: %q", s)
				}
			}
		}
	})
}
