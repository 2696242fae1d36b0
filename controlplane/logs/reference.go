package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/export"
	"vigie/rules"
)

// RefPath is the route that finds a refusal by the reference its block
// page showed ("Référence Q3R6-RPAY").
const RefPath = "/api/v1/logs/refs/{ref}"

// refWindow is how far back a lookup searches by default: a pupil quotes
// a reference in the days after the refusal, and the scan is bounded.
const refWindow = 31 * 24 * time.Hour

// refAlphabet is the block page's: no 0/O, 1/I/L.
const refAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// Refusal is what a reference leads to: the navigation record and the list
// entry that refused it under the version in force at the time.
type Refusal struct {
	Reference string    `json:"reference"`
	UAI       string    `json:"uai"`
	Time      time.Time `json:"time"`
	Client    string    `json:"client"`
	MAC       string    `json:"mac,omitempty"`
	User      string    `json:"user,omitempty"`
	Proto     string    `json:"proto,omitempty"`
	Method    string    `json:"method,omitempty"`
	Host      string    `json:"host"`
	URL       string    `json:"url,omitempty"`
	Status    int       `json:"status,omitempty"`
	Verdict   string    `json:"verdict"`
	Category  string    `json:"category"`
	Seq       uint64    `json:"seq"`
	// Serial is the published version in force at the record's time, the
	// one Entry was found in; Zone the client's zone in it.
	Serial uint64 `json:"serial,omitempty"`
	Zone   string `json:"zone,omitempty"`
	// Entry is the list entry that blocked, when the version still says so.
	Entry *rules.Match `json:"entry,omitempty"`
}

// NormalizeRef accepts what a person types ("q3r6 rpay", "Q3R6RPAY") and
// returns the block page's form "Q3R6-RPAY".
func NormalizeRef(s string) (string, error) {
	var b []byte
	for _, c := range strings.ToUpper(s) {
		switch {
		case c == '-' || c == ' ' || c == '\u00a0':
		case c < 128 && strings.IndexByte(refAlphabet, byte(c)) >= 0:
			b = append(b, byte(c))
		default:
			return "", fmt.Errorf("référence %q : caractère %q impossible (une référence s'écrit comme Q3R6-RPAY)", s, c)
		}
	}
	if len(b) != 8 {
		return "", fmt.Errorf("référence %q : 8 caractères attendus (comme Q3R6-RPAY), %d lus", s, len(b))
	}
	return string(b[:4]) + "-" + string(b[4:]), nil
}

func (s *Service) refRoutes() {
	s.srv.AddSchema("Refusal", map[string]any{"type": "object"})
	s.srv.Handle(api.Route{Method: "GET", Path: RefPath, Roles: []auth.Role{auth.RSSI, auth.Chef},
		Summary: "Retrouver un refus par la référence de sa page de blocage", Tag: "logs", Response: "Refusal",
		Query: map[string]string{"uai": "établissement (celui du chef par défaut ; tous pour le RSSI)",
			"from": "début de la recherche (défaut : 31 jours avant to)", "to": "fin de la recherche (défaut : maintenant)"}}, s.lookupRef)
}

func (s *Service) lookupRef(w http.ResponseWriter, r *http.Request) error {
	id := auth.FromContext(r.Context())
	ref, err := NormalizeRef(r.PathValue("ref"))
	if err != nil {
		return api.Errorf("validation", "%v", err)
	}
	q := r.URL.Query()
	to, from := s.now(), time.Time{}
	if v := q.Get("to"); v != "" {
		if to, err = export.ParseTime(v); err != nil {
			return api.Errorf("validation", "to : %v", err)
		}
	}
	from = to.Add(-refWindow)
	if v := q.Get("from"); v != "" {
		if from, err = export.ParseTime(v); err != nil {
			return api.Errorf("validation", "from : %v", err)
		}
	}
	uais := []string{q.Get("uai")}
	switch {
	case id.Role == auth.Chef && uais[0] == "":
		uais[0] = id.UAI
	case uais[0] == "":
		if uais, err = s.schools(r.Context()); err != nil {
			return err
		}
	}
	if !id.CanSeeSchool(uais[0]) {
		s.auditReq(r, "logs.ref.denied", "ref/"+ref, map[string]any{"uai": uais[0]})
		return api.Errorf("forbidden", "établissement %s hors de votre périmètre", uais[0])
	}
	found, err := s.FindRef(r.Context(), uais, ref, from, to)
	s.auditReq(r, "logs.ref", "ref/"+ref, map[string]any{"uai": strings.Join(uais, ","), "from": from, "to": to, "found": err == nil})
	if errors.Is(err, archive.ErrNotFound) {
		return api.Errorf("not-found", "aucun refus de référence %s entre le %s et le %s", ref,
			from.In(export.Paris).Format("02/01/2006 15:04"), to.In(export.Paris).Format("02/01/2006 15:04"))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, found)
}

// schools lists the UAIs of the draft policy.
func (s *Service) schools(ctx context.Context) ([]string, error) {
	d, err := s.srv.Store().Draft(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sc := range d.Policy.Schools {
		out = append(out, sc.UAI)
	}
	return out, nil
}

// errFound stops a scan at the first match.
var errFound = errors.New("found")

// FindRef scans the navigation records of the schools in [from, to) for
// the block reference ref (normalized) and explains the refusal.
func (s *Service) FindRef(ctx context.Context, uais []string, ref string, from, to time.Time) (*Refusal, error) {
	var rec journal.Record
	var dec journal.Decoder
	var hit bool
	refb := []byte(ref)
	for _, uai := range uais {
		err := s.store.Scan(ctx, archive.Query{UAI: uai, From: from, To: to, Streams: []journal.Stream{journal.Navigation}},
			func(_ archive.Chain, st *archive.Stored) error {
				// The reference is ASCII inside the canonical payload: skip
				// the decode of every record that cannot hold it.
				if !bytes.Contains(st.Payload, refb) {
					return nil
				}
				if err := dec.Decode(st.Payload, &rec); err != nil {
					return nil
				}
				if rec.Reference != ref {
					return nil
				}
				rec.Seq = st.Seq
				hit = true
				return errFound
			})
		if hit {
			break
		}
		if err != nil && !errors.Is(err, errFound) {
			return nil, fmt.Errorf("logs: find reference %s: %w", ref, err)
		}
	}
	if !hit {
		return nil, archive.ErrNotFound
	}
	out := &Refusal{Reference: rec.Reference, UAI: rec.UAI, Time: rec.Time, MAC: rec.MAC, User: rec.User, Proto: rec.Proto,
		Method: rec.Method, Host: rec.Host, URL: rec.URL, Status: rec.Status, Verdict: rec.Verdict, Category: rec.Category, Seq: rec.Seq}
	if rec.Client.IsValid() {
		out.Client = rec.Client.String()
	}
	if err := s.explainRefusal(ctx, out, &rec); err != nil {
		s.log.Warn("logs: reference found, list entry not explained", "ref", ref, "err", err)
	}
	return out, nil
}

// explainRefusal finds the version in force at the record's time and the
// entry of it that blocks the record's host or URL for the client's zone.
func (s *Service) explainRefusal(ctx context.Context, out *Refusal, rec *journal.Record) error {
	serial, err := s.versionAt(ctx, rec.Time)
	if err != nil || serial == 0 {
		return err
	}
	b, err := s.srv.Publisher().Bundle(ctx, serial)
	if err != nil {
		return err
	}
	rs, _, err := rules.DecodeBundle(b.Raw, nil)
	if err != nil {
		return err
	}
	out.Serial = serial
	zone, pid := rs.Zone(rec.UAI, rec.Client.Addr())
	out.Zone = zone
	ex := rs.Explain(pid, rules.Query{Host: rec.Host, URL: rec.URL, Time: rec.Time})
	for i := range ex.Matches {
		m := ex.Matches[i]
		if m.Effect == rules.EffectBlock && (rec.Category == "" || m.Category == rec.Category) {
			out.Entry = &m
			return nil
		}
	}
	for i := range ex.Matches {
		if ex.Matches[i].Effect == rules.EffectBlock {
			m := ex.Matches[i]
			out.Entry = &m
			return nil
		}
	}
	return nil
}

// versionAt returns the serial of the newest version published at or
// before t (0 when none).
func (s *Service) versionAt(ctx context.Context, t time.Time) (uint64, error) {
	p := store.Page{Limit: 200}
	for {
		vs, err := s.srv.Store().Versions(ctx, p)
		if err != nil {
			return 0, err
		}
		for _, v := range vs {
			if !v.Created.After(t) {
				return v.Serial, nil
			}
		}
		if len(vs) < p.Limit {
			return 0, nil
		}
		p.After = fmt.Sprint(vs[len(vs)-1].Serial)
	}
}
