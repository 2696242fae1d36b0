package ui

import (
	"errors"
	"html/template"
	"slices"
	"strings"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/journal/archive"
	"vigie/rules/policy"
)

// lateAfter is how long after a publication an edge that has not applied
// it becomes an alert: edges long-poll, so a healthy one applies within
// seconds.
const lateAfter = 10 * time.Minute

// dashboardView is the Tableau de bord.
type dashboardView struct {
	Head    versionHead
	Fleet   fleetView
	Chart   *chartView
	NoChart string
	// School is set for a chef d'établissement: the page is theirs.
	School string
	// Versions are the latest publications (auditeurs see those).
	Versions []store.Version
}

type versionHead struct {
	Serial  uint64
	Created time.Time
	Author  string
	Comment string
}

// fleetView is the part refreshed by script: the version in force, the
// edges and the alerts.
type fleetView struct {
	Head      versionHead
	Published uint64
	Rows      []edgeRow
	Alerts    []alert
	Total     int
	UpToDate  int
	Online    int
	// Visible is false for roles that see no edge (auditeurs).
	Visible bool
	// One is set when the fleet is one school's (a chef's).
	One bool
	At  time.Time
}

type edgeRow struct {
	UAI, School, ID, Name string
	Applied               uint64
	// State is ok, late, error, silent or never; StateLabel says it.
	State, StateLabel string
	LastSeen          time.Time
	LastError         string
	Software          string
}

type alert struct {
	// Level is error or warning.
	Level, Text, Link string
}

type chartView struct {
	Bars      template.HTML
	Hours     template.HTML
	Rows      []categoryCount
	Total     int64
	Truncated bool
	From, To  time.Time
	Crashes   []crashNote
}

func (h *Handler) dashboard(rq *request) error {
	v := dashboardView{Head: h.head(rq)}
	fleet, schools, err := h.fleet(rq)
	if err != nil {
		return err
	}
	fleet.Head = v.Head
	v.Fleet = fleet
	if rq.id.Role == auth.Chef {
		v.School = schoolName(schools, rq.id.UAI)
	}
	if rq.id.Role == auth.Auditeur {
		vs, err := callAll[store.Version](rq, "/api/v1/versions", 10)
		if err != nil {
			return err
		}
		v.Versions = vs[:min(len(vs), 10)]
	}
	// Blocked requests are traffic statistics: the RSSI sees the
	// académie's, a chef their school's, a technician none (they see
	// no browsing data at all, not even counted).
	if rq.is(auth.RSSI, auth.Chef) {
		v.Chart, v.NoChart, err = h.chart(rq, schools)
		if err != nil {
			return err
		}
	}
	return rq.render(200, "dashboard", "dashboard.title", v)
}

// head describes the version in force; its author and comment for the
// roles that read the history.
func (h *Handler) head(rq *request) versionHead {
	hd := h.pub.Head()
	v := versionHead{Serial: hd.Serial, Created: hd.Created}
	if hd.Serial > 0 && rq.is(history...) {
		var ver store.Version
		if err := rq.call("GET", "/api/v1/versions/"+u64(hd.Serial), nil, &ver); err == nil {
			v.Author, v.Comment = ver.Author, ver.Comment
		}
	}
	return v
}

// dashboardFleet serves the fleet part alone for the page's refresh.
func (h *Handler) dashboardFleet(rq *request) error {
	fleet, _, err := h.fleet(rq)
	if err != nil {
		return err
	}
	fleet.Head = h.head(rq)
	return rq.fragment("dashboard", "fleet", fleet)
}

// fleet reads the edges the caller may see, through the API: all of them
// for the RSSI and technicians, the school's for a chef.
func (h *Handler) fleet(rq *request) (fleetView, []policy.School, error) {
	now := rq.now()
	hd := h.pub.Head()
	f := fleetView{Published: hd.Serial, At: now}
	var edges []api.EdgeHealth
	var schools []policy.School
	switch rq.id.Role {
	case auth.RSSI, auth.Technicien:
		var err error
		if schools, err = allSchools(rq); err != nil {
			return f, nil, err
		}
		if edges, err = callAll[api.EdgeHealth](rq, "/api/v1/edges", 100000); err != nil {
			return f, nil, err
		}
	case auth.Chef:
		var st api.SchoolStatus
		if err := rq.call("GET", "/api/v1/schools/"+rq.id.UAI+"/status", nil, &st); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == 404 {
				// A chef whose school left the policy sees an empty page.
				return f, nil, nil
			}
			return f, nil, err
		}
		schools = []policy.School{{UAI: st.UAI, Name: st.Name}}
		edges = st.Edges
		f.One = true
	default:
		return f, nil, nil
	}
	f.Visible = true
	for _, e := range edges {
		row := edgeRow{UAI: e.UAI, School: schoolName(schools, e.UAI), ID: e.ID, Name: e.Name, Applied: e.AppliedSerial,
			LastSeen: e.LastSeen, LastError: e.LastError, Software: e.Software}
		f.Total++
		if e.Online {
			f.Online++
		}
		if e.UpToDate {
			f.UpToDate++
		}
		link := "/etablissements/" + e.UAI
		switch {
		case e.LastSeen.IsZero():
			row.State = "never"
			f.Alerts = append(f.Alerts, alert{Level: "warning", Link: link, Text: T("alert.never", e.ID, row.School)})
		case e.LastError != "":
			row.State = "error"
			f.Alerts = append(f.Alerts, alert{Level: "error", Link: link, Text: T("alert.applyfailed", e.ID, row.School, shorten(e.LastError, 200))})
		case !e.Online:
			row.State = "silent"
			f.Alerts = append(f.Alerts, alert{Level: "error", Link: link, Text: T("alert.silent", e.ID, row.School, agoText(now, e.LastSeen))})
		case e.UnknownVersion:
			row.State = "unknown"
			f.Alerts = append(f.Alerts, alert{Level: "error", Link: link, Text: T("alert.unknownversion", e.ID, row.School, e.AppliedSerial)})
		case !e.UpToDate:
			row.State = "late"
			if now.Sub(hd.Created) > lateAfter {
				f.Alerts = append(f.Alerts, alert{Level: "warning", Link: link, Text: T("alert.late", e.ID, row.School, e.AppliedSerial, hd.Serial)})
			}
		default:
			row.State = "ok"
		}
		row.StateLabel = T("edge.state." + row.State)
		f.Rows = append(f.Rows, row)
	}
	// Journal gaps: records an edge never delivered. They are no
	// browsing data (sequence numbers only), so technicians see them.
	if h.archive != nil {
		for _, s := range schools {
			gaps, err := h.archive.Gaps(rq.r.Context(), s.UAI)
			if err != nil {
				return f, nil, err
			}
			for _, g := range gaps {
				f.Alerts = append(f.Alerts, gapAlert(g, s))
			}
		}
	}
	slices.SortStableFunc(f.Alerts, func(a, b alert) int { return strings.Compare(a.Level, b.Level) })
	slices.SortFunc(f.Rows, func(a, b edgeRow) int {
		if c := strings.Compare(a.School, b.School); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return f, schools, nil
}

func gapAlert(g archive.Gap, s policy.School) alert {
	n := g.Last - g.First + 1
	return alert{Level: "error", Link: "/etablissements/" + s.UAI,
		Text: T("alert.gap", s.Name, T("stream."+g.Stream), formatInt(n), formatInt(g.First), formatInt(g.Last))}
}

// chart computes the blocked-requests chart of the schools shown.
func (h *Handler) chart(rq *request, schools []policy.School) (*chartView, string, error) {
	if h.archive == nil {
		return nil, T("dashboard.chart.noarchive"), nil
	}
	var uais []string
	for _, s := range schools {
		if rq.id.CanSeeSchool(s.UAI) {
			uais = append(uais, s.UAI)
		}
	}
	slices.Sort(uais)
	a, err := h.blockedActivity(rq.r.Context(), uais, rq.now())
	if err != nil {
		return nil, "", err
	}
	rs, _, _ := h.publishedRules(rq.r.Context())
	label := func(id string) string {
		if rs != nil {
			if c, ok := rs.Category(id); ok && c.NameFR != "" {
				return c.NameFR
			}
		}
		if id == "?" {
			return T("chart.uncategorized")
		}
		return id
	}
	c := &chartView{Total: a.Total, Truncated: a.Truncated, From: a.From, To: a.To, Crashes: a.Crashes}
	if a.Total == 0 {
		return c, "", nil
	}
	c.Rows = a.topCategories(10, label)
	c.Bars = barChart("chart-categories", T("dashboard.chart.categories.title", formatInt(a.Total)), c.Rows)
	c.Hours = hourChart("chart-hours", T("dashboard.chart.hours.title"), a.Hourly, a.From)
	return c, "", nil
}

func schoolName(schools []policy.School, uai string) string {
	for _, s := range schools {
		if s.UAI == uai {
			if s.Name != "" {
				return s.Name
			}
			break
		}
	}
	return uai
}
