package ui

import (
	"fmt"
	"log/slog"
)

// catalog maps a message key to its text. Texts with arguments use fmt
// verbs (%s, %d). French (catalog_fr.go) is the only language today;
// another one is another catalog with the same keys (TestCatalog checks
// that every key the templates and the code use exists).
type catalog map[string]string

// current is the catalogue pages are written in, in French typography.
var current = typoCatalog(fr)

// T returns the text of key, formatted with args. A missing key shows
// itself between brackets, so that a forgotten text is seen, not hidden.
func T(key string, args ...any) string {
	s, ok := current[key]
	if !ok {
		slog.Warn("ui: missing catalogue key", "key", key)
		return "⟦" + key + "⟧"
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// Tn returns the text of key for a count n: key+".one" for 0 and 1 (the
// French singular), key+".many" beyond; n is the first argument.
func Tn(key string, n int64, args ...any) string {
	k := key + ".many"
	if n >= -1 && n <= 1 {
		k = key + ".one"
	}
	return T(k, append([]any{formatInt(n)}, args...)...)
}

// Has reports whether key is in the catalogue.
func Has(key string) bool {
	_, ok := current[key]
	return ok
}
