package ui

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/apiclient"
	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/export"
	"vigie/rules/policy"
)

// logsView is the Journaux page: the requisition export form, the exports
// already made (from the audit log: the archive keeps no copy of an export,
// so "download again" means running it again), and the legal holds.
type logsView struct {
	Schools []policy.School
	Form    exportForm
	Errors  formErrors
	// Count is the first step's answer: how many records the scope
	// holds, before anything is extracted.
	Count *exportCount
	// Result is the second step's: the export just made.
	Result *exportResult
	Past   []pastExport
	Holds  []archive.Hold
	Hold   holdForm
	// CanHold is the RSSI: holds are theirs.
	CanHold    bool
	HoldErrors formErrors
	// Fixed is a chef's school: the form exports it and only it.
	Fixed string
	// Transmissions are the exports handed to the AQSSI and their status
	// (nil without a requisition vault).
	Transmissions *transmissionsTable
	// Requests are the AQSSI's requests for an export of the school.
	Requests requestsTable
}

type exportForm struct {
	UAI, From, To, Client, Domain, Reference, Motive string
}

type holdForm struct {
	UAI, From, To, Client, Reference string
}

// pastExport is one export as the audit log recorded it.
type pastExport struct {
	Seq                      uint64
	Time                     time.Time
	Actor, School, UAI       string
	Reference, Motive        string
	From, To, Client, Domain string
	Records                  int64
	SHA256                   string
	Bytes                    int64
	Again                    string
}

// pastScan bounds the export entries read to list past exports (a chef
// reads past other schools' exports to find their own).
const pastScan = 50000

func (h *Handler) logs(rq *request) error {
	v, err := h.logsData(rq)
	if err != nil {
		return err
	}
	if q := rq.r.URL.Query(); q.Get("reprendre") != "" {
		// "Refaire cet export" fills the form with a past query.
		v.Form = exportForm{UAI: q.Get("uai"), From: q.Get("du"), To: q.Get("au"), Client: q.Get("poste"),
			Domain: q.Get("domaine"), Reference: q.Get("reference"), Motive: q.Get("motif")}
	}
	return rq.render(200, "logs", "logs.title", v)
}

func (h *Handler) logsData(rq *request) (*logsView, error) {
	schools, err := allSchools(rq)
	if err != nil {
		return nil, err
	}
	v := &logsView{Schools: schools, CanHold: rq.is(auth.RSSI)}
	if h.vault != nil {
		ts, err := h.transmissions(rq)
		if err != nil {
			return nil, err
		}
		v.Transmissions = &transmissionsTable{List: ts}
		if v.Requests, err = h.requestsFor(rq, ts); err != nil {
			return nil, err
		}
	}
	now := rq.now().In(paris)
	// A requisition usually names a recent day: from yesterday 00:00 to
	// now, so that what happened today is in the first export too.
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, paris)
	v.Form = exportForm{From: day.AddDate(0, 0, -1).Format("2006-01-02T15:04"), To: now.Add(time.Minute).Format("2006-01-02T15:04")}
	v.Hold = holdForm{From: v.Form.From, To: v.Form.To}
	if rq.id.Role == auth.Chef {
		v.Fixed = rq.id.UAI
		v.Form.UAI = rq.id.UAI
	}
	if v.Past, err = h.pastExports(rq); err != nil {
		return nil, err
	}
	if v.CanHold {
		if v.Holds, err = rq.api().Holds(rq.ctx(), true); err != nil {
			return nil, err
		}
		slices.SortFunc(v.Holds, func(a, b archive.Hold) int { return b.PlacedAt.Compare(a.PlacedAt) })
	}
	return v, nil
}

// pastExports reads the exports the audit log recorded, newest first, of
// the schools the caller may see: a chef sees their school's only. The
// store reads the log from its end, export entries only.
func (h *Handler) pastExports(rq *request) ([]pastExport, error) {
	ctx := rq.r.Context()
	var out []pastExport
	var before uint64
	for scanned := 0; scanned < pastScan && len(out) < 50; {
		es, err := h.st.AuditTail(ctx, store.AuditQuery{Before: before, Actions: []string{"export"}, Limit: auditRead})
		if err != nil {
			return nil, err
		}
		scanned += len(es)
		for _, e := range es {
			uai := strings.TrimPrefix(e.Target, "school/")
			if !rq.id.CanSeeSchool(uai) || len(out) == 50 {
				continue
			}
			var d struct {
				Query struct {
					From, To               time.Time
					Client, Domain         string
					Reference, Motive, UAI string
				} `json:"query"`
				Counts map[string]int64 `json:"counts"`
				SHA256 string           `json:"sha256"`
				Bytes  int64            `json:"bytes"`
			}
			json.Unmarshal(e.After, &d)
			p := pastExport{Seq: e.Seq, Time: e.Time, Actor: e.Actor, UAI: uai, Reference: d.Query.Reference, Motive: d.Query.Motive,
				Client: d.Query.Client, Domain: d.Query.Domain, SHA256: d.SHA256, Bytes: d.Bytes}
			p.From, p.To = formatDateTime(d.Query.From), formatDateTime(d.Query.To)
			for _, n := range d.Counts {
				p.Records += n
			}
			again := url.Values{"reprendre": {"1"}, "uai": {uai}, "du": {d.Query.From.In(paris).Format("2006-01-02T15:04")},
				"au": {d.Query.To.In(paris).Format("2006-01-02T15:04")}, "poste": {d.Query.Client}, "domaine": {d.Query.Domain},
				"reference": {d.Query.Reference}, "motif": {d.Query.Motive}}
			p.Again = "/journaux?" + again.Encode() + "#export"
			out = append(out, p)
		}
		if len(es) < auditRead {
			break
		}
		before = es[len(es)-1].Seq
	}
	return out, nil
}

// exportFields maps the export API's fields to the form's inputs.
var exportFields = map[string]string{"uai": "x-uai", "from": "x-from", "to": "x-to", "client": "x-client", "domain": "x-domain",
	"reference": "x-ref", "motive": "x-motive"}

// exportCount is the number of records of an export's scope, per stream.
type exportCount struct {
	Streams []streamCount
	Total   int64
	// AtLeast says the count stopped at maxCounted: there are more.
	AtLeast bool
}

type streamCount struct {
	Stream string
	N      int64
}

// exportResult is the page after an export: what a chef hands over.
type exportResult struct {
	Token, Name  string
	SHA256       string
	Bytes        int64
	Streams      []streamCount
	Total        int64
	Reference    string
	Motive       string
	From, To     string
	School       string
	Client       string
	Domain       string
	Expires      time.Time
	CountWarning bool
}

// maxCounted bounds the first step's count: beyond a million records the
// page says "more than", the export itself is not bounded.
const maxCounted = 1_000_000

// exportCreate is the requisition in two steps. The first (etape=compter)
// checks the form and counts the records of the scope, warning when there
// are none; the second (etape=extraire) runs the export through the API
// into a temporary file and shows its result: the full SHA-256, the
// counts per stream, the reference, the download and the summary to
// print. A refusal comes back as the form, each problem on its field.
func (h *Handler) exportCreate(rq *request) error {
	f := exportForm{UAI: strings.ToUpper(rq.form("uai")), From: rq.form("from"), To: rq.form("to"), Client: rq.form("client"),
		Domain: rq.form("domain"), Reference: rq.form("reference"), Motive: rq.form("motive")}
	if rq.id.Role == auth.Chef && f.UAI == "" {
		// The form shows the chef's school only; a forged field is
		// refused (and audited) by the API, never widened here.
		f.UAI = rq.id.UAI
	}
	var errs formErrors
	if f.Reference == "" {
		errs = append(errs, on("x-ref", T("logs.export.noreference")))
	}
	if f.Motive == "" {
		errs = append(errs, on("x-motive", T("logs.export.nomotive")))
	}
	apiReq := export.APIRequest{UAI: f.UAI, From: f.From, To: f.To, Client: f.Client, Domain: f.Domain,
		Reference: f.Reference, Motive: f.Motive}
	req, err := apiReq.Request()
	if err != nil {
		errs = append(errs, problems(&apiError{Detail: err.Error()}, exportFields)...)
	} else if !req.From.Before(req.To) {
		errs = append(errs, on("x-to", T("error.tr.range")))
	}
	var count *exportCount
	var result *exportResult
	if len(errs) == 0 {
		// Counting reads the archive here, so only within the caller's
		// reach; an extraction out of it goes to the API, which refuses
		// it and audits the attempt.
		if rq.form("etape") == "extraire" || !rq.id.CanSeeSchool(f.UAI) {
			result, errs, err = h.runExport(rq, f, apiReq)
			if err != nil {
				return err
			}
		} else {
			if count, err = h.countExport(rq, req); err != nil {
				return err
			}
		}
	}
	v, err := h.logsData(rq)
	if err != nil {
		return err
	}
	v.Form, v.Errors, v.Count, v.Result = f, errs, count, result
	if len(errs) > 0 {
		return rq.render(422, "logs", "logs.title", v)
	}
	if result != nil {
		return rq.render(200, "logs", "logs.result.title", v)
	}
	return rq.render(200, "logs", "logs.count.title", v)
}

// countExport counts the records the export of req would hold, with the
// archive's own query (the one the export runs).
func (h *Handler) countExport(rq *request, req export.Request) (*exportCount, error) {
	c := &exportCount{}
	if h.archive == nil {
		return c, nil
	}
	for _, st := range []journal.Stream{journal.Connexions, journal.Navigation} {
		q := archive.Query{UAI: req.UAI, From: req.From, To: req.To, Streams: []journal.Stream{st}, Client: req.Client, Domain: req.Domain}
		var n int64
		err := h.archive.Scan(rq.r.Context(), q, func(archive.Chain, *archive.Stored) error {
			n++
			if c.Total+n >= maxCounted {
				c.AtLeast = true
				return errStopScan
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return nil, err
		}
		c.Streams = append(c.Streams, streamCount{Stream: st.String(), N: n})
		c.Total += n
		if c.AtLeast {
			break
		}
	}
	return c, nil
}

// runExport asks the API for the export, as the person, into a temporary
// file kept for exportKeep; the API audits it with its fingerprint.
func (h *Handler) runExport(rq *request, f exportForm, apiReq export.APIRequest) (*exportResult, formErrors, error) {
	body, _ := json.Marshal(apiReq)
	r, err := http.NewRequestWithContext(rq.r.Context(), "POST", export.Path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	r.RemoteAddr, r.Host = rq.r.RemoteAddr, rq.r.Host
	if c, err := rq.r.Cookie(auth.CookieName); err == nil {
		r.AddCookie(c)
	}
	r.Header.Set("X-CSRF-Token", rq.csrf)
	r.Header.Set("Content-Type", "application/json")
	tmp, err := os.CreateTemp("", "vigie-export-*.zip")
	if err != nil {
		return nil, nil, fmt.Errorf("ui: export file: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmp.Name())
		}
	}()
	sum := sha256.New()
	fw := &fileOrProblem{f: tmp, h: sum, header: http.Header{}}
	h.api.ServeHTTP(fw, r)
	if err := tmp.Close(); err != nil {
		return nil, nil, fmt.Errorf("ui: export file: %w", err)
	}
	if fw.err != nil {
		return nil, nil, fmt.Errorf("ui: export file: %w", fw.err)
	}
	if fw.status >= 400 {
		ae := &apiError{Status: fw.status}
		if err := json.Unmarshal(fw.body.Bytes(), ae); err != nil || ae.Status == 0 {
			ae.Status, ae.Title = fw.status, http.StatusText(fw.status)
		}
		if ae.Status != 422 && ae.Status != 400 {
			return nil, nil, ae
		}
		return nil, problems(ae, exportFields), nil
	}
	if fw.header.Get(export.HashTrailer) == "" {
		// No trailer: the export broke off while streaming.
		return nil, nil, fmt.Errorf("ui: export interrupted")
	}
	m, err := readManifest(tmp.Name())
	if err != nil {
		return nil, nil, err
	}
	name := "vigie-export.zip"
	if _, p, err := mime.ParseMediaType(fw.header.Get("Content-Disposition")); err == nil && p["filename"] != "" {
		name = p["filename"]
	}
	tok, err := h.exports.keep(tmp.Name(), name, rq.id.Actor(), rq.now())
	if err != nil {
		return nil, nil, err
	}
	keep = true
	res := &exportResult{Token: tok, Name: name, SHA256: hex.EncodeToString(sum.Sum(nil)), Bytes: fw.n, Reference: m.Reference,
		Motive: m.Motif, School: m.Requete.Etablissement, Client: f.Client, Domain: f.Domain, Expires: rq.now().Add(exportKeep)}
	if t, err := export.ParseTime(f.From); err == nil {
		res.From = formatDateTime(t)
	}
	if t, err := export.ParseTime(f.To); err == nil {
		res.To = formatDateTime(t)
	}
	for _, st := range []string{journal.Connexions.String(), journal.Navigation.String()} {
		res.Streams = append(res.Streams, streamCount{Stream: st, N: m.Comptes[st]})
		res.Total += m.Comptes[st]
	}
	return res, nil, nil
}

// fileOrProblem writes a successful export to a file, hashing it, and
// keeps a failed one (a problem document) for the form.
type fileOrProblem struct {
	f      *os.File
	h      io.Writer
	header http.Header
	status int
	n      int64
	body   bytes.Buffer
	err    error
}

func (w *fileOrProblem) Header() http.Header { return w.header }

// Flush is there for the export handler, which flushes its first bytes
// to learn whether the client still listens: a file always does.
func (w *fileOrProblem) Flush() {}

func (w *fileOrProblem) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *fileOrProblem) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 400 {
		return w.body.Write(b)
	}
	w.h.Write(b)
	n, err := w.f.Write(b)
	w.n += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// exportDownload sends an export just made, to the account that made it.
func (h *Handler) exportDownload(rq *request) error {
	f, ok := h.exports.get(rq.r.PathValue("token"), rq.id.Actor(), rq.now())
	if !ok {
		return &pageError{status: http.StatusNotFound, title: "logs.result.gone.title", text: "logs.result.gone.text"}
	}
	hd := rq.w.Header()
	hd.Set("Content-Type", "application/zip")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.name}))
	http.ServeFile(rq.w, rq.r, f.path)
	return nil
}

// exportSummary shows the summary (resume.html) of an export just made,
// to print and attach to the answer to the requisition.
func (h *Handler) exportSummary(rq *request) error {
	f, ok := h.exports.get(rq.r.PathValue("token"), rq.id.Actor(), rq.now())
	if !ok {
		return &pageError{status: http.StatusNotFound, title: "logs.result.gone.title", text: "logs.result.gone.text"}
	}
	zr, err := zip.OpenReader(f.path)
	if err != nil {
		return fmt.Errorf("ui: open export: %w", err)
	}
	defer zr.Close()
	b, err := zipFile(&zr.Reader, export.SummaryName)
	if err != nil {
		return err
	}
	hd := rq.w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	// The summary is the export's own document: its inline style is
	// allowed, nothing else.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	_, err = rq.w.Write(b)
	return err
}

// holdFields maps the hold API's fields to the form's inputs.
var holdFields = map[string]string{"uai": "h-uai", "from": "h-from", "to": "h-to", "client": "h-client", "reference": "h-ref"}

// holdCreate places a legal hold (RSSI).
func (h *Handler) holdCreate(rq *request) error {
	f := holdForm{UAI: rq.form("uai"), From: rq.form("from"), To: rq.form("to"), Client: rq.form("client"), Reference: rq.form("reference")}
	_, err := rq.api().PlaceHold(rq.ctx(), apiclient.HoldRequest{UAI: f.UAI, From: f.From, To: f.To, Client: f.Client, Reference: f.Reference})
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == 422 || ae.Status == 400) {
		v, err := h.logsData(rq)
		if err != nil {
			return err
		}
		v.Hold, v.HoldErrors = f, problems(ae, holdFields)
		return rq.render(422, "logs", "logs.title", v)
	}
	if err != nil {
		return err
	}
	return rq.redirect("/journaux#gels", "holdplaced")
}

// holdRelease releases a hold (RSSI).
func (h *Handler) holdRelease(rq *request) error {
	id := rq.r.PathValue("id")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return notFound()
	}
	if _, err := rq.api().ReleaseHold(rq.ctx(), id); err != nil {
		return err
	}
	return rq.redirect("/journaux#gels", "holdreleased")
}
