package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/logs"
	"vigie/journal/who"
	"vigie/rules/policy"
)

// whoView is the "Qui était derrière cette adresse ?" page: the usual
// requisition (public address, port, time) answered from the archive,
// and exported as a signed ZIP with the requisition's reference.
type whoView struct {
	Schools []policy.School
	Form    whoForm
	Errors  []string
	Answer  *who.Answer
	// Fixed is a chef's school: the search covers it and only it.
	Fixed string
}

type whoForm struct {
	IP, Port, At, Tolerance, UAI, Reference, Motive string
}

func (f whoForm) request() (logs.WhoRequest, error) {
	r := logs.WhoRequest{IP: f.IP, At: strings.Replace(f.At, "T", " ", 1), Tolerance: f.Tolerance, UAI: f.UAI,
		Reference: f.Reference, Motive: f.Motive}
	if f.Port != "" {
		p, err := strconv.ParseUint(f.Port, 10, 16)
		if err != nil {
			return r, errors.New(T("who.badport", f.Port))
		}
		r.Port = uint16(p)
	}
	return r, nil
}

func (h *Handler) whoData(rq *request, f whoForm) (*whoView, error) {
	schools, err := allSchools(rq)
	if err != nil {
		return nil, err
	}
	v := &whoView{Schools: schools, Form: f}
	if rq.id.Role == auth.Chef {
		v.Fixed, v.Form.UAI = rq.id.UAI, rq.id.UAI
	}
	if v.Form.Tolerance == "" {
		v.Form.Tolerance = "2s"
	}
	return v, nil
}

// whoPage shows the form and, when an address is given, the answer.
func (h *Handler) whoPage(rq *request) error {
	q := rq.r.URL.Query()
	f := whoForm{IP: strings.TrimSpace(q.Get("ip")), Port: strings.TrimSpace(q.Get("port")), At: strings.TrimSpace(q.Get("at")),
		Tolerance: strings.TrimSpace(q.Get("tolerance")), UAI: strings.ToUpper(strings.TrimSpace(q.Get("uai")))}
	v, err := h.whoData(rq, f)
	if err != nil {
		return err
	}
	if f.IP == "" {
		return rq.render(200, "who", "who.title", v)
	}
	req, err := v.Form.request()
	if err == nil {
		var ans who.Answer
		err = rq.api().Call(rq.ctx(), "POST", logs.WhoPath, req, &ans)
		v.Answer = &ans
	}
	var ae *apiError
	switch {
	case errors.As(err, &ae) && (ae.Status == 422 || ae.Status == 400 || ae.Status == 403):
		v.Answer, v.Errors = nil, []string{apiMessage(ae)}
		return rq.render(422, "who", "who.title", v)
	case err != nil && ae == nil && v.Answer == nil:
		v.Errors = []string{err.Error()}
		return rq.render(422, "who", "who.title", v)
	case err != nil:
		return err
	}
	return rq.render(200, "who", "who.title", v)
}

// whoExport streams the signed ZIP of the answer's client, through the
// API (which checks the scope, signs and audits).
func (h *Handler) whoExport(rq *request) error {
	f := whoForm{IP: rq.form("ip"), Port: rq.form("port"), At: rq.form("at"), Tolerance: rq.form("tolerance"),
		UAI: strings.ToUpper(rq.form("uai")), Reference: rq.form("reference"), Motive: rq.form("motive")}
	var errs []string
	req, err := f.request()
	if err != nil {
		errs = append(errs, err.Error())
	}
	if f.Reference == "" {
		errs = append(errs, T("logs.export.noreference"))
	}
	if len(errs) == 0 {
		body, _ := json.Marshal(req)
		r, err := http.NewRequestWithContext(rq.r.Context(), "POST", logs.WhoExportPath, bytes.NewReader(body))
		if err != nil {
			return err
		}
		r.RemoteAddr, r.Host = rq.r.RemoteAddr, rq.r.Host
		if c, err := rq.r.Cookie(auth.CookieName); err == nil {
			r.AddCookie(c)
		}
		r.Header.Set("X-CSRF-Token", rq.csrf)
		r.Header.Set("Content-Type", "application/json")
		sw := &whoStream{w: rq.w}
		h.api.ServeHTTP(sw, r)
		if !sw.failed {
			return nil
		}
		ae := &apiError{Status: sw.status}
		if err := json.Unmarshal(sw.body.Bytes(), ae); err != nil || ae.Status == 0 {
			ae.Status, ae.Title = sw.status, http.StatusText(sw.status)
		}
		if ae.Status >= 500 {
			return ae
		}
		errs = []string{T("logs.export.refused", ae.Detail)}
	}
	v, err := h.whoData(rq, f)
	if err != nil {
		return err
	}
	v.Errors = errs
	return rq.render(422, "who", "who.title", v)
}

// whoTime formats an answer's time in Paris for the page.
func whoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(paris).Format("02/01/2006 15:04:05")
}

// whoStream passes a successful export through to the browser as the API
// writes it, and keeps a refusal (a problem document) for the page.
type whoStream struct {
	w       http.ResponseWriter
	status  int
	failed  bool
	started bool
	body    bytes.Buffer
}

func (s *whoStream) Header() http.Header {
	if s.failed {
		return http.Header{}
	}
	return s.w.Header()
}

func (s *whoStream) WriteHeader(code int) {
	if s.started || s.failed {
		return
	}
	s.status = code
	if code >= 400 {
		s.failed = true
		for _, k := range []string{"Content-Type", "WWW-Authenticate", "Retry-After"} {
			s.w.Header().Del(k)
		}
		return
	}
	s.started = true
	s.w.WriteHeader(code)
}

func (s *whoStream) Write(b []byte) (int, error) {
	if !s.started && !s.failed {
		s.WriteHeader(http.StatusOK)
	}
	if s.failed {
		return s.body.Write(b)
	}
	return s.w.Write(b)
}

// Flush lets the export reach the browser as it is produced.
func (s *whoStream) Flush() {
	if f, ok := s.w.(http.Flusher); ok && s.started {
		f.Flush()
	}
}
