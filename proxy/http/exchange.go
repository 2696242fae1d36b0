package httpproxy

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"vigie/journal"
	"vigie/proxy/generation"
	"vigie/proxy/http/blockpage"
	"vigie/rules"
	"vigie/rules/catlabel"
	"vigie/rules/policy"
)

// exchange is one request (or one tunnel) from its head to its journal
// record: what was asked, what the policy said, what came back.
type exchange struct {
	c     *conn
	entry entry
	start time.Time

	method, host, url string
	// proto is the journal's protocol: http, https (spliced or
	// intercepted) or connect.
	proto string
	dest  netip.AddrPort

	gen      *generation.Generation
	verdict  rules.Verdict
	blocked  bool
	outcome  outcome
	category string
	ref      string
	status   int

	toClient, toOrigin atomic.Int64
	upstreamLatency    time.Duration

	// noJournal skips the navigation record of input that was no request
	// at all (garbage on the TLS port); the connection record remains.
	noJournal bool
	// silent exchanges leave neither record nor count: the block pages
	// answered inside a tunnel intercepted only to show them, whose
	// refusal the tunnel's own exchange records.
	silent   bool
	finished bool
	// journaled is set once the refusal's record was made durable before
	// its page left (see journalRefusal): finish must not write it again.
	journaled bool
}

func (p *Proxy) newExchange(c *conn, e entry, proto string) *exchange {
	return &exchange{c: c, entry: e, start: p.now(), proto: proto}
}

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

// judge is the policy stage, the one decision function of every entry
// point: the client's zone picks the profile, the profile decides on the
// host (and the full URL when it is known). It returns the profile's
// settings for the stages that follow (interception, no-SNI handling).
func (p *Proxy) judge(x *exchange) *policy.Profile {
	g := p.gen.Load()
	x.gen = g
	if g == nil {
		p.refuse(x, catNoPolicy)
		return &policy.Profile{}
	}
	p.m.blockedBy.See(g)
	var addr netip.Addr
	if x.c != nil {
		addr = x.c.client.Addr()
	}
	_, prof := g.Rules.Zone(p.cfg.UAI, addr)
	settings := g.Rules.ProfileSettings(prof)
	if x.host == "" && x.url == "" {
		// TLS without a server name: nothing to decide on.
		if !settings.Unfiltered && settings.NoSNI != "allow" {
			p.refuse(x, catNoSNI)
		}
		return settings
	}
	x.verdict = g.Rules.Decide(prof, rules.Query{Host: x.host, URL: x.url, Time: x.start})
	if x.verdict.Action == rules.Block {
		cat := x.verdict.Category
		if x.verdict.Kind == rules.MatchInvalid {
			cat = catInvalid
		}
		p.refuse(x, cat)
	}
	return settings
}

// describe fills in what a plain-HTTP request asks: method, Host, and the
// full URL as the client sent it, which the policy and the record read.
func describe(x *exchange, r *http.Request) {
	scheme := r.URL.Scheme
	if scheme == "" {
		scheme = "http"
	}
	x.method, x.host = r.Method, r.Host
	x.url = scheme + "://" + r.Host + r.URL.RequestURI()
}

// refuse marks x blocked for category and gives it a reference.
func (p *Proxy) refuse(x *exchange, category string) {
	x.blocked, x.outcome, x.category = true, outcomeBlock, category
	x.verdict.Action = rules.Block
	if x.ref == "" {
		x.ref = newReference()
	}
}

// refAlphabet leaves out 0/O, 1/I/L: a pupil reads the reference aloud.
const refAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// newReference returns a short id like "K7Q2-M9TD" (about 40 bits).
func newReference() string {
	var b [8]byte
	rand.Read(b[:])
	out := make([]byte, 9)
	j := 0
	for i := range 8 {
		if i == 4 {
			out[j] = '-'
			j++
		}
		out[j] = refAlphabet[int(b[i])%len(refAlphabet)]
		j++
	}
	return string(out)
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

// upstreamFailed records in x why the origin could not be reached and
// returns the status of the page to answer: 502, 504, 508, or 403 for a
// destination refused at dial time. It is counted by reason; raw error
// text never reaches the client.
func (p *Proxy) upstreamFailed(x *exchange, err error) int {
	reason, status := classify(err)
	p.m.upstreamErrors[reason].Inc()
	p.log.Debug("upstream error", "host", x.host, "reason", reasonNames[reason], "err", err)
	if reason == reasonForbidden {
		p.refuse(x, catForbidden)
	} else {
		x.outcome = outcomeError
	}
	return status
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

// finish counts x and writes its navigation record, once.
func (p *Proxy) finish(x *exchange) {
	if x.finished || x.silent {
		return
	}
	x.finished = true
	d := p.now().Sub(x.start)
	toClient, toOrigin := x.toClient.Load(), x.toOrigin.Load()
	p.m.requests[x.entry][x.outcome].Inc()
	if x.outcome == outcomeBlock {
		p.m.blockedBy.Inc(x.category)
	}
	p.m.duration[x.entry].Observe(d.Seconds())
	p.m.bytesToClient[x.entry].Add(float64(toClient))
	p.m.bytesToOrigin[x.entry].Add(float64(toOrigin))
	if x.noJournal || x.journaled {
		return
	}
	r := p.getRecord()
	p.fillRecord(x, r, d, toClient, toOrigin)
	p.putRecord(r)
}

// fillRecord writes x's navigation record into r.
func (p *Proxy) fillRecord(x *exchange, r *journal.Record, d time.Duration, toClient, toOrigin int64) {
	r.Stream = journal.Navigation
	r.Time = x.start
	r.UAI = p.cfg.UAI
	if x.c != nil {
		r.Client = x.c.client
	}
	r.Proto = x.proto
	r.Dest = x.dest
	r.Duration = d
	r.BytesIn, r.BytesOut = toClient, toOrigin
	r.Host, r.URL, r.Method = x.host, x.url, x.method
	r.Status = x.status
	r.Verdict = x.verdict.Action.String()
	r.Category = x.category
	if r.Category == "" {
		r.Category = x.verdict.Category
	}
	r.Reference = x.ref
	r.UpstreamLatency = x.upstreamLatency
}

func (p *Proxy) getRecord() *journal.Record {
	if r, ok := p.records.Get().(*journal.Record); ok {
		return r
	}
	return new(journal.Record)
}

// putRecord appends r and recycles it: a Sink must not keep the pointer.
func (p *Proxy) putRecord(r *journal.Record) {
	p.journal.Append(r)
	*r = journal.Record{}
	p.records.Put(r)
}

func (x *exchange) String() string {
	return fmt.Sprintf("%s %s %s", x.entry, x.method, x.host)
}
