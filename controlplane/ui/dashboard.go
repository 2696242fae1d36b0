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

func (v dashboardView) subject() string { return v.School }

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
	// Status is the chef's plain sentence on their school's filtering.
	Status *schoolStatus
}

// schoolStatus says, for a head of school, whether the school is
// filtered: a school without a working edge is not, and must not read as
// good news.
type schoolStatus struct {
	// Level is ok, warning or error.
	Level, Text, Help string
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
	// Claimed is the serial an edge in state "unknown" says it applied.
	Claimed uint64
	// State is ok, late, error, silent, never or unknown; StateLabel says it.
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
	// Period is the span shown, Periods the choices with their links.
	Period  string
	Periods []periodLink
	// Allowed counts the requests let through, Percent the blocked share.
	Allowed int64
	Percent string
	// Steps are the columns of the time chart, for its table.
	Steps []stepCount
	// Domains are the most blocked hosts (the RSSI's), DomainBars their
	// chart.
	Domains    []categoryCount
	DomainBars template.HTML
	// Path is where the period links point (the page's own path).
	Path string
	// Share draws the blocked share as a bar.
	Share template.HTML
}

type periodLink struct {
	Key, Label string
	Current    bool
}

type stepCount struct {
	Label string
	N     int64
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
		vs, err := rq.api().Versions(rq.ctx(), 10)
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
	if rq.id.Role == auth.Chef {
		v.Status = chefStatus(fleet, rq.now())
	}
	return rq.render(200, "dashboard", "dashboard.title", v)
}

// chefStatus is the sentence a chef reads first: is the school filtered?
func chefStatus(f fleetView, now time.Time) *schoolStatus {
	if f.Total == 0 {
		return &schoolStatus{Level: "error", Text: T("status.noedge"), Help: T("status.noedge.help")}
	}
	var last time.Time
	online := 0
	for _, r := range f.Rows {
		if r.LastSeen.After(last) {
			last = r.LastSeen
		}
		if r.State == "ok" || r.State == "late" {
			online++
		}
	}
	switch {
	case last.IsZero():
		return &schoolStatus{Level: "error", Text: T("status.never"), Help: T("status.noedge.help")}
	case online == 0:
		return &schoolStatus{Level: "error", Text: T("status.down", agoText(now, last)), Help: T("status.noedge.help")}
	}
	return &schoolStatus{Level: "ok", Text: T("status.ok", agoText(now, last))}
}

// head describes the version in force; its author and comment for the
// roles that read the history.
func (h *Handler) head(rq *request) versionHead {
	hd := h.pub.Head()
	v := versionHead{Serial: hd.Serial, Created: hd.Created}
	if hd.Serial > 0 && rq.is(history...) {
		if ver, err := rq.api().Version(rq.ctx(), hd.Serial); err == nil {
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
		if edges, err = rq.api().Edges(rq.ctx(), ""); err != nil {
			return f, nil, err
		}
	case auth.Chef:
		st, err := rq.api().SchoolStatus(rq.ctx(), rq.id.UAI)
		if err != nil {
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
			Claimed: claimedSerial(e), LastSeen: e.LastSeen, LastError: e.LastError, Software: e.Software}
		f.Total++
		if e.Online {
			f.Online++
		}
		if e.UpToDate {
			f.UpToDate++
		}
		link := "/etablissements/" + e.UAI
		// The state comes from the API, as "vigie admin edges" shows it.
		row.State = e.State
		switch row.State {
		case "never":
			f.Alerts = append(f.Alerts, alert{Level: "warning", Link: link, Text: T("alert.never", e.ID, row.School)})
		case "error":
			f.Alerts = append(f.Alerts, alert{Level: "error", Link: link, Text: T("alert.applyfailed", e.ID, row.School, shorten(e.LastError, 200))})
		case "silent":
			f.Alerts = append(f.Alerts, alert{Level: "error", Link: link, Text: T("alert.silent", e.ID, row.School, agoText(now, e.LastSeen))})
		case "unknown":
			f.Alerts = append(f.Alerts, alert{Level: "error", Link: link, Text: T("alert.unknownversion", e.ID, row.School, row.Claimed)})
		case "late":
			if now.Sub(hd.Created) > lateAfter {
				f.Alerts = append(f.Alerts, alert{Level: "warning", Link: link, Text: T("alert.late", e.ID, row.School, e.AppliedSerial, hd.Serial)})
			}
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
	p := periodOf(rq.query("periode"))
	a, err := h.periodActivity(rq.r.Context(), uais, rq.now(), p)
	if err != nil {
		return nil, "", err
	}
	rs, _, _ := h.publishedRules(rq.r.Context())
	label := func(id string) string {
		if rs != nil {
			if c, ok := rs.Category(id); ok {
				return catName(c)
			}
		}
		if id == "?" {
			return T("chart.uncategorized")
		}
		return id
	}
	c := &chartView{Total: a.Total, Truncated: a.Truncated, From: a.From, To: a.To, Crashes: a.Crashes, Period: p.Key, Allowed: a.Allowed,
		Percent: a.percent(), Path: rq.r.URL.Path, Share: shareBar(a.Total, a.Allowed)}
	for _, x := range periods {
		c.Periods = append(c.Periods, periodLink{Key: x.Key, Label: T("dashboard.period." + x.Key), Current: x.Key == p.Key})
	}
	if a.Total == 0 {
		return c, "", nil
	}
	c.Rows = a.topCategories(10, label)
	c.Bars = barChart("chart-categories", T("dashboard.chart.categories.title", formatInt(a.Total)), c.Rows)
	for i, n := range a.Buckets {
		start := a.From.Add(time.Duration(i) * p.Step).In(paris)
		if p.Step == time.Hour {
			c.Steps = append(c.Steps, stepCount{Label: T("chart.hour.label", start.Hour()), N: n})
		} else {
			c.Steps = append(c.Steps, stepCount{Label: a.From.In(paris).AddDate(0, 0, i).Format("02/01"), N: n})
		}
	}
	if p.Step == time.Hour {
		c.Hours = hourChart("chart-hours", T("dashboard.chart.hours.title"), a.Hourly, a.From)
	} else {
		c.Hours = dayChart("chart-hours", T("dashboard.chart.steps."+p.Key), a.Buckets, a.From)
	}
	if rq.is(auth.RSSI) {
		// Domains are browsing data: the RSSI's, not a chef's summary.
		c.Domains = a.topHosts(10)
		c.DomainBars = barChart("chart-domains", T("dashboard.top.domains.title", len(c.Domains)), c.Domains)
	}
	return c, "", nil
}

// schoolTitle names a school with its UAI, for a page's title.
func schoolTitle(name, uai string) string {
	if name == "" || name == uai {
		return uai
	}
	return T("title.school", name, uai)
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

// claimedSerial is the serial an edge says it applied: the claim the
// control plane does not know (ClaimedSerial) when there is one, else the
// applied serial, whose hash is then the unknown part.
func claimedSerial(e api.EdgeHealth) uint64 {
	if e.ClaimedSerial != 0 {
		return e.ClaimedSerial
	}
	return e.AppliedSerial
}
