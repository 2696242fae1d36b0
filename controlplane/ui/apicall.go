package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"vigie/controlplane/auth"
)

// apiError is a problem document the API answered with.
type apiError struct {
	Status int      `json:"status"`
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors"`
}

func (e *apiError) Error() string { return fmt.Sprintf("api %d %s: %s", e.Status, e.Type, e.Detail) }

// Kind is the stable part of the problem type ("validation").
func (e *apiError) Kind() string { return strings.TrimPrefix(e.Type, "urn:vigie:problem:") }

// Message is the French sentence for a person: the API's French title
// and its detail, translated where a validator wrote English.
func (e *apiError) Message() string {
	if e.Detail == "" {
		return frenchTitle(e)
	}
	return typo(frenchTitle(e) + " : " + frenchDetail(e.Detail))
}

// Problems lists everything wrong, in French, for a form's error summary
// (forms that know their fields use problems instead).
func (e *apiError) Problems() []string {
	var out []string
	if len(e.Errors) > 0 {
		out = append(out, frenchTitle(e))
	}
	for _, p := range problems(e, nil) {
		out = append(out, p.Text)
	}
	return out
}

// call makes one API request in process, as the signed-in person: with
// their session cookie and CSRF token and their address, so that the
// API authenticates, authorizes and audits it as if the browser had sent
// it. in is sent as JSON; out receives the JSON answer.
func (rq *request) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("ui: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(rq.r.Context(), method, path, body)
	if err != nil {
		return fmt.Errorf("ui: %s %s: %w", method, path, err)
	}
	r.RemoteAddr = rq.r.RemoteAddr
	r.Host = rq.r.Host
	if c, err := rq.r.Cookie(auth.CookieName); err == nil {
		r.AddCookie(c)
	}
	r.Header.Set("X-CSRF-Token", rq.csrf)
	r.Header.Set("Accept", "application/json")
	if in != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}}
	rq.h.api.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 400 {
		ae := &apiError{Status: rec.status}
		if err := json.Unmarshal(rec.body.Bytes(), ae); err != nil || ae.Status == 0 {
			ae.Status, ae.Title = rec.status, http.StatusText(rec.status)
		}
		return ae
	}
	if out != nil && rec.status != http.StatusNoContent {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("ui: decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

// page is the API's collection envelope.
type page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// callAll reads every page of a collection, up to max items.
func callAll[T any](rq *request, path string, max int) ([]T, error) {
	var all []T
	cursor := ""
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for {
		var p page[T]
		u := path + sep + "limit=1000"
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if err := rq.call("GET", u, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.Next == "" || len(all) >= max {
			return all, nil
		}
		cursor = p.Next
	}
}

// recorder collects the API's in-process answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
