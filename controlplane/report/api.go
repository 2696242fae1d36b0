package report

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/journal/archive"
)

// Path is the report's route.
const Path = "/api/v1/reports/yearly"

// Roles may ask for a report: the RSSI and the AQSSI for any school or
// département, a technicien within their scope, a chef d'établissement
// for their school.
var Roles = []auth.Role{auth.RSSI, auth.AQSSI, auth.Technicien, auth.Chef}

// Deps are what the route reads.
type Deps struct {
	// Archive is the journal archive (nil: no blocked counts).
	Archive archive.Store
	// NavigationRetention is the archive's retention of navigation.
	NavigationRetention time.Duration
	// LongPoll is the edges' long-poll period, which sets when a silent
	// edge counts as out of contact.
	LongPoll time.Duration
	Now      func() time.Time
}

type handler struct {
	srv *api.Server
	d   Deps
}

// Register adds the report's route to the API.
func Register(srv *api.Server, d Deps) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.LongPoll <= 0 {
		d.LongPoll = 30 * time.Second
	}
	h := &handler{srv: srv, d: d}
	srv.AddSchema("YearlyReport", Report{})
	srv.Handle(api.Route{Method: "GET", Path: Path, Roles: Roles, Tag: "reports", Response: "YearlyReport",
		Summary: "Revue annuelle conjointe d'un établissement ou d'un département (chiffres seulement, aucune donnée personnelle)",
		Query:   map[string]string{"year": "année (obligatoire)", "uai": "un établissement", "departement": "ou un département (67, 68…)"}}, h.serve)
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := Query{UAI: v.Get("uai"), Departement: v.Get("departement")}
	year, err := strconv.Atoi(v.Get("year"))
	if err != nil {
		return api.Errorf("validation", "year\u00a0: une année est obligatoire (par exemple 2026)")
	}
	q.Year = year
	now := h.d.Now()
	if err := q.Check(now); err != nil {
		return api.Errorf("validation", "%v", err)
	}
	if q.UAI != "" {
		err = h.srv.SchoolScope(r, q.UAI)
	} else {
		err = h.srv.DepartementScope(r, q.Prefix())
	}
	if err != nil {
		return err
	}
	id := auth.FromContext(r.Context())
	src := Sources{Store: h.srv.Store(), Archive: h.d.Archive, NavigationRetention: h.d.NavigationRetention,
		OfflineAfter: 2*h.d.LongPoll + 10*time.Second}
	if hist, ok := h.srv.Store().(store.History); ok {
		src.History = hist
	}
	// Technicians see no browsing data, not even counted (as on the
	// dashboard).
	opt := Options{Blocked: id.Role != auth.Technicien}
	rep, err := Build(r.Context(), src, q, now, opt)
	if err != nil {
		return err
	}
	if q.UAI != "" && len(rep.Schools) == 0 {
		return api.Errorf("not-found", "pas d'établissement %s", q.UAI)
	}
	// The report is delivered only once its generation is in the log.
	if err := h.srv.Audit(r, "report.yearly", q.Target(), nil, map[string]any{"year": q.Year, "blocked": opt.Blocked}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(rep)
}
