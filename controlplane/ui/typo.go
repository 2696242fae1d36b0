package ui

import "strings"

// French typography, applied once to every catalogue text: a person
// never sees a straight apostrophe, nor a line that starts with « : » or
// « ? ». A thin no-break space (U+202F) goes before ; ! ?, a no-break
// space (U+00A0) before : and inside « ». Writing the catalogue with plain
// spaces and fixing it here keeps it editable in any editor.
var typoReplacer = strings.NewReplacer(
	"'", "’",
	" ;", "\u202f;",
	" !", "\u202f!",
	" ?", "\u202f?",
	" :", "\u00a0:",
	"« ", "«\u00a0",
	" »", "\u00a0»",
	"n° ", "n°\u00a0",
)

// typo returns s with French typography.
func typo(s string) string { return typoReplacer.Replace(s) }

// typoCatalog returns a copy of c with every text set in French
// typography.
func typoCatalog(c catalog) catalog {
	out := make(catalog, len(c))
	for k, v := range c {
		out[k] = typo(v)
	}
	return out
}
