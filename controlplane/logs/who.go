package logs

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/journal/export"
	"vigie/journal/who"
)

// WhoPath answers "who had this public address and port at this time";
// WhoExportPath exports the answer's client records as a signed ZIP.
const (
	WhoPath       = "/api/v1/logs/who"
	WhoExportPath = "/api/v1/logs/who/export"
)

// WhoRequest is the JSON body of both routes.
type WhoRequest struct {
	IP   string `json:"ip"`
	Port uint16 `json:"port,omitempty"`
	At   string `json:"at"`
	// Tolerance is a Go duration ("2s", the default).
	Tolerance string `json:"tolerance,omitempty"`
	// UAI narrows the search to one school (a chef's is always theirs).
	UAI string `json:"uai,omitempty"`
	// Reference and Motive are required for the export.
	Reference string `json:"reference,omitempty"`
	Motive    string `json:"motive,omitempty"`
}

func (s *Service) whoRoutes() {
	s.srv.AddSchema("WhoRequest", map[string]any{"type": "object", "required": []string{"ip", "at"},
		"properties": map[string]any{
			"ip":        map[string]any{"type": "string", "description": "adresse publique nommée par la réquisition"},
			"port":      map[string]any{"type": "integer", "description": "port source public (facultatif)"},
			"at":        map[string]any{"type": "string", "description": "instant, RFC 3339 ou date et heure de Paris"},
			"tolerance": map[string]any{"type": "string", "description": "tolérance autour de l'instant (2s par défaut)"},
			"uai":       map[string]any{"type": "string"}, "reference": map[string]any{"type": "string"}, "motive": map[string]any{"type": "string"},
		}})
	s.srv.AddSchema("WhoAnswer", map[string]any{"type": "object"})
	// Every role reaches the handlers so that refusals are audited too.
	s.srv.Handle(api.Route{Method: "POST", Path: WhoPath, Roles: everyone, Summary: "Qui avait cette adresse publique et ce port à cet instant ? (RSSI ; chef d'établissement pour le sien)", Tag: "logs", Request: "WhoRequest", Response: "WhoAnswer"}, s.who)
	s.srv.Handle(api.Route{Method: "POST", Path: WhoExportPath, Roles: everyone, Summary: "Extraction signée (ZIP) des enregistrements du poste trouvé, avec la référence de la réquisition", Tag: "exports", Request: "WhoRequest", Binary: true}, s.whoExport)
}

// whoQuery decodes and checks the body and the caller's scope; a refusal
// is audited and returned as a problem.
func (s *Service) whoQuery(w http.ResponseWriter, r *http.Request, action string) (WhoRequest, who.Query, error) {
	id := auth.FromContext(r.Context())
	var body WhoRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return body, who.Query{}, api.Errorf("bad-request", "corps JSON illisible : %v", err)
	}
	var q who.Query
	var err error
	if q.Addr, err = netip.ParseAddr(strings.TrimSpace(body.IP)); err != nil {
		return body, q, api.Errorf("validation", "ip : %q n'est pas une adresse IP", body.IP)
	}
	q.Port = body.Port
	if q.At, err = export.ParseTime(body.At); err != nil {
		return body, q, api.Errorf("validation", "at : %v", err)
	}
	if body.Tolerance != "" {
		if q.Tolerance, err = time.ParseDuration(body.Tolerance); err != nil || q.Tolerance < 0 || q.Tolerance > time.Hour {
			return body, q, api.Errorf("validation", "tolerance : %q n'est pas une durée entre 0 et 1h (ex. 2s)", body.Tolerance)
		}
	}
	uai := strings.ToUpper(strings.TrimSpace(body.UAI))
	detail := map[string]any{"ip": q.Addr.String(), "port": q.Port, "at": q.At, "tolerance": body.Tolerance, "uai": uai, "reference": body.Reference}
	switch {
	case id.Role == auth.RSSI && uai != "":
		q.Schools = []string{uai}
	case id.Role == auth.RSSI:
		var err error
		if q.Schools, err = s.schools(r.Context()); err != nil {
			return body, q, err
		}
	case id.Role == auth.Chef && (uai == "" || uai == id.UAI):
		q.Schools = []string{id.UAI}
	default:
		detail["reason"] = "role " + string(id.Role) + " for school " + id.UAI
		s.auditReq(r, action+".denied", "logs/who", detail)
		if id.Role == auth.Chef {
			return body, q, api.Errorf("forbidden", "un chef d'établissement ne cherche que dans les journaux de son établissement (%s)", id.UAI)
		}
		return body, q, api.Errorf("forbidden", "le rôle %s ne permet pas de consulter les journaux", id.Role)
	}
	return body, q, nil
}

func (s *Service) who(w http.ResponseWriter, r *http.Request) error {
	body, q, err := s.whoQuery(w, r, "logs.who")
	if err != nil {
		return err
	}
	ans, err := who.Find(r.Context(), s.store, q)
	if err != nil {
		return err
	}
	s.auditReq(r, "logs.who", "logs/who", map[string]any{"ip": ans.Addr, "port": q.Port, "at": q.At, "schools": q.Schools,
		"reference": body.Reference, "matches": len(ans.Matches)})
	return writeJSON(w, http.StatusOK, ans)
}

// whoExport exports, as a signed ZIP like any requisition export, the
// records of the client the answer leads to, over the flow and the
// navigation window around it; the motive names the public address,
// port and time asked.
func (s *Service) whoExport(w http.ResponseWriter, r *http.Request) error {
	body, q, err := s.whoQuery(w, r, "logs.who.export")
	if err != nil {
		return err
	}
	if strings.TrimSpace(body.Reference) == "" {
		return api.Errorf("validation", "reference : la référence de la réquisition est obligatoire")
	}
	ans, err := who.Find(r.Context(), s.store, q)
	if err != nil {
		return err
	}
	var client netip.Addr
	var uai string
	var from, to time.Time
	for i := range ans.Matches {
		m := &ans.Matches[i]
		c := m.Client()
		if !c.IsValid() || (client.IsValid() && (c != client || m.UAI != uai)) {
			return api.Errorf("conflict", "la réquisition désigne plusieurs postes ou aucun poste unique (%d correspondances) : précisez le port ou l'instant", len(ans.Matches))
		}
		client, uai = c, m.UAI
		end := m.Flow.Time
		if !m.Flow.End.IsZero() {
			end = m.Flow.End
		}
		if from.IsZero() || m.Flow.Time.Before(from) {
			from = m.Flow.Time
		}
		if end.After(to) {
			to = end
		}
	}
	if !client.IsValid() {
		return api.Errorf("not-found", "aucune connexion avec l'adresse %s port %d à cet instant", ans.Addr, q.Port)
	}
	const around = 5 * time.Minute
	motive := strings.TrimSpace(body.Motive)
	if motive == "" {
		motive = "Réponse à la réquisition " + strings.TrimSpace(body.Reference)
	}
	motive += fmt.Sprintf(" ; adresse publique %s", ans.Addr)
	if q.Port != 0 {
		motive += fmt.Sprintf(", port %d", q.Port)
	}
	motive += fmt.Sprintf(", le %s (± %s)", q.At.In(export.Paris).Format("02/01/2006 à 15:04:05"), ans.Tolerance)
	id := auth.FromContext(r.Context())
	req := export.Request{UAI: uai, School: s.schoolName(r.Context(), uai), From: from.Add(-around), To: to.Add(around + time.Microsecond),
		Client: client, Reference: strings.TrimSpace(body.Reference), Motive: motive, Exporter: id.Actor(), Role: string(id.Role)}
	if err := req.Validate(); err != nil {
		return api.Errorf("validation", "%s", strings.TrimPrefix(err.Error(), "export: "))
	}
	query := map[string]any{"ip": ans.Addr, "port": q.Port, "at": q.At, "uai": uai, "client": client.String(), "from": req.From, "to": req.To, "reference": req.Reference}
	return s.streamExport(w, r, req, "vigie-qui", query, map[string]any{"who": true})
}
