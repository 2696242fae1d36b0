package ui

import (
	"html/template"
	"regexp"
	"strings"
)

// fieldError is one problem of a form, in French, on the field it is
// about when there is one: the field is marked aria-invalid, described by
// the message, and the summary at the top of the form links to it (RGAA
// 11.10 and 11.11).
type fieldError struct {
	// Field is the id of the input, "" for a problem of the whole form.
	Field string
	Text  string
}

// formErrors are a form's problems, in the order the summary lists them.
type formErrors []fieldError

// On returns the message of field, "" when it has none.
func (fe formErrors) On(field string) string {
	var out []string
	for _, e := range fe {
		if e.Field == field {
			out = append(out, e.Text)
		}
	}
	return strings.Join(out, " ")
}

// msgs turns French sentences into problems of the whole form.
func msgs(texts ...string) formErrors {
	var fe formErrors
	for _, s := range texts {
		fe = append(fe, fieldError{Text: s})
	}
	return fe
}

// on is one French problem on field.
func on(field, text string) fieldError { return fieldError{Field: field, Text: text} }

// invalidAttrs marks an input in error and ties it to its message.
func invalidAttrs(fe formErrors, field string) template.HTMLAttr {
	if fe.On(field) == "" {
		return ""
	}
	return template.HTMLAttr(`aria-invalid="true" aria-describedby="` + template.HTMLEscapeString(field) + `-err"`)
}

// fieldErrorHTML is the message under an input in error.
func fieldErrorHTML(fe formErrors, field string) template.HTML {
	m := fe.On(field)
	if m == "" {
		return ""
	}
	return template.HTML(`<p class="field-error" id="` + template.HTMLEscapeString(field) + `-err">` +
		template.HTMLEscapeString(m) + `</p>`)
}

// problems turns an API refusal into French problems on the form's
// fields. fields maps the API's field path ("from", "client",
// "schools[0].zones[1].profile", matched by prefix with indexes as *) to
// an input id ("x-from"; %d is replaced by the index of the first *).
// The API writes its own sentences in French, but the details it passes
// through from validators are often English: they are translated here, and
// what has no translation becomes a French sentence that names the field
// rather than reaching a person in English.
func problems(ae *apiError, fields map[string]string) formErrors {
	var fe formErrors
	details := ae.Errors
	if len(details) == 0 {
		details = strings.Split(ae.Detail, "; ")
	}
	for _, d := range details {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		path, msg := splitField(d)
		id := fieldFor(fields, path)
		text := frenchDetail(msg)
		if id == "" && path != "" {
			text = T("error.field.named", fieldLabel(path), text)
		}
		fe = append(fe, fieldError{Field: id, Text: text})
	}
	if len(fe) == 0 {
		fe = msgs(frenchTitle(ae))
	}
	return fe
}

// frenchTitle is the API's title when French, or a French sentence by
// status.
func frenchTitle(ae *apiError) string {
	if ae.Title != "" && !looksEnglish(ae.Title) {
		return typo(ae.Title)
	}
	return T("error.api.text")
}

// fieldPath is the head of a validator's message: "from: ...",
// "schools[1].zones[0].profile: ...", "export: ..." (a package name, not
// a field: dropped).
var fieldPath = regexp.MustCompile(`^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): `)

func splitField(s string) (path, msg string) {
	for {
		m := fieldPath.FindStringSubmatch(s)
		if m == nil {
			return path, s
		}
		s = s[len(m[0]):]
		switch m[1] {
		case "export", "policy", "ui", "api", "store", "publish", "auth":
			continue
		}
		if path == "" {
			path = m[1]
		} else {
			path += "." + m[1]
		}
	}
}

var indexes = regexp.MustCompile(`\[(\d+)\]`)

// fieldFor finds the input of an API field path.
func fieldFor(fields map[string]string, path string) string {
	if path == "" {
		return ""
	}
	idx := indexes.FindAllStringSubmatch(path, -1)
	generic := indexes.ReplaceAllString(path, "[*]")
	best, bestKey := "", ""
	for k, id := range fields {
		if (generic == k || strings.HasPrefix(generic, k+".") || strings.HasPrefix(generic, k+"[")) && len(k) > len(bestKey) {
			best, bestKey = id, k
		}
	}
	if best == "" {
		return ""
	}
	// Only the indexes of the matched part count (cidrs[0] of a zone's
	// cidrs[0] is not the zone's).
	idx = idx[:strings.Count(bestKey, "[*]")]
	// Number the input as the form does: the innermost indexes (the
	// zone of schools[3].zones[1]) fill the %d of the input's id.
	want := strings.Count(best, "%d")
	if want > len(idx) {
		return ""
	}
	for _, m := range idx[len(idx)-want:] {
		best = strings.Replace(best, "%d", m[1], 1)
	}
	return best
}

// fieldLabel names an API field in French for a problem no input shows.
func fieldLabel(path string) string {
	parts := strings.Split(indexes.ReplaceAllString(path, ""), ".")
	last := parts[len(parts)-1]
	if Has("field." + last) {
		return T("field." + last)
	}
	return T("field.unknown")
}

// translations turn the validators' English into French. Each pattern
// captures the values the French sentence repeats.
var translations = []struct {
	re  *regexp.Regexp
	key string
}{
	{regexp.MustCompile(`^the range must start before it ends$`), "error.tr.range"},
	{regexp.MustCompile(`^a time range \(from, to\) is required$`), "error.tr.norange"},
	{regexp.MustCompile(`^a requisition reference is required$`), "logs.export.noreference"},
	{regexp.MustCompile(`^a motive is required$`), "logs.export.nomotive"},
	{regexp.MustCompile(`^a field is too long$`), "error.tr.toolong"},
	{regexp.MustCompile(`^missing time$`), "error.tr.notime"},
	{regexp.MustCompile(`^"([^"]*)" is not a time`), "error.tr.time"},
	{regexp.MustCompile(`^ParseAddr\("([^"]*)"\)`), "error.tr.addr"},
	{regexp.MustCompile(`^UAI "([^"]*)": want 8 characters`), "error.tr.uai"},
	{regexp.MustCompile(`^"([^"]*)" is not a UAI`), "error.tr.uai"},
	{regexp.MustCompile(`^unknown profile ""$`), "error.tr.noprofile"},
	{regexp.MustCompile(`^unknown profile "([^"]*)"$`), "error.tr.profile"},
	{regexp.MustCompile(`^unknown school "([^"]*)"$`), "error.tr.school"},
	{regexp.MustCompile(`^duplicate school "([^"]*)"$`), "error.tr.dupschool"},
	{regexp.MustCompile(`^duplicate zone "([^"]*)"$`), "error.tr.dupzone"},
	{regexp.MustCompile(`^duplicate (?:list|category|profile|source) "([^"]*)"$`), "error.tr.dup"},
	{regexp.MustCompile(`^"([^"]*)" is not a valid identifier`), "error.tr.ident"},
	{regexp.MustCompile(`^"([^"]*)" is not a CIDR prefix$`), "error.tr.cidr"},
	{regexp.MustCompile(`^"([^"]*)" has host bits set \(did you mean ([^?]*)\?\)$`), "error.tr.hostbits"},
	{regexp.MustCompile(`^(\S+) overlaps (\S+) of zone "([^"]*)"$`), "error.tr.overlap"},
	{regexp.MustCompile(`^"([^"]*)" is not a valid interface name`), "error.tr.iface"},
	{regexp.MustCompile(`^needs cidrs or interfaces$`), "error.tr.zoneempty"},
	{regexp.MustCompile(`^required$`), "error.tr.required"},
	{regexp.MustCompile(`^\(empty label\)$`), "error.tr.emptylabel"},
	{regexp.MustCompile(`^must be one of ([^,]+(?:, [^,]+)*), got "([^"]*)"$`), "error.tr.oneof"},
	{regexp.MustCompile(`^"([^"]*)" is not HH:MM$`), "error.tr.hhmm"},
	{regexp.MustCompile(`^category "([^"]*)" is both blocked and allowed$`), "error.tr.bothways"},
}

// frenchDetail translates one validator message; a message already in
// French passes (in French typography), an English one without a
// translation becomes a neutral French sentence.
func frenchDetail(msg string) string {
	for _, tr := range translations {
		if m := tr.re.FindStringSubmatch(msg); m != nil {
			args := make([]any, 0, len(m)-1)
			for _, a := range m[1:] {
				args = append(args, a)
			}
			return T(tr.key, args...)
		}
	}
	if looksEnglish(msg) {
		return T("error.tr.generic")
	}
	return typo(msg)
}

// englishWords are common English words that have no business in a
// French page; the rendered-pages scan of the tests uses the same list.
var englishWords = []string{"the", "is", "not", "must", "required", "invalid", "unknown", "empty", "want", "got",
	"duplicate", "error", "failed", "missing", "should", "cannot", "with", "and", "or", "of", "to", "from", "field",
	"value", "before", "after", "ends", "start", "found", "allowed", "denied", "forbidden", "bad", "request"}

var englishWord = regexp.MustCompile(`(?i)\b(` + strings.Join(englishWords, "|") + `)\b`)

// looksEnglish reports whether s reads as English: two common English
// words, or one with no French accent anywhere.
func looksEnglish(s string) bool {
	n := len(englishWord.FindAllString(s, -1))
	return n >= 2 || (n == 1 && !strings.ContainsAny(s, "éèêàùçôî’'«"))
}

// errItems lets the error summary take a form's problems or plain French
// sentences.
func errItems(v any) formErrors {
	switch x := v.(type) {
	case formErrors:
		return x
	case []string:
		return msgs(x...)
	}
	return nil
}
