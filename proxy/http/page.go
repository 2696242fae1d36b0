package httpproxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"vigie/proxy/http/blockpage"
	"vigie/rules/catlabel"
)

// Pseudo-categories for refusals that come from no list.
const (
	catInvalid     = "invalide"
	catNoSNI       = "sans_sni"
	catDestination = "destination_incoherente"
	catNoPolicy    = "sans_politique"
	catForbidden   = "destination_interdite"
	catPort        = "port_interdit"
	catIPLiteral   = "adresse_ip"
	catNoEgress    = "sortie_interdite"
)

var pseudoCategories = map[string][2]string{
	catInvalid:     {"Adresse invalide", "L'adresse demandée n'a pas pu être vérifiée par le filtrage : elle est refusée par précaution."},
	catNoSNI:       {"Connexion sans nom de site", "La connexion chiffrée n'indique pas le site demandé : elle ne peut pas être vérifiée."},
	catDestination: {"Destination incohérente", "Le nom du site ne correspond pas à l'adresse réellement contactée."},
	catNoPolicy:    {"Aucune politique de filtrage", "Le filtrage n'a pas encore reçu de politique : tout est refusé par précaution."},
	catForbidden:   {"Destination interdite", "Cette adresse est celle d'un équipement de l'établissement ou de la passerelle : le filtrage n'y donne pas accès."},
	catPort:        {"Port non autorisé", "Le proxy n'ouvre de connexion chiffrée que vers les ports autorisés par la politique (443 par défaut)."},
	catNoEgress:    {"Sortie non autorisée", "La politique de l’établissement n’ouvre pas ce service sur Internet aux postes de cette zone."},
	catIPLiteral:   {"Adresse IP sans nom de site", "La connexion vise une adresse IP et non un nom de site : elle ne peut pas être vérifiée."},
}

// page builds the page shown for x.
func (p *Proxy) page(x *exchange, status int) blockpage.Page {
	pg := blockpage.Page{Host: x.host, URL: x.url, Time: x.start, Reference: x.ref}
	if x.gen != nil {
		rs := x.gen.Rules
		pg.Academie = rs.Academie()
		pg.Contact = rs.Contact()
		if s, ok := rs.School(p.cfg.UAI); ok {
			pg.School = s.Name
			if s.Contact != "" {
				pg.Contact = s.Contact
			}
		}
		if c, ok := rs.Category(x.category); ok {
			pg.CategoryName, pg.CategoryDesc = c.NameFR, c.DescFR
			if c.Source != "policy" {
				// UT1's own names have typos or are missing: pupils
				// read the curated French label.
				pg.CategoryName, pg.CategoryDesc = catlabel.Name(c.ID, c.NameFR), catlabel.Desc(c.ID, c.DescFR)
			}
			if pg.CategoryName == "" {
				pg.CategoryName = c.ID
			}
		}
	}
	if pc, ok := pseudoCategories[x.category]; ok {
		pg.CategoryName, pg.CategoryDesc = pc[0], pc[1]
	}
	if x.blocked {
		pg.UnblockURL, pg.UAI, pg.Category = p.cfg.UnblockURL, p.cfg.UAI, x.category
		pg = blockpage.Blocked(pg)
		if !p.journalRefusal(x, pg.Status) {
			// Not durable in time (disk failing): a reference that might
			// exist nowhere is not shown.
			pg.Reference = ""
		}
		return pg
	}
	pg.Reference = ""
	return blockpage.Error(status, pg)
}

// answer ends a plain-HTTP request with the page pg, counted into x.
func (p *Proxy) answer(w http.ResponseWriter, x *exchange, pg blockpage.Page) {
	x.status = pg.Status
	x.toClient.Add(int64(writePage(w, pg)))
}

// answerError ends a request that goes no further with a clean page,
// optionally reworded.
func (p *Proxy) answerError(w http.ResponseWriter, r *http.Request, x *exchange, status int, reword ...func(*blockpage.Page)) {
	x.method, x.host = r.Method, r.Host
	x.gen = p.gen.Load()
	x.outcome = outcomeError
	pg := p.page(x, status)
	for _, f := range reword {
		f(&pg)
	}
	p.answer(w, x, pg)
}

// writePage answers with pg on a plain ResponseWriter.
func writePage(w http.ResponseWriter, pg blockpage.Page) int {
	body := blockpage.Bytes(pg)
	for k, v := range pageHeader(len(body)) {
		w.Header()[k] = v
	}
	w.WriteHeader(pg.Status)
	n, _ := w.Write(body)
	return n
}

// pageResponse is a complete response carrying pg, for goproxy to send.
func pageResponse(req *http.Request, pg blockpage.Page) *http.Response {
	body := blockpage.Bytes(pg)
	return &http.Response{
		StatusCode: pg.Status,
		Status:     strconv.Itoa(pg.Status) + " " + http.StatusText(pg.Status),
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        pageHeader(len(body)),
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

func pageHeader(n int) http.Header {
	return http.Header{
		"Content-Type":           {"text/html; charset=utf-8"},
		"Content-Length":         {strconv.Itoa(n)},
		"Cache-Control":          {"no-store"},
		"X-Content-Type-Options": {"nosniff"},
	}
}
