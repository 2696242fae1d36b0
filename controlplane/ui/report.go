package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/report"
	"vigie/rules/catlabel"
	"vigie/rules/policy"
)

// The yearly joint review (convention, articles 4-4 and 4-6): a form to
// choose the year and the school or département, and the report itself,
// computed by the API (GET /api/v1/reports/yearly, audited) and drawn here
// with the dashboard's SVG charts, each followed by its table. The same
// body renders as a page of the interface (printed without the menu) and,
// for "vigie admin report --out", as a document that stands alone
// (RenderReport).

// reportPage is the Revue annuelle page.
type reportPage struct {
	Form           reportForm
	Years          []int
	Schools        []policy.School
	Departements   []string
	CanDepartement bool
	Report         *reportView
}

type reportForm struct {
	Annee, UAI, Departement string
}

func (h *Handler) reportPage(rq *request) error {
	now := rq.now().In(paris)
	v := reportPage{Form: reportForm{Annee: rq.query("annee"), UAI: rq.query("uai"), Departement: rq.query("departement")},
		CanDepartement: !rq.is(auth.Chef)}
	for y := now.Year(); y >= now.Year()-4; y-- {
		v.Years = append(v.Years, y)
	}
	var schools []policy.School
	if rq.is(auth.AQSSI) {
		// The AQSSI reads no IP plan (no schools route): the names
		// and UAIs of the draft are enough to choose.
		d, err := h.st.Draft(rq.r.Context())
		if err != nil {
			return err
		}
		schools = d.Policy.Schools
	} else {
		var err error
		if schools, err = allSchools(rq); err != nil {
			return err
		}
	}
	slices.SortFunc(schools, func(a, b policy.School) int { return strings.Compare(a.UAI, b.UAI) })
	seen := map[string]bool{}
	for _, s := range schools {
		if !rq.id.CanSeeSchool(s.UAI) {
			continue
		}
		v.Schools = append(v.Schools, s)
		if d := s.UAI[:min(3, len(s.UAI))]; !seen[d] {
			seen[d] = true
			v.Departements = append(v.Departements, d)
		}
	}
	slices.Sort(v.Departements)
	if rq.is(auth.Chef) {
		v.Form.UAI, v.Form.Departement = rq.id.UAI, ""
	}
	if v.Form.Annee == "" {
		v.Form.Annee = strconv.Itoa(now.Year())
		return rq.render(200, "report", "report.title", v)
	}
	q := url.Values{"year": {v.Form.Annee}}
	if v.Form.UAI != "" {
		q.Set("uai", v.Form.UAI)
	} else {
		q.Set("departement", v.Form.Departement)
	}
	var rep report.Report
	if err := rq.api().Call(rq.ctx(), "GET", report.Path+"?"+q.Encode(), nil, &rep); err != nil {
		return err
	}
	v.Report = newReportView(&rep)
	return rq.render(200, "report", "report.title", v)
}

// reportView is a report ready for the templates.
type reportView struct {
	R       *report.Report
	Heading string
	// Months are the rows of the month-by-month tables.
	Months []reportMonth
	// Charts, each followed by its table in the page.
	VersionsChart, OutagesChart, ExportsChart template.HTML
	BlockedChart, CategoriesChart             template.HTML

	Categories   []reportCategory
	Availability string
	Edges        []reportEdge
	Outages      []reportOutage
	Applied      []reportApplied
}

type reportMonth struct {
	Label                                         string
	Published, DownMinutes, Blocked, Allowed, Exp int64
}

type reportCategory struct {
	Label   string
	Monthly [12]int64
	Total   int64
}

type reportEdge struct {
	Edge, School, Availability, Down string
	Outages                          int
}

type reportOutage struct {
	Edge, School, Duration string
	From, To               time.Time
	Ongoing                bool
}

type reportApplied struct {
	Edge, School, Delay string
	Serial              uint64
	At                  time.Time
}

func newReportView(r *report.Report) *reportView {
	v := &reportView{R: r}
	if r.UAI != "" {
		v.Heading = T("report.heading.school", r.Title, r.UAI)
	} else {
		v.Heading = T("report.heading.departement", r.Departement)
	}
	school := func(uai string) string {
		for _, s := range r.Schools {
			if s.UAI == uai && s.Name != "" {
				return s.Name
			}
		}
		return uai
	}
	var blocked, allowed [12]int64
	if r.Blocked != nil {
		blocked, allowed = r.Blocked.Monthly, r.Blocked.Allowed
	}
	for i := range 12 {
		v.Months = append(v.Months, reportMonth{Label: monthName(i), Published: r.Versions.Monthly[i],
			DownMinutes: r.Availability.MonthlyMinutes[i], Blocked: blocked[i], Allowed: allowed[i], Exp: r.Exports.Monthly[i]})
	}
	v.VersionsChart = monthChart("rapport-versions", T("report.versions.chart"), r.Versions.Monthly, "report.chart.versions.tip")
	v.OutagesChart = monthChart("rapport-interruptions", T("report.availability.chart"), r.Availability.MonthlyMinutes, "report.chart.minutes.tip")
	v.ExportsChart = monthChart("rapport-extractions", T("report.exports.chart"), r.Exports.Monthly, "report.chart.exports.tip")
	if b := r.Blocked; b != nil && b.Total > 0 {
		v.BlockedChart = monthChart("rapport-bloquees", T("report.blocked.chart"), b.Monthly, "report.chart.blocked.tip")
		var bars []categoryCount
		for _, c := range b.Categories {
			label := c.Label
			switch {
			case c.ID == "":
				label = T("chart.others")
			case c.ID == "?":
				label = T("chart.uncategorized")
			case label == "":
				label = typo(catlabel.Name(c.ID, ""))
			default:
				label = typo(label)
			}
			bars = append(bars, categoryCount{ID: c.ID, Label: label, N: c.Total})
			v.Categories = append(v.Categories, reportCategory{Label: label, Monthly: c.Monthly, Total: c.Total})
		}
		v.CategoriesChart = barChart("rapport-categories", T("report.blocked.categories", formatInt(b.Total)), bars)
	}
	v.Availability = permille(r.Availability.Permille)
	for _, e := range r.Availability.Edges {
		v.Edges = append(v.Edges, reportEdge{Edge: e.Edge, School: school(e.UAI), Availability: permille(e.Permille),
			Down: durationText(e.Down), Outages: e.Outages})
	}
	for _, o := range r.Availability.Outages {
		v.Outages = append(v.Outages, reportOutage{Edge: o.Edge, School: school(o.UAI), From: o.From, To: o.To,
			Duration: durationText(o.To.Sub(o.From)), Ongoing: o.Ongoing})
	}
	for _, a := range r.Versions.Applied {
		d := ""
		if a.Delay > 0 {
			d = durationText(a.Delay)
		}
		v.Applied = append(v.Applied, reportApplied{Edge: a.Edge, School: school(a.UAI), Serial: a.Serial, At: a.At, Delay: d})
	}
	return v
}

// monthChart draws twelve columns, January to December.
func monthChart(id, title string, vals [12]int64, tipKey string) template.HTML {
	return columnChart(id, title, vals[:],
		func(i int, v int64) string { return T(tipKey, monthName(i), formatInt(v)) },
		func(i int) string { return T(fmt.Sprintf("report.month.short.%d", i+1)) })
}

func monthName(i int) string { return T(fmt.Sprintf("report.month.%d", i+1)) }

// permille is "99,8 %".
func permille(pm int64) string {
	return strings.Replace(strconv.FormatFloat(float64(pm)/10, 'f', 1, 64), ".", ",", 1) + "\u00a0%"
}

// durationText is "2 j 4 h", "3 h 12 min", "45 min", or "70 s" for a
// short span that is not whole minutes.
func durationText(d time.Duration) string {
	sec := int64(d / time.Second)
	m := sec / 60
	switch {
	case d < 5*time.Minute && sec%60 != 0:
		return T("report.duration.sec", sec)
	case m < 60:
		return T("report.duration.min", m)
	case m < 24*60 && m%60 == 0:
		return T("report.duration.hoursonly", m/60)
	case m < 24*60:
		return T("report.duration.hours", m/60, m%60)
	}
	if (m/60)%24 == 0 {
		return T("report.duration.daysonly", m/(24*60))
	}
	return T("report.duration.days", m/(24*60), (m/60)%24)
}

// reportDocument is what the stand-alone document template receives.
type reportDocument struct {
	Title string
	CSS   template.CSS
	V     *reportView
}

// RenderReport writes r as one HTML document that stands alone: its
// style inline, its charts inline SVG, nothing fetched. "vigie admin
// report --out" writes it; it prints on A4 like the page.
func RenderReport(w io.Writer, r *report.Report) error {
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/parts.html", "templates/parts_*.html")
	if err != nil {
		return fmt.Errorf("ui: report templates: %w", err)
	}
	css, err := staticFS.ReadFile("static/report.css")
	if err != nil {
		return fmt.Errorf("ui: report style: %w", err)
	}
	v := newReportView(r)
	var buf bytes.Buffer
	doc := reportDocument{Title: T("report.document.title", r.Year, v.Heading), CSS: template.CSS(css), V: v}
	if err := t.ExecuteTemplate(&buf, "report-document", doc); err != nil {
		return fmt.Errorf("ui: render report: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}
