package ui

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"vigie/controlplane/apiclient"
	"vigie/controlplane/auth"
)

// apiError is a problem document the API answered with, as the API client
// returns it; apiMessage and apiProblems say it in French.
type apiError = apiclient.Problem

// apiMessage is the French sentence for a person: the API's French title
// and its detail, translated where a validator wrote English.
func apiMessage(e *apiError) string {
	if e.Detail == "" {
		return frenchTitle(e)
	}
	return typo(frenchTitle(e) + " : " + frenchDetail(e.Detail))
}

// apiProblems lists everything wrong, in French, for a form's error
// summary (forms that know their fields use problems instead).
func apiProblems(e *apiError) []string {
	var out []string
	if len(e.Errors) > 0 {
		out = append(out, frenchTitle(e))
	}
	for _, p := range problems(e, nil) {
		out = append(out, p.Text)
	}
	return out
}

// api is the control plane's API client (the one "vigie admin" uses),
// acting in process as the signed-in person: each request carries their
// session cookie, CSRF token and address, so that the API authenticates,
// authorizes and audits it as if the browser had sent it.
func (rq *request) api() *apiclient.Client {
	return &apiclient.Client{HTTP: inProcess{rq: rq}}
}

// ctx is the page request's context.
func (rq *request) ctx() context.Context { return rq.r.Context() }

// inProcess serves the client's requests with the API handler, without a
// socket.
type inProcess struct{ rq *request }

func (d inProcess) Do(r *http.Request) (*http.Response, error) {
	rq := d.rq
	r.RemoteAddr = rq.r.RemoteAddr
	r.Host = rq.r.Host
	if c, err := rq.r.Cookie(auth.CookieName); err == nil {
		r.AddCookie(c)
	}
	r.Header.Set("X-CSRF-Token", rq.csrf)
	rec := &recorder{header: http.Header{}}
	rq.h.api.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	// Status is what a problem without a body is titled with.
	return &http.Response{StatusCode: rec.status, Status: http.StatusText(rec.status), Header: rec.header,
		Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), Request: r}, nil
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
