package export

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Path is the control plane route of exports: POST an APIRequest, get the
// ZIP back (application/zip), with its SHA-256 in the HashTrailer trailer.
const Path = "/api/v1/exports"

// HashTrailer carries the SHA-256 of the ZIP, sent after the body so that
// the archive can stream; the CLI checks what it saved against it.
const HashTrailer = "X-Vigie-Export-Sha256"

// APIRequest is the JSON body of an export request.
type APIRequest struct {
	UAI       string `json:"uai"`
	From      string `json:"from"`
	To        string `json:"to"`
	Client    string `json:"client,omitempty"`
	MAC       string `json:"mac,omitempty"`
	User      string `json:"user,omitempty"`
	Domain    string `json:"domain,omitempty"`
	Reference string `json:"reference"`
	Motive    string `json:"motive"`
}

// Request turns the API request into a Request (the exporter is filled by
// the caller from the authenticated identity). Errors name the field.
func (a APIRequest) Request() (Request, error) {
	r := Request{UAI: strings.ToUpper(strings.TrimSpace(a.UAI)), MAC: strings.TrimSpace(a.MAC), User: a.User,
		Domain: strings.TrimSpace(a.Domain), Reference: strings.TrimSpace(a.Reference), Motive: strings.TrimSpace(a.Motive)}
	var err error
	if r.From, err = ParseTime(a.From); err != nil {
		return r, fmt.Errorf("from: %w", err)
	}
	if r.To, err = ParseTime(a.To); err != nil {
		return r, fmt.Errorf("to: %w", err)
	}
	if a.Client != "" {
		if r.Client, err = netip.ParseAddr(strings.TrimSpace(a.Client)); err != nil {
			return r, fmt.Errorf("client: %w", err)
		}
	}
	return r, nil
}

// ParseTime reads a time as users type it: RFC 3339 with an offset, or a
// date and time without one ("2026-03-02", "2026-03-02T08:00",
// "2026-03-02 08:00:00"), taken in Europe/Paris.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("missing time")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, Paris); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (write 2026-03-02T08:00:00+01:00, or 2026-03-02 08:00 in Paris time)", s)
}
