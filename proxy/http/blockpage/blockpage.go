// Package blockpage renders the French page a pupil sees instead of a
// refused site, and the clean pages the proxy answers with when an origin
// cannot be reached. Pages are self-contained (inline style, no image, no
// script, no external resource): they must display even when everything
// else is blocked.
package blockpage

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed page.html.tmpl
var pageText string

var page = template.Must(template.New("page").Parse(pageText))

// Page is what one page says. Empty fields are left out.
type Page struct {
	// Status is the HTTP status the page is sent with.
	Status int
	// Blocked is true for a policy refusal, false for an error page.
	Blocked bool
	Title   string
	Message string
	Host    string
	URL     string
	// CategoryName and CategoryDesc are the French name and description
	// of the deciding category.
	CategoryName string
	CategoryDesc string
	Time         time.Time
	// Reference is the short id also written in the journal record, so
	// that the school can find the refusal a pupil reports.
	Reference string
	School    string
	Contact   string
	Academie  string
	// UnblockURL is the control plane's page that receives a teacher's
	// request to unblock the site (empty: the page offers no form). UAI
	// and Category go with the request.
	UnblockURL string
	UAI        string
	Category   string
}

// MaxURL bounds the URL shown: a hostile URL must not make a huge page.
const MaxURL = 300

var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		// The rules package embeds tzdata; this is unreachable in the binary.
		return time.FixedZone("CET", 3600)
	}
	return l
}()

var (
	days   = [...]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	months = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}
)

// FrenchTime formats t in Europe/Paris the French way:
// "samedi 28 novembre 2026 à 19:52:03".
func FrenchTime(t time.Time) string {
	t = t.In(paris)
	day := fmt.Sprint(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return fmt.Sprintf("%s %s %s %d à %02d:%02d:%02d", days[t.Weekday()], day, months[t.Month()-1], t.Year(), t.Hour(), t.Minute(), t.Second())
}

type view struct {
	Page
	When string
}

// Render writes the page's HTML.
func Render(w io.Writer, p Page) error {
	p.URL, p.Host = clip(p.URL), clip(p.Host)
	return page.Execute(w, view{Page: p, When: FrenchTime(p.Time)})
}

// clip bounds s to MaxURL bytes, keeping it valid UTF-8.
func clip(s string) string {
	if len(s) <= MaxURL {
		return strings.ToValidUTF8(s, "?")
	}
	return strings.ToValidUTF8(s[:MaxURL], "") + "…"
}

// Bytes returns the page's HTML.
func Bytes(p Page) []byte {
	var b bytes.Buffer
	if err := Render(&b, p); err != nil {
		// The template is fixed and its data plain strings: an error here
		// is a programming error, and the client still gets a page.
		return []byte("<!DOCTYPE html><html lang=\"fr\"><meta charset=\"utf-8\"><title>Accès refusé</title><h1>Accès refusé</h1></html>")
	}
	return b.Bytes()
}

// Blocked is the page of a policy refusal with the usual wording.
func Blocked(p Page) Page {
	p.Status, p.Blocked = 403, true
	if p.Title == "" {
		p.Title = "Accès refusé"
	}
	if p.Message == "" {
		p.Message = "Cette page a été bloquée par le filtrage de l'établissement."
	}
	return p
}

// Error is a clean error page: what happened in words, never the raw Go
// error text.
func Error(status int, p Page) Page {
	p.Status, p.Blocked = status, false
	if p.Title == "" || p.Message == "" {
		title, msg := errorText(status)
		if p.Title == "" {
			p.Title = title
		}
		if p.Message == "" {
			p.Message = msg
		}
	}
	return p
}

func errorText(status int) (title, message string) {
	switch status {
	case 400:
		return "Requête invalide", "Le navigateur a envoyé une requête que le filtrage ne sait pas lire."
	case 502:
		return "Site injoignable", "Le site demandé n'a pas pu être contacté ou a répondu de façon incorrecte."
	case 504:
		return "Le site ne répond pas", "Le site demandé n'a pas répondu à temps."
	case 508:
		return "Boucle détectée", "Cette requête reviendrait vers le filtrage lui-même : elle est refusée."
	}
	return "Erreur", "La requête n'a pas pu aboutir."
}
