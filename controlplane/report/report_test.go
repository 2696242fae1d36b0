package report

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/rules/policy"
)

const (
	monnet  = "0671234X"
	pasteur = "0672222B"
	hugo    = "0680001A"
)

func at(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, paris) }

// fixture is a store and an archive holding a year of three schools:
// versions, edges with their history, audit entries of exports and gaps,
// and navigation records of Jean Monnet in two months.
type fixture struct {
	st   *store.SQLite
	arch *archive.SQLite
	// retention is the archive's navigation retention reports assume.
	retention time.Duration
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(filepath.Join(dir, "vigie.db"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arch, err := archive.OpenSQLite(filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arch.Close() })
	pol := policy.Policy{Version: 1, Academie: "Strasbourg", Schools: []policy.School{
		{UAI: monnet, Name: "Collège Jean Monnet"}, {UAI: pasteur, Name: "Collège Pasteur"}, {UAI: hugo, Name: "Collège Victor Hugo"}}}
	pubPolicy, _ := json.Marshal(map[string]any{"categories": []policy.Category{{ID: "adult", NameFR: "Adulte"}}})
	err = st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.PutDraft(ctx, store.Draft{Policy: pol, UpdatedAt: at(1, 1, 0)}, 0); err != nil {
			return err
		}
		for i, v := range []time.Time{time.Date(2025, 12, 20, 9, 0, 0, 0, paris), at(2, 3, 9), at(2, 20, 9), at(9, 1, 9)} {
			err := tx.InsertVersion(ctx, store.Version{Serial: uint64(i + 1), Hash: "h", Author: "rssi", Comment: "v", Created: v.UTC(),
				Manifest: []byte("m"), Policy: pubPolicy})
			if err != nil {
				return err
			}
		}
		for _, e := range []store.Edge{{ID: "monnet-1", UAI: monnet, CreatedAt: time.Date(2025, 9, 1, 0, 0, 0, 0, paris)},
			{ID: "pasteur-1", UAI: pasteur, CreatedAt: at(7, 1, 0)}, {ID: "hugo-1", UAI: hugo, CreatedAt: at(1, 1, 0)}} {
			e.TokenHash = "t-" + e.ID
			if err := tx.CreateEdge(ctx, e); err != nil {
				return err
			}
		}
		if err := tx.RecordEdgeStatus(ctx, map[string]store.EdgeStatus{
			"monnet-1":  {LastSeen: at(12, 1, 10).UTC(), AppliedSerial: 4, Software: "vigie 1.4.0"},
			"pasteur-1": {LastSeen: at(11, 30, 10).UTC(), AppliedSerial: 4, Software: "vigie 1.4.0"},
			"hugo-1":    {LastSeen: at(12, 1, 10).UTC(), AppliedSerial: 3, Software: "vigie 1.3.2"},
		}); err != nil {
			return err
		}
		for _, e := range []audit.Entry{
			{Time: time.Date(2025, 12, 30, 9, 0, 0, 0, paris), Action: "export", Target: "school/" + monnet},
			{Time: at(3, 4, 9), Action: "export", Target: "school/" + monnet},
			{Time: at(3, 5, 9), Action: "export.denied", Target: "school/" + monnet},
			{Time: at(5, 4, 9), Action: "export", Target: "school/" + pasteur},
			{Time: at(5, 5, 9), Action: "export", Target: "school/" + hugo},
			{Time: at(5, 6, 9), Action: "requisition.transmit", Target: "requisition/abc", After: json.RawMessage(`{"uai":"` + monnet + `"}`)},
			{Time: at(6, 1, 9), Action: "journal.gap", Target: monnet + "/navigation", After: json.RawMessage(`{"chain":"c","first":10,"last":19}`)},
			{Time: at(12, 2, 9), Action: "export", Target: "school/" + monnet},
		} {
			e.Actor = "x"
			if err := tx.AppendAudit(ctx, &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.AddEdgeEvents(ctx, []store.EdgeEvent{
		{Edge: "monnet-1", Kind: store.EventOutage, At: at(1, 31, 22).UTC(), Until: at(2, 1, 2).UTC()},
		{Edge: "monnet-1", Kind: store.EventApplied, At: at(2, 3, 10).UTC(), Serial: 2},
		{Edge: "monnet-1", Kind: store.EventApplied, At: at(2, 3, 11).UTC(), Serial: 2},
		{Edge: "monnet-1", Kind: store.EventRefused, At: at(2, 20, 10).UTC(), Serial: 2, Detail: "signature invalide"},
		{Edge: "hugo-1", Kind: store.EventOutage, At: at(3, 1, 0).UTC(), Until: at(3, 2, 0).UTC()},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Navigation of Jean Monnet: blocked and allowed in March and May.
	var id journal.ChainID
	copy(id[:], "monnet-navig")
	c, _, err := arch.Chain(ctx, archive.ChainKey{UAI: monnet, Stream: journal.Navigation, ID: id}, true)
	if err != nil {
		t.Fatal(err)
	}
	g := journaltest.New(1, monnet, at(3, 1, 0))
	prev := journal.Genesis(monnet, journal.Navigation, id)
	var recs []archive.Stored
	for i, spec := range []struct {
		t        time.Time
		verdict  string
		category string
	}{
		{at(3, 2, 10), "block", "adult"}, {at(3, 3, 10), "block", "adult"}, {at(3, 3, 11), "allow", ""},
		{at(5, 2, 10), "block", "games"}, {at(5, 3, 10), "block", ""}, {at(5, 3, 11), "allow", ""},
	} {
		r := g.Next(journal.Navigation)
		r.Time, r.Verdict, r.Category = spec.t, spec.verdict, spec.category
		journal.Canonicalize(&r)
		p := journal.AppendRecord(nil, &r)
		seq := uint64(i + 1)
		link := journal.Link(prev, seq, p)
		recs = append(recs, archive.Stored{Seq: seq, Time: r.Time, Client: r.Client.Addr(), Host: r.Host, Link: link, Payload: p})
		prev = link
	}
	if _, err := arch.Put(ctx, c, recs, archive.Gap{First: 1, Last: uint64(len(recs))}); err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, arch: arch, retention: 365 * 24 * time.Hour}
}

func (f *fixture) build(t *testing.T, q Query, now time.Time, since time.Time, blocked bool) *Report {
	t.Helper()
	src := Sources{Store: f.st, History: startAt{f.st, since}, Archive: f.arch, NavigationRetention: f.retention}
	r, err := Build(context.Background(), src, q, now, Options{Blocked: blocked})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startAt is the store's history with another start (the migration's is
// the test's own time).
type startAt struct {
	store.History
	at time.Time
}

func (s startAt) HistoryStart(context.Context) (time.Time, error) { return s.at, nil }

func TestBuildSchool(t *testing.T) {
	f := newFixture(t)
	now := at(12, 7, 10)
	r := f.build(t, Query{Year: 2026, UAI: monnet}, now, at(1, 15, 0), true)
	if r.Title != "Collège Jean Monnet" || len(r.Schools) != 1 || r.Schools[0].Edges != 1 || !r.Until.Equal(now) {
		t.Fatalf("head: %+v", r)
	}
	// Versions: three published in 2026 (not December 2025's), applied
	// once (the duplicate a second replica recorded is dropped).
	if len(r.Versions.Published) != 3 || r.Versions.Published[0].Serial != 2 || r.Versions.Monthly[1] != 2 || r.Versions.Monthly[8] != 1 {
		t.Errorf("published: %+v monthly %v", r.Versions.Published, r.Versions.Monthly)
	}
	if len(r.Versions.Applied) != 1 || r.Versions.Applied[0].Delay != time.Hour {
		t.Errorf("applied: %+v", r.Versions.Applied)
	}
	if c := r.Versions.Coverage; c.Full || !c.From.Equal(at(1, 15, 0)) {
		t.Errorf("coverage %+v: the history started on 15 January", c)
	}
	// Availability: the January-February outage (4 h, split over the two
	// months) and the silence since 1 December, still going on.
	av := r.Availability
	if len(av.Outages) != 2 || !av.Outages[1].Ongoing || av.Outages[0].To.Sub(av.Outages[0].From) != 4*time.Hour {
		t.Fatalf("outages: %+v", av.Outages)
	}
	if av.MonthlyMinutes[0] != 120 || av.MonthlyMinutes[1] != 120 || av.MonthlyMinutes[11] != 6*24*60 {
		t.Errorf("minutes per month: %v", av.MonthlyMinutes)
	}
	covered := now.Sub(at(1, 15, 0))
	want := 1000 - int64(((4*time.Hour+6*24*time.Hour)*1000+covered-1)/covered)
	if len(av.Edges) != 1 || av.Edges[0].Permille != want || av.Edges[0].Outages != 2 {
		t.Errorf("edge availability %+v, want %d‰", av.Edges, want)
	}
	// Blocked requests by month and category, from the archive.
	b := r.Blocked
	if b == nil || b.Total != 4 || b.Monthly[2] != 2 || b.Monthly[4] != 2 || b.Allowed[2] != 1 || len(b.Categories) != 3 {
		t.Fatalf("blocked: %+v", b)
	}
	if b.Categories[0].ID != "adult" || b.Categories[0].Label != "Adulte" || b.Categories[0].Monthly[2] != 2 {
		t.Errorf("categories: %+v", b.Categories)
	}
	// Exports: counted in the year only, this school only.
	if e := r.Exports; e.Completed != 2 || e.Denied != 1 || e.Transmitted != 1 || e.Monthly[2] != 1 || e.Monthly[11] != 1 || e.BySchool != nil {
		t.Errorf("exports: %+v", e)
	}
	if i := r.Incidents; len(i.Refused) != 1 || len(i.Gaps) != 1 || i.Missing != 10 || i.OpenGaps != 0 {
		t.Errorf("incidents: %+v", i)
	}
	if s := r.Software.InService; len(s) != 1 || s[0].Version != "vigie 1.4.0" {
		t.Errorf("software: %+v", s)
	}
}

func TestBuildDepartement(t *testing.T) {
	f := newFixture(t)
	r := f.build(t, Query{Year: 2026, Departement: "67"}, at(12, 7, 10), time.Time{}, false)
	if r.Departement != "067" || len(r.Schools) != 2 || r.Blocked != nil {
		t.Fatalf("Bas-Rhin: %+v", r)
	}
	if e := r.Exports; e.Completed != 3 || len(e.BySchool) != 2 || e.BySchool[1].UAI != pasteur || e.BySchool[1].N != 1 {
		t.Errorf("exports per school: %+v", e)
	}
	// Pasteur's edge counts from its enrolment (July), not from January.
	for _, e := range r.Availability.Edges {
		if e.Edge == "hugo-1" {
			t.Error("a Haut-Rhin edge in the Bas-Rhin's report")
		}
	}
	if len(r.Availability.Edges) != 2 || !r.Availability.Coverage.Full {
		t.Errorf("availability: %+v", r.Availability)
	}
	if s := r.Software.InService; len(s) != 1 || len(s[0].Edges) != 2 {
		t.Errorf("software: %+v", s)
	}
}

// TestBuildCoverage: a year before the history began says it is not
// covered rather than showing a perfect availability.
func TestBuildCoverage(t *testing.T) {
	f := newFixture(t)
	r := f.build(t, Query{Year: 2025, UAI: monnet}, at(12, 7, 10), at(1, 15, 0), true)
	if !r.Availability.Coverage.Empty() || len(r.Availability.Edges) != 0 || !r.Versions.Coverage.Empty() {
		t.Errorf("2025 before the history: %+v / %+v", r.Availability, r.Versions.Coverage)
	}
	if r.Exports.Completed != 1 {
		t.Errorf("2025 exports: %+v (the audit log covers every year)", r.Exports)
	}
}

func TestQueryCheck(t *testing.T) {
	now := at(12, 7, 10)
	for _, tc := range []struct {
		q  Query
		ok bool
	}{
		{Query{Year: 2026, UAI: "0671234x"}, true},
		{Query{Year: 2026, Departement: "67"}, true},
		{Query{Year: 2026, Departement: "974"}, true},
		{Query{Year: 2027, UAI: monnet}, false},
		{Query{Year: 1999, UAI: monnet}, false},
		{Query{Year: 2026}, false},
		{Query{Year: 2026, UAI: monnet, Departement: "67"}, false},
		{Query{Year: 2026, UAI: "67"}, false},
		{Query{Year: 2026, Departement: "6%"}, false},
		{Query{Year: 2026, Departement: "+67"}, false},
	} {
		if err := tc.q.Check(now); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.q, err)
		}
	}
}

// TestRollupOutlivesThePurge: the days counted by the rollup keep the
// blocked requests once the archive has purged them, and a report made
// afterwards still shows them, with the period they cover.
func TestRollupOutlivesThePurge(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ru := &Rollup{Store: f.st, History: f.st, Archive: f.arch, Retention: 120 * 24 * time.Hour, Now: func() time.Time { return at(5, 10, 0) },
		MaxDays: 100}
	// 120 days back from 10 May (10 January) to the last settled day (7
	// May), for each of the three schools: 354 school-days, 100 a run.
	n, err := ru.Once(ctx)
	if err != nil || n != 100 {
		t.Fatalf("first run: %d school-days counted (%v), want the 100 a run allows", n, err)
	}
	ru.MaxDays = 1000
	if n, err = ru.Once(ctx); err != nil || n != 3*118-100 {
		t.Fatalf("second run: %d school-days counted (%v), want the 254 left", n, err)
	}
	if again, err := ru.Once(ctx); err != nil || again != 0 {
		t.Fatalf("a second run counted %d days again (%v)", again, err)
	}
	days, err := f.st.BlockedDays(ctx, monnet, "2026-03-01", "2026-06-01")
	if err != nil {
		t.Fatal(err)
	}
	var adult, unknown int64
	for _, d := range days {
		switch {
		case d.Day == "2026-03-03" && d.Category == "adult":
			adult = d.Blocked
		case d.Day == "2026-05-03" && d.Category == "?":
			unknown = d.Blocked
		case d.Day == "2026-03-03" && d.Category == "" && (d.Blocked != 1 || d.Allowed != 1):
			t.Errorf("3 March totals: %+v", d)
		}
	}
	if adult != 1 || unknown != 1 {
		t.Errorf("March adult %d, May uncategorized %d: %+v", adult, unknown, days)
	}
	// The archive purges navigation older than June; the report of
	// December still counts March and May, from the rollup.
	if _, err := f.arch.Purge(ctx, journal.Navigation, at(6, 1, 0), nil); err != nil {
		t.Fatal(err)
	}
	f.retention = 180 * 24 * time.Hour
	r := f.build(t, Query{Year: 2026, UAI: monnet}, at(12, 7, 10), time.Time{}, true)
	b := r.Blocked
	if b.Total != 4 || b.Monthly[2] != 2 || b.Monthly[4] != 2 || b.Allowed[2] != 1 {
		t.Errorf("blocked after the purge: %+v", b)
	}
	if b.Coverage.Full || !b.Coverage.From.Equal(at(1, 10, 0)) {
		t.Errorf("coverage %+v: from the first day counted, 10 January", b.Coverage)
	}
}
