// Package report computes the yearly joint review the convention between
// the académie and the départements asks for (articles 4-4 and 4-6): for
// one school or one département and one calendar year, the policy versions
// published and when each edge applied them, the edges' availability and
// outages, blocked requests by category month by month, how many
// requisition exports were made (counts only), refused bundles and journal
// gaps, and the software in service.
//
// Every figure comes from what the control plane keeps: the versions, the
// edges and their history (store.History), the audit log (exports,
// journal gaps) and the journal archive's navigation records, counted,
// never listed. Nothing in a report names a pupil, a client address or a
// visited site. A figure whose source started after the year began says
// from when it covers (Coverage), rather than reading as a full year.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/store"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/rules/policy"
)

// paris is the académie's time: months and days are Paris ones.
var paris = mustParis()

func mustParis() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		// The tzdata embedded by the binary's main package (or the
		// system's) always has it; a fixed offset is a safe fallback.
		return time.FixedZone("CET", 3600)
	}
	return l
}

// Query names what a report covers: a year and one school (UAI) or one
// département (Departement, "67" or "067").
type Query struct {
	Year        int
	UAI         string
	Departement string
}

// Prefix is the UAI prefix of the schools covered: the UAI itself, or the
// département's three-digit prefix ("67" is "067").
func (q Query) Prefix() string {
	if q.UAI != "" {
		return q.UAI
	}
	d := q.Departement
	for len(d) < 3 {
		d = "0" + d
	}
	return d
}

// Target names the report in the audit log: "school/UAI" or
// "departement/067".
func (q Query) Target() string {
	if q.UAI != "" {
		return "school/" + q.UAI
	}
	return "departement/" + q.Prefix()
}

// Check validates a query read from a request, naming the faulty field.
func (q *Query) Check(now time.Time) error {
	q.UAI = strings.ToUpper(strings.TrimSpace(q.UAI))
	q.Departement = strings.TrimSpace(q.Departement)
	switch {
	case q.Year < 2000 || q.Year > now.In(paris).Year():
		return fmt.Errorf("year\u00a0: %d n’est pas une année que Vigie peut avoir enregistrée (2000 à %d)", q.Year, now.In(paris).Year())
	case (q.UAI == "") == (q.Departement == ""):
		return errors.New("uai, departement\u00a0: indiquez un établissement (uai) ou un département (departement), l'un ou l'autre")
	case q.UAI != "" && !policy.ValidUAI(q.UAI):
		return fmt.Errorf("uai\u00a0: %q n'est pas un UAI (7 chiffres et une lettre)", q.UAI)
	case q.Departement != "" && !validDepartement(q.Departement):
		return fmt.Errorf("departement\u00a0: %q n'est pas un numéro de département (2 ou 3 chiffres, par exemple 67)", q.Departement)
	}
	return nil
}

func validDepartement(d string) bool {
	if len(d) < 2 || len(d) > 3 {
		return false
	}
	_, err := strconv.Atoi(d)
	return err == nil && !strings.ContainsAny(d, "+-")
}

// Report is the yearly review of one school or département. Times are
// UTC in JSON; the renderer shows them in Paris time.
type Report struct {
	Year int `json:"year"`
	// UAI is set for a school's report, Departement (three digits) for a
	// département's.
	UAI         string `json:"uai,omitempty"`
	Departement string `json:"departement,omitempty"`
	// Title is the school's name, or the département's number.
	Title string `json:"title"`
	// From and To bound the year (Paris); Until is where the figures
	// stop: the end of the year, or the report's time in a running year.
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Until     time.Time `json:"until"`
	Generated time.Time `json:"generated"`
	Schools   []School  `json:"schools"`

	Versions     Versions     `json:"versions"`
	Availability Availability `json:"availability"`
	// Blocked is nil for a role that sees no traffic statistics (a
	// technicien sees no browsing data, not even counted).
	Blocked   *Blocked  `json:"blocked,omitempty"`
	Exports   Exports   `json:"exports"`
	Incidents Incidents `json:"incidents"`
	Software  Software  `json:"software"`
}

// School is one school covered.
type School struct {
	UAI     string `json:"uai"`
	Name    string `json:"name"`
	Commune string `json:"commune,omitempty"`
	Edges   int    `json:"edges"`
}

// Coverage says over which part of the year a figure is known: from the
// later of the year's start and the start of its source, to Until. Full is
// true when that is the whole period.
type Coverage struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Full bool      `json:"full"`
}

// Empty reports a figure not recorded at all in the period.
func (c Coverage) Empty() bool { return !c.From.Before(c.To) }

// Versions are the policy versions published in the year, and when each
// edge of the schools covered applied one.
type Versions struct {
	Published []Version `json:"published"`
	// Monthly counts the publications per month (January first).
	Monthly [12]int64 `json:"monthly"`
	// Applied are the edges' reports of a new version, oldest first.
	Applied  []Applied `json:"applied"`
	Coverage Coverage  `json:"coverage"`
	// InForce is the version each edge runs at the report's time.
	InForce []EdgeVersion `json:"in_force"`
}

// Version is one publication.
type Version struct {
	Serial     uint64    `json:"serial"`
	Created    time.Time `json:"created"`
	Comment    string    `json:"comment"`
	RollbackOf uint64    `json:"rollback_of,omitempty"`
}

// Applied is an edge applying a version.
type Applied struct {
	Edge   string    `json:"edge"`
	UAI    string    `json:"uai"`
	Serial uint64    `json:"serial"`
	At     time.Time `json:"at"`
	// Delay is the time from the publication to the application.
	Delay time.Duration `json:"delay_ns,omitempty"`
}

// EdgeVersion is an edge and what it runs.
type EdgeVersion struct {
	Edge     string    `json:"edge"`
	UAI      string    `json:"uai"`
	Serial   uint64    `json:"serial"`
	Software string    `json:"software,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// Availability is the share of the covered time each edge was in
// contact with the control plane, and its outages.
type Availability struct {
	Coverage Coverage `json:"coverage"`
	// OfflineAfter is the silence that counts as an outage.
	OfflineAfter time.Duration   `json:"offline_after_ns"`
	Edges        []EdgeAvailable `json:"edges"`
	Outages      []Outage        `json:"outages"`
	// MonthlyMinutes is the outage time per month, in minutes, summed
	// over the edges.
	MonthlyMinutes [12]int64 `json:"monthly_minutes"`
	// Permille is the mean availability of the edges, in thousandths.
	Permille int64 `json:"permille"`
}

// EdgeAvailable is one edge's availability over the covered time.
type EdgeAvailable struct {
	Edge string `json:"edge"`
	UAI  string `json:"uai"`
	// Permille is the share of the covered time in contact, in
	// thousandths (999 is 99.9 %).
	Permille int64         `json:"permille"`
	Down     time.Duration `json:"down_ns"`
	Outages  int           `json:"outages"`
}

// Outage is a silence of an edge longer than OfflineAfter.
type Outage struct {
	Edge string    `json:"edge"`
	UAI  string    `json:"uai"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Ongoing is true when the edge was still silent at Until.
	Ongoing bool `json:"ongoing,omitempty"`
}

// Blocked counts the blocked navigation requests of the year by month and
// category, from the journal archive.
type Blocked struct {
	// Coverage is the part of the year the archive still holds
	// (navigation is purged after its retention).
	Coverage  Coverage      `json:"coverage"`
	Retention time.Duration `json:"retention_ns"`
	// Monthly and Allowed count blocked and allowed requests per month.
	Monthly [12]int64 `json:"monthly"`
	Allowed [12]int64 `json:"allowed"`
	Total   int64     `json:"total"`
	// Categories are the categories by decreasing total, each with its
	// months; the smallest beyond MaxCategories are summed as one row
	// with an empty ID.
	Categories []CategoryMonths `json:"categories"`
	// Truncated says the count stopped at MaxScanned records: the
	// figures are a minimum.
	Truncated bool `json:"truncated,omitempty"`
	// Unavailable says there is no archive to count from.
	Unavailable bool `json:"unavailable,omitempty"`
}

// CategoryMonths is one category's blocked requests per month.
type CategoryMonths struct {
	ID      string    `json:"id"`
	Label   string    `json:"label"`
	Monthly [12]int64 `json:"monthly"`
	Total   int64     `json:"total"`
}

// Exports counts the requisition exports of the schools covered, from the
// audit log: how many, never what.
type Exports struct {
	// Monthly counts the completed exports per month.
	Monthly     [12]int64 `json:"monthly"`
	Completed   int64     `json:"completed"`
	Interrupted int64     `json:"interrupted"`
	Denied      int64     `json:"denied"`
	// Transmitted and Downloaded count the exports transmitted to the
	// AQSSI inside Vigie and the AQSSI's downloads.
	Transmitted int64 `json:"transmitted"`
	Downloaded  int64 `json:"downloaded"`
	// BySchool counts completed exports per school (département reports).
	BySchool []SchoolCount `json:"by_school,omitempty"`
}

// SchoolCount is a count for one school.
type SchoolCount struct {
	UAI string `json:"uai"`
	N   int64  `json:"n"`
}

// Incidents are the refused bundles and the journal gaps.
type Incidents struct {
	Refused         []Refused `json:"refused"`
	RefusedCoverage Coverage  `json:"refused_coverage"`
	// Gaps are the journal gaps found in the year (audit log), with the
	// number of records missing.
	Gaps    []Gap `json:"gaps"`
	Missing int64 `json:"missing"`
	// OpenGaps are gaps still open at the report's time (the archive's).
	OpenGaps int `json:"open_gaps"`
}

// Refused is an edge reporting an error: a refused bundle, an
// unreachable section, its built-in strict policy.
type Refused struct {
	Edge   string    `json:"edge"`
	UAI    string    `json:"uai"`
	At     time.Time `json:"at"`
	Serial uint64    `json:"serial"`
	Error  string    `json:"error"`
}

// Gap is a run of journal records an edge never delivered.
type Gap struct {
	UAI    string    `json:"uai"`
	Stream string    `json:"stream"`
	At     time.Time `json:"at"`
	First  uint64    `json:"first"`
	Last   uint64    `json:"last"`
}

// Software is what the edges run, and the changes in the year.
type Software struct {
	// InService counts the edges per software version at the report's
	// time, most used first.
	InService []SoftwareCount  `json:"in_service"`
	Changes   []SoftwareChange `json:"changes"`
	Coverage  Coverage         `json:"coverage"`
}

// SoftwareCount is a software version and the edges running it.
type SoftwareCount struct {
	Version string   `json:"version"`
	Edges   []string `json:"edges"`
}

// SoftwareChange is an edge reporting a new software version.
type SoftwareChange struct {
	Edge    string    `json:"edge"`
	UAI     string    `json:"uai"`
	At      time.Time `json:"at"`
	Version string    `json:"version"`
}

// Sources are what a report is computed from.
type Sources struct {
	Store store.Reader
	// History is the edges' history (nil: none kept, the sections that
	// need it say so).
	History store.History
	// Archive is the journal archive (nil: no blocked counts, no open gaps).
	Archive archive.Store
	// NavigationRetention is how long the archive keeps navigation.
	NavigationRetention time.Duration
	// OfflineAfter is the silence that makes an outage (70 s).
	OfflineAfter time.Duration
	// MaxScanned bounds the archive records one report reads.
	MaxScanned int64
}

// DefaultMaxScanned bounds the records one report reads from the archive
// (about a minute on SQLite at the dashboard's measured 5-15 µs a record);
// beyond it the blocked counts say they are a minimum.
const DefaultMaxScanned = 5_000_000

// MaxCategories is how many categories a report lists before summing
// the rest as one row.
const MaxCategories = 12

// Options say what the caller may see.
type Options struct {
	// Blocked includes the blocked-requests section.
	Blocked bool
}

// Build computes the report of q at now.
func Build(ctx context.Context, src Sources, q Query, now time.Time, opt Options) (*Report, error) {
	if src.OfflineAfter <= 0 {
		src.OfflineAfter = 70 * time.Second
	}
	if src.MaxScanned <= 0 {
		src.MaxScanned = DefaultMaxScanned
	}
	from := time.Date(q.Year, time.January, 1, 0, 0, 0, 0, paris)
	to := from.AddDate(1, 0, 0)
	until := to
	if now.Before(until) {
		until = now
	}
	rep := &Report{Year: q.Year, UAI: q.UAI, From: from.UTC(), To: to.UTC(), Until: until.UTC(), Generated: now.UTC(),
		Schools: []School{}}
	if q.UAI == "" {
		rep.Departement = q.Prefix()
	}
	d, err := src.Store.Draft(ctx)
	if err != nil {
		return nil, fmt.Errorf("report: draft: %w", err)
	}
	prefix := q.Prefix()
	for _, s := range d.Policy.Schools {
		if strings.HasPrefix(s.UAI, prefix) {
			rep.Schools = append(rep.Schools, School{UAI: s.UAI, Name: s.Name, Commune: s.Commune})
		}
	}
	slices.SortFunc(rep.Schools, func(a, b School) int { return strings.Compare(a.UAI, b.UAI) })
	switch {
	case q.UAI != "" && len(rep.Schools) == 1:
		rep.Title = rep.Schools[0].Name
	case q.UAI != "":
		rep.Title = q.UAI
	default:
		rep.Title = q.Departement
	}
	edges, err := edgesOf(ctx, src.Store, prefix)
	if err != nil {
		return nil, err
	}
	for i := range rep.Schools {
		for _, e := range edges {
			if e.UAI == rep.Schools[i].UAI {
				rep.Schools[i].Edges++
			}
		}
	}
	var events []store.EdgeEvent
	var since time.Time
	if src.History != nil {
		if since, err = src.History.HistoryStart(ctx); err != nil {
			return nil, err
		}
		if events, err = src.History.EdgeEvents(ctx, prefix, rep.From, rep.Until); err != nil {
			return nil, err
		}
	}
	histCov := coverage(rep.From, rep.Until, since, src.History != nil)
	published, err := versionsOf(ctx, src.Store, rep.From, rep.Until)
	if err != nil {
		return nil, err
	}
	rep.Versions = versionsSection(published, events, edges, histCov)
	rep.Availability = availability(edges, events, histCov, rep.Until, src.OfflineAfter)
	rep.Incidents.RefusedCoverage = histCov
	rep.Software.Coverage = histCov
	rep.Incidents.Refused = []Refused{}
	rep.Software.Changes = []SoftwareChange{}
	for _, e := range events {
		switch e.Kind {
		case store.EventRefused:
			rep.Incidents.Refused = append(rep.Incidents.Refused, Refused{Edge: e.Edge, UAI: e.UAI, At: e.At, Serial: e.Serial, Error: e.Detail})
		case store.EventSoftware:
			rep.Software.Changes = append(rep.Software.Changes, SoftwareChange{Edge: e.Edge, UAI: e.UAI, At: e.At, Version: e.Detail})
		}
	}
	rep.Software.InService = softwareInService(edges)
	if err := auditFigures(ctx, src.Store, rep, prefix); err != nil {
		return nil, err
	}
	if src.Archive != nil {
		for _, s := range rep.Schools {
			open, err := src.Archive.Gaps(ctx, s.UAI)
			if err != nil {
				return nil, fmt.Errorf("report: journal gaps of %s: %w", s.UAI, err)
			}
			rep.Incidents.OpenGaps += len(open)
		}
	}
	if opt.Blocked {
		labels := categoryLabels(ctx, src.Store)
		if rep.Blocked, err = blocked(ctx, src, rep, prefix, labels); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// coverage is [max(from, since), until]; without a source at all it is
// empty (From equal to To).
func coverage(from, until, since time.Time, kept bool) Coverage {
	if !kept || since.After(until) {
		return Coverage{From: until, To: until}
	}
	c := Coverage{From: from, To: until, Full: true}
	if since.After(from) {
		c.From, c.Full = since.UTC(), false
	}
	return c
}

func edgesOf(ctx context.Context, st store.Reader, prefix string) ([]store.Edge, error) {
	var out []store.Edge
	p := store.Page{Limit: store.MaxPage}
	for {
		es, err := st.Edges(ctx, "", p)
		if err != nil {
			return nil, fmt.Errorf("report: edges: %w", err)
		}
		for _, e := range es {
			if strings.HasPrefix(e.UAI, prefix) {
				out = append(out, e)
			}
		}
		if len(es) < p.Limit {
			return out, nil
		}
		p.After = es[len(es)-1].ID
	}
}

// versionsOf returns the versions published in [from, until), oldest
// first. Versions page newest first: the walk stops at the first one
// older than from.
func versionsOf(ctx context.Context, st store.Reader, from, until time.Time) ([]store.Version, error) {
	var out []store.Version
	p := store.Page{Limit: store.MaxPage}
	for {
		vs, err := st.Versions(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("report: versions: %w", err)
		}
		for _, v := range vs {
			if v.Created.Before(from) {
				slices.Reverse(out)
				return out, nil
			}
			if v.Created.Before(until) {
				out = append(out, v)
			}
		}
		if len(vs) < p.Limit {
			slices.Reverse(out)
			return out, nil
		}
		p.After = strconv.FormatUint(vs[len(vs)-1].Serial, 10)
	}
}

func month(t time.Time) int { return int(t.In(paris).Month()) - 1 }

func versionsSection(published []store.Version, events []store.EdgeEvent, edges []store.Edge, cov Coverage) Versions {
	v := Versions{Published: []Version{}, Applied: []Applied{}, InForce: []EdgeVersion{}, Coverage: cov}
	created := map[uint64]time.Time{}
	for _, p := range published {
		v.Published = append(v.Published, Version{Serial: p.Serial, Created: p.Created, Comment: p.Comment, RollbackOf: p.RollbackOf})
		v.Monthly[month(p.Created)]++
		created[p.Serial] = p.Created
	}
	// Replicas may each record the same application: keep the first.
	seen := map[string]bool{}
	for _, e := range events {
		if e.Kind != store.EventApplied || e.At.Before(cov.From) {
			continue
		}
		k := e.Edge + "\x00" + strconv.FormatUint(e.Serial, 10)
		if seen[k] {
			continue
		}
		seen[k] = true
		a := Applied{Edge: e.Edge, UAI: e.UAI, Serial: e.Serial, At: e.At}
		if c, ok := created[e.Serial]; ok && e.At.After(c) {
			a.Delay = e.At.Sub(c)
		}
		v.Applied = append(v.Applied, a)
	}
	for _, e := range edges {
		v.InForce = append(v.InForce, EdgeVersion{Edge: e.ID, UAI: e.UAI, Serial: e.AppliedSerial, Software: e.Software, LastSeen: e.LastSeen})
	}
	return v
}

// availability sums each edge's outages over the covered time: the
// recorded ones, and the silence still going on at until.
func availability(edges []store.Edge, events []store.EdgeEvent, cov Coverage, until time.Time, offlineAfter time.Duration) Availability {
	av := Availability{Coverage: cov, OfflineAfter: offlineAfter, Edges: []EdgeAvailable{}, Outages: []Outage{}}
	byEdge := map[string][]Outage{}
	for _, e := range events {
		if e.Kind == store.EventOutage {
			byEdge[e.Edge] = append(byEdge[e.Edge], Outage{Edge: e.Edge, UAI: e.UAI, From: e.At, To: e.Until})
		}
	}
	var sum, n int64
	for _, e := range edges {
		start := cov.From
		if e.CreatedAt.After(start) {
			start = e.CreatedAt
		}
		if !start.Before(cov.To) {
			continue
		}
		outs := byEdge[e.ID]
		if !e.LastSeen.IsZero() && until.Sub(e.LastSeen) > offlineAfter {
			outs = append(outs, Outage{Edge: e.ID, UAI: e.UAI, From: e.LastSeen, To: until, Ongoing: true})
		}
		var down time.Duration
		count := 0
		for _, o := range mergeOutages(outs) {
			o.From, o.To = maxTime(o.From, start), minTime(o.To, cov.To)
			if !o.From.Before(o.To) {
				continue
			}
			down += o.To.Sub(o.From)
			count++
			av.Outages = append(av.Outages, o)
			addMinutes(&av.MonthlyMinutes, o.From, o.To)
		}
		total := cov.To.Sub(start)
		pm := int64(1000)
		if e.LastSeen.IsZero() {
			// Never in contact: never available.
			pm, down = 0, total
		} else if total > 0 {
			pm = 1000 - int64((down*1000+total-1)/total)
		}
		av.Edges = append(av.Edges, EdgeAvailable{Edge: e.ID, UAI: e.UAI, Permille: pm, Down: down, Outages: count})
		sum += pm
		n++
	}
	if n > 0 {
		av.Permille = sum / n
	}
	slices.SortFunc(av.Outages, func(a, b Outage) int { return a.From.Compare(b.From) })
	return av
}

// mergeOutages joins overlapping outages (replicas may record the same
// silence), sorted by start.
func mergeOutages(outs []Outage) []Outage {
	slices.SortFunc(outs, func(a, b Outage) int { return a.From.Compare(b.From) })
	var out []Outage
	for _, o := range outs {
		if k := len(out) - 1; k >= 0 && !o.From.After(out[k].To) {
			if o.To.After(out[k].To) {
				out[k].To, out[k].Ongoing = o.To, o.Ongoing
			}
			continue
		}
		out = append(out, o)
	}
	return out
}

// addMinutes spreads [from, to) over the Paris months it touches.
func addMinutes(m *[12]int64, from, to time.Time) {
	for from.Before(to) {
		l := from.In(paris)
		next := time.Date(l.Year(), l.Month()+1, 1, 0, 0, 0, 0, paris)
		end := minTime(next, to)
		m[month(from)] += int64(end.Sub(from) / time.Minute)
		from = end
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func softwareInService(edges []store.Edge) []SoftwareCount {
	by := map[string][]string{}
	for _, e := range edges {
		v := e.Software
		if v == "" {
			v = "?"
		}
		by[v] = append(by[v], e.ID)
	}
	out := []SoftwareCount{}
	for v, ids := range by {
		slices.Sort(ids)
		out = append(out, SoftwareCount{Version: v, Edges: ids})
	}
	slices.SortFunc(out, func(a, b SoftwareCount) int {
		if len(a.Edges) != len(b.Edges) {
			return len(b.Edges) - len(a.Edges)
		}
		return strings.Compare(a.Version, b.Version)
	})
	return out
}

// auditFigures reads the year's audit entries: exports (counted) and
// journal gaps. The walk starts at the first entry of the year, found by
// bisection on the sequence (entries are appended in time order).
func auditFigures(ctx context.Context, st store.Reader, rep *Report, prefix string) error {
	rep.Incidents.Gaps = []Gap{}
	seq, err := firstAuditAt(ctx, st, rep.From)
	if err != nil {
		return err
	}
	bySchool := map[string]int64{}
	after := seq - 1
	if seq == 0 {
		after = 0
	}
	for {
		es, err := st.AuditEntries(ctx, after, 5000)
		if err != nil {
			return fmt.Errorf("report: audit: %w", err)
		}
		for _, e := range es {
			if !e.Time.Before(rep.Until) {
				return finishExports(rep, bySchool)
			}
			if e.Time.Before(rep.From) {
				continue
			}
			switch e.Action {
			case "export", "export.interrupted", "export.failed", "export.denied":
				uai, ok := strings.CutPrefix(e.Target, "school/")
				if !ok || !strings.HasPrefix(uai, prefix) {
					continue
				}
				switch e.Action {
				case "export":
					rep.Exports.Completed++
					rep.Exports.Monthly[month(e.Time)]++
					bySchool[uai]++
				case "export.denied":
					rep.Exports.Denied++
				default:
					rep.Exports.Interrupted++
				}
			case "requisition.transmit", "requisition.download":
				var m struct {
					UAI string `json:"uai"`
				}
				if json.Unmarshal(e.After, &m) != nil || !strings.HasPrefix(m.UAI, prefix) {
					continue
				}
				if e.Action == "requisition.transmit" {
					rep.Exports.Transmitted++
				} else {
					rep.Exports.Downloaded++
				}
			case "journal.gap":
				uai, stream, _ := strings.Cut(e.Target, "/")
				if !strings.HasPrefix(uai, prefix) {
					continue
				}
				var g struct {
					First, Last uint64
				}
				if json.Unmarshal(e.After, &g) != nil || g.Last < g.First {
					continue
				}
				rep.Incidents.Gaps = append(rep.Incidents.Gaps, Gap{UAI: uai, Stream: stream, At: e.Time, First: g.First, Last: g.Last})
				rep.Incidents.Missing += int64(g.Last - g.First + 1)
			}
		}
		if len(es) < 5000 {
			return finishExports(rep, bySchool)
		}
		after = es[len(es)-1].Seq
	}
}

func finishExports(rep *Report, bySchool map[string]int64) error {
	if rep.UAI != "" {
		return nil
	}
	for _, s := range rep.Schools {
		rep.Exports.BySchool = append(rep.Exports.BySchool, SchoolCount{UAI: s.UAI, N: bySchool[s.UAI]})
	}
	return nil
}

// firstAuditAt returns the sequence of the first entry at or after t (0
// when the log is empty, or one past the last entry when all are older).
func firstAuditAt(ctx context.Context, st store.Reader, t time.Time) (uint64, error) {
	before := func(seq uint64) (bool, bool, error) {
		e, err := st.AuditEntry(ctx, seq)
		if errors.Is(err, store.ErrNotFound) {
			return false, false, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("report: audit: %w", err)
		}
		return e.Time.Before(t), true, nil
	}
	// Find an entry at or after t (or the end of the log) by doubling,
	// then bisect between the last entry before t and it.
	lo, hi := uint64(0), uint64(1)
	for {
		old, ok, err := before(hi)
		if err != nil {
			return 0, err
		}
		if !ok || !old {
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		old, ok, err := before(mid)
		if err != nil {
			return 0, err
		}
		if ok && old {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

// categoryLabels are the French names of the version in force's
// categories.
func categoryLabels(ctx context.Context, st store.Reader) map[string]string {
	out := map[string]string{}
	v, err := st.LatestVersion(ctx)
	if err != nil {
		return out
	}
	var p struct {
		Categories []policy.Category `json:"categories"`
	}
	if json.Unmarshal(v.Policy, &p) != nil {
		return out
	}
	for _, c := range p.Categories {
		if c.NameFR != "" {
			out[c.ID] = c.NameFR
		}
	}
	return out
}

// blocked counts the navigation of the year per month, the blocked
// requests per category: the dashboard's figures over a year. Days the
// rollup counted (store.BlockedDay) come from the store, and so outlive the
// archive's purge; the other days are counted from the archive now.
func blocked(ctx context.Context, src Sources, rep *Report, prefix string, labels map[string]string) (*Blocked, error) {
	b := &Blocked{Retention: src.NavigationRetention, Categories: []CategoryMonths{}}
	if src.Archive == nil && src.History == nil {
		b.Unavailable = true
		b.Coverage = Coverage{From: rep.Until, To: rep.Until}
		return b, nil
	}
	// What the purge left: records older than the retention are gone.
	kept := rep.From
	if src.NavigationRetention > 0 {
		kept = rep.Generated.Add(-src.NavigationRetention)
	}
	if src.Archive == nil {
		kept = rep.Until
	}
	byCat := map[string]*CategoryMonths{}
	add := func(cat string, m int, n int64) {
		if cat == "" {
			cat = "?"
		}
		c := byCat[cat]
		if c == nil {
			c = &CategoryMonths{ID: cat, Label: labels[cat]}
			byCat[cat] = c
		}
		c.Monthly[m] += n
		c.Total += n
		b.Monthly[m] += n
		b.Total += n
	}
	done := map[string]bool{} // school + day counted by the rollup
	earliest := kept
	if src.History != nil {
		rows, err := src.History.BlockedDays(ctx, prefix, dayKey(rep.From), dayKey(rep.Until))
		if err != nil {
			return nil, err
		}
		for _, d := range rows {
			t, err := time.ParseInLocation(time.DateOnly, d.Day, paris)
			if err != nil {
				continue
			}
			if d.Category == "" {
				done[d.UAI+" "+d.Day] = true
				b.Allowed[month(t)] += d.Allowed
				if t.Before(earliest) {
					earliest = t
				}
				continue
			}
			add(d.Category, month(t), d.Blocked)
		}
	}
	b.Coverage = coverage(rep.From, rep.Until, earliest, true)
	budget := src.MaxScanned
	if src.Archive != nil {
		for _, s := range rep.Schools {
			for _, r := range uncounted(maxTime(rep.From, kept), rep.Until, func(day string) bool { return done[s.UAI+" "+day] }) {
				days := map[string]*dayCount{}
				trunc, err := countNavigation(ctx, src.Archive, s.UAI, r[0], r[1], &budget, days)
				if err != nil {
					return nil, err
				}
				for day, c := range days {
					t, _ := time.ParseInLocation(time.DateOnly, day, paris)
					b.Allowed[month(t)] += c.allowed
					for cat, n := range c.blocked {
						add(cat, month(t), n)
					}
				}
				if trunc {
					b.Truncated = true
					break
				}
			}
		}
	}
	all := make([]CategoryMonths, 0, len(byCat))
	for _, c := range byCat {
		all = append(all, *c)
	}
	slices.SortFunc(all, func(x, y CategoryMonths) int {
		if x.Total != y.Total {
			if x.Total > y.Total {
				return -1
			}
			return 1
		}
		return strings.Compare(x.ID, y.ID)
	})
	if len(all) > MaxCategories {
		rest := CategoryMonths{}
		for _, c := range all[MaxCategories:] {
			for i := range rest.Monthly {
				rest.Monthly[i] += c.Monthly[i]
			}
			rest.Total += c.Total
		}
		all = append(all[:MaxCategories], rest)
	}
	b.Categories = all
	return b, nil
}

// uncounted returns the runs of whole or partial Paris days in [from, to)
// that counted does not hold, as [start, end) pairs.
func uncounted(from, to time.Time, counted func(day string) bool) [][2]time.Time {
	var out [][2]time.Time
	for d := from; d.Before(to); {
		next := dayStart(d).AddDate(0, 0, 1)
		end := minTime(next, to)
		if !counted(dayKey(d)) {
			if k := len(out) - 1; k >= 0 && out[k][1].Equal(d) {
				out[k][1] = end
			} else {
				out = append(out, [2]time.Time{d, end})
			}
		}
		d = end
	}
	return out
}

// dayKey is t's Paris day, "2026-03-02".
func dayKey(t time.Time) string { return t.In(paris).Format(time.DateOnly) }

// dayStart is the start of t's Paris day.
func dayStart(t time.Time) time.Time {
	l := t.In(paris)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, paris)
}

var errStop = errors.New("report: stop")

// dayCount is one school's navigation of one day.
type dayCount struct {
	blocked map[string]int64
	allowed int64
}

// countNavigation counts the navigation records of school uai in [from,
// to) per Paris day into days, reading at most *budget records (it says
// when the budget ran out: the counts are then a minimum). Crash and loss
// markers are not requests.
func countNavigation(ctx context.Context, arch archive.Store, uai string, from, to time.Time, budget *int64, days map[string]*dayCount) (bool, error) {
	var rec journal.Record
	truncated := false
	q := archive.Query{UAI: uai, From: from, To: to, Streams: []journal.Stream{journal.Navigation}}
	err := arch.Scan(ctx, q, func(_ archive.Chain, st *archive.Stored) error {
		if *budget <= 0 {
			truncated = true
			return errStop
		}
		*budget--
		if journal.DecodeRecord(st.Payload, &rec) != nil {
			// Verified on ingest; a record that no longer decodes is
			// the audit's business, not a count.
			return nil
		}
		if _, _, crash := rec.CrashInterval(); crash || rec.Lost > 0 {
			return nil
		}
		if rec.Time.Before(from) || !rec.Time.Before(to) {
			return nil
		}
		k := dayKey(rec.Time)
		c := days[k]
		if c == nil {
			c = &dayCount{blocked: map[string]int64{}}
			days[k] = c
		}
		if rec.Verdict != "block" {
			c.allowed++
			return nil
		}
		c.blocked[rec.Category]++
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	if err != nil {
		return truncated, fmt.Errorf("report: archive of %s: %w", uai, err)
	}
	return truncated, nil
}
