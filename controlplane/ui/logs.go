package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/auth"
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
	Errors  []string
	Past    []pastExport
	Holds   []archive.Hold
	Hold    holdForm
	// CanHold is the RSSI: holds are theirs.
	CanHold    bool
	HoldErrors []string
	// Fixed is a chef's school: the form exports it and only it.
	Fixed string
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

// pastScan bounds the audit entries read to list past exports.
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
	now := rq.now().In(paris)
	// A requisition usually names a day: default to yesterday, whole.
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, paris)
	v.Form = exportForm{From: day.AddDate(0, 0, -1).Format("2006-01-02T15:04"), To: day.Format("2006-01-02T15:04")}
	v.Hold = holdForm{From: v.Form.From, To: v.Form.To}
	if rq.id.Role == auth.Chef {
		v.Fixed = rq.id.UAI
		v.Form.UAI = rq.id.UAI
	}
	if v.Past, err = h.pastExports(rq); err != nil {
		return nil, err
	}
	if v.CanHold {
		var hs struct {
			Holds []archive.Hold `json:"holds"`
		}
		if err := rq.call("GET", "/api/v1/holds?all=true", nil, &hs); err != nil {
			return nil, err
		}
		v.Holds = hs.Holds
		slices.SortFunc(v.Holds, func(a, b archive.Hold) int { return b.PlacedAt.Compare(a.PlacedAt) })
	}
	return v, nil
}

// pastExports reads the exports the audit log recorded, newest first, of
// the schools the caller may see: a chef sees their school's only.
func (h *Handler) pastExports(rq *request) ([]pastExport, error) {
	ctx := rq.r.Context()
	// Find the end of the log, then read backwards a window at a time.
	var tail uint64
	for {
		es, err := h.st.AuditEntries(ctx, tail, 1000)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			break
		}
		tail = es[len(es)-1].Seq
	}
	var out []pastExport
	scanned := 0
	for hi := tail + 1; hi > 1 && scanned < pastScan && len(out) < 50; {
		lo := uint64(1)
		if hi > auditRead {
			lo = hi - auditRead
		}
		es, err := h.st.AuditEntries(ctx, lo-1, int(hi-lo))
		if err != nil {
			return nil, err
		}
		scanned += len(es)
		for i := len(es) - 1; i >= 0; i-- {
			e := es[i]
			if e.Action != "export" {
				continue
			}
			uai := strings.TrimPrefix(e.Target, "school/")
			if !rq.id.CanSeeSchool(uai) {
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
		hi = lo
	}
	return out, nil
}

// exportCreate runs a requisition export through the API and streams the
// ZIP to the browser as the API writes it (an export can be large). A
// refusal comes back as the page with its reasons.
func (h *Handler) exportCreate(rq *request) error {
	f := exportForm{UAI: strings.ToUpper(rq.form("uai")), From: rq.form("from"), To: rq.form("to"), Client: rq.form("client"),
		Domain: rq.form("domain"), Reference: rq.form("reference"), Motive: rq.form("motive")}
	if rq.id.Role == auth.Chef {
		// The form shows the chef's school only; a forged field is
		// refused (and audited) by the API, never widened here.
		if f.UAI == "" {
			f.UAI = rq.id.UAI
		}
	}
	var errs []string
	if f.Reference == "" {
		errs = append(errs, T("logs.export.noreference"))
	}
	if f.Motive == "" {
		errs = append(errs, T("logs.export.nomotive"))
	}
	if len(errs) == 0 {
		body, _ := json.Marshal(export.APIRequest{UAI: f.UAI, From: f.From, To: f.To, Client: f.Client, Domain: f.Domain,
			Reference: f.Reference, Motive: f.Motive})
		r, err := http.NewRequestWithContext(rq.r.Context(), "POST", export.Path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		r.RemoteAddr, r.Host = rq.r.RemoteAddr, rq.r.Host
		if c, err := rq.r.Cookie(auth.CookieName); err == nil {
			r.AddCookie(c)
		}
		r.Header.Set("X-CSRF-Token", rq.csrf)
		r.Header.Set("Content-Type", "application/json")
		sw := &streamOrProblem{w: rq.w}
		h.api.ServeHTTP(sw, r)
		if !sw.failed {
			return nil
		}
		ae := &apiError{Status: sw.status}
		if err := json.Unmarshal(sw.body.Bytes(), ae); err != nil || ae.Status == 0 {
			ae.Status, ae.Title = sw.status, http.StatusText(sw.status)
		}
		if ae.Status != 422 && ae.Status != 400 {
			return ae
		}
		errs = []string{T("logs.export.refused", ae.Detail)}
	}
	v, err := h.logsData(rq)
	if err != nil {
		return err
	}
	v.Form, v.Errors = f, errs
	return rq.render(422, "logs", "logs.title", v)
}

// streamOrProblem passes a successful answer through to the browser as it
// is written, and keeps a failed one (a problem document) for the page.
type streamOrProblem struct {
	w       http.ResponseWriter
	status  int
	failed  bool
	started bool
	body    bytes.Buffer
}

func (s *streamOrProblem) Header() http.Header {
	if s.failed {
		return http.Header{}
	}
	return s.w.Header()
}

func (s *streamOrProblem) WriteHeader(code int) {
	if s.started || s.failed {
		return
	}
	s.status = code
	if code >= 400 {
		s.failed = true
		// Drop what the problem set on the real headers.
		for _, k := range []string{"Content-Type", "WWW-Authenticate", "Retry-After"} {
			s.w.Header().Del(k)
		}
		return
	}
	s.started = true
	s.w.WriteHeader(code)
}

func (s *streamOrProblem) Write(b []byte) (int, error) {
	if !s.started && !s.failed {
		s.WriteHeader(http.StatusOK)
	}
	if s.failed {
		return s.body.Write(b)
	}
	return s.w.Write(b)
}

// Flush lets the export reach the browser as it is produced.
func (s *streamOrProblem) Flush() {
	if f, ok := s.w.(http.Flusher); ok && s.started {
		f.Flush()
	}
}

// holdCreate places a legal hold (RSSI).
func (h *Handler) holdCreate(rq *request) error {
	f := holdForm{UAI: rq.form("uai"), From: rq.form("from"), To: rq.form("to"), Client: rq.form("client"), Reference: rq.form("reference")}
	body := map[string]string{"uai": f.UAI, "from": f.From, "to": f.To, "client": f.Client, "reference": f.Reference}
	if f.Client == "" {
		delete(body, "client")
	}
	err := rq.call("POST", "/api/v1/holds", body, nil)
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == 422 || ae.Status == 400) {
		v, err := h.logsData(rq)
		if err != nil {
			return err
		}
		v.Hold, v.HoldErrors = f, []string{ae.Message()}
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
	if err := rq.call("POST", "/api/v1/holds/"+id+"/release", nil, nil); err != nil {
		return err
	}
	return rq.redirect("/journaux#gels", "holdreleased")
}
