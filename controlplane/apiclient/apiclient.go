// Package apiclient is the one client of the control plane's API: every
// path under /api/v1 that a client calls is written here, so that the
// command line ("vigie admin"), and any other caller, cannot drift from
// the routes the server declares (controlplane/api).
//
// A Client sends requests through a Doer: an *http.Client for a remote
// control plane, or anything that serves the request in process.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// V1 is the prefix of every route.
const V1 = "/api/v1"

// Doer sends one request (an *http.Client does).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client calls the API of one control plane with one token.
type Client struct {
	// Server is the base URL ("https://vigie.ac-exemple.fr").
	Server string
	// Token is an API token (Authorization: Bearer).
	Token string
	// HTTP sends the requests.
	HTTP Doer
}

// Options configure New.
type Options struct {
	Server, Token string
	// CAFile is a PEM file of CA certificates to trust instead of the
	// system's: a control plane with a certificate of a private CA.
	CAFile string
	// Timeout bounds one request (10 minutes: a UT1 import).
	Timeout time.Duration
}

// New returns a client over HTTP(S).
func New(o Options) (*Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	u, err := url.Parse(o.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("apiclient: server %q: want http(s)://host[:port]", o.Server)
	}
	hc := &http.Client{Timeout: o.Timeout}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("apiclient: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("apiclient: CA file %s: no PEM certificate in it", o.CAFile)
		}
		hc.Transport = &http.Transport{Proxy: http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &Client{Server: strings.TrimRight(o.Server, "/"), Token: o.Token, HTTP: hc}, nil
}

// Problem is an RFC 9457 document the control plane answered with.
type Problem struct {
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Status int      `json:"status"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors"`
}

// Kind is the stable part of the type ("validation").
func (p *Problem) Kind() string { return strings.TrimPrefix(p.Type, "urn:vigie:problem:") }

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d)", p.Title, p.Status)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		b.WriteString("\n  - " + e)
	}
	return b.String()
}

// Request builds a request to path (under the server) with in as JSON.
func (c *Client) Request(ctx context.Context, method, path string, in any) (*http.Request, error) {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("apiclient: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, rd)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Call sends in as JSON and decodes the JSON answer into out (either may
// be nil). An error status becomes a *Problem.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	req, err := c.Request(ctx, method, path, in)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("control plane %s unreachable: %w", c.Server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("apiclient: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		p := &Problem{Status: resp.StatusCode, Title: resp.Status}
		if json.Unmarshal(data, p) != nil || p.Status == 0 {
			p.Status, p.Title = resp.StatusCode, resp.Status
		}
		return p
	}
	if out != nil && len(data) > 0 && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return nil
}

// Bytes GETs a binary answer (bundles, keys), up to 1 GiB.
func (c *Client) Bytes(ctx context.Context, path string) ([]byte, error) {
	req, err := c.Request(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Del("Accept")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control plane %s unreachable: %w", c.Server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("apiclient: GET %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		p := &Problem{Status: resp.StatusCode, Title: resp.Status}
		if json.Unmarshal(data, p) != nil || p.Status == 0 {
			p.Status, p.Title = resp.StatusCode, resp.Status
		}
		return nil, p
	}
	return data, nil
}

// Page is the API's collection envelope.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// Each GETs a collection page after page (1000 items each), giving every
// page's items to fn, until the server names no next cursor. max > 0
// stops after that many items.
func Each[T any](ctx context.Context, c *Client, path string, max int, fn func([]T) error) error {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor, n := "", 0
	// Bounded: a server that always answers next would otherwise hold
	// the caller forever.
	for pages := 0; pages < 100000; pages++ {
		var p Page[T]
		u := path + sep + "limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := c.Call(ctx, "GET", u, nil, &p); err != nil {
			return err
		}
		if err := fn(p.Items); err != nil {
			return err
		}
		n += len(p.Items)
		if p.Next == "" || (max > 0 && n >= max) {
			return nil
		}
		cursor = p.Next
	}
	return fmt.Errorf("apiclient: %s: more than 100000 pages", path)
}

// All collects every item of a collection.
func All[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var out []T
	err := Each(ctx, c, path, 0, func(items []T) error { out = append(out, items...); return nil })
	return out, err
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
