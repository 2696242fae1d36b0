package report

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"vigie/controlplane/store"
	"vigie/journal/archive"
)

// Rollup counts, once a day is over and settled, each school's navigation
// of that day, the blocked requests per category (store.BlockedDay). The
// archive purges navigation after its retention (six months by default);
// the counts stay, so that a yearly review made in January still has the
// whole year. It never keeps a host, a URL or a client: counts only.
type Rollup struct {
	Store   store.Reader
	History store.History
	Archive archive.Store
	// Retention is the archive's navigation retention: older days are
	// gone (or going) and cannot be counted whole.
	Retention time.Duration
	// Settle is how long after its end a day is counted (2 days): an edge
	// that was offline delivers its journal late, and records delivered
	// after the count are not in it.
	Settle time.Duration
	// MaxScanned bounds the records read for one school's day; a day
	// beyond it is not stored (the report counts it from the archive).
	MaxScanned int64
	// MaxDays bounds the school-days one run counts (400): the first run
	// after an upgrade finds every day the archive holds uncounted, and
	// spreads them over a few days of runs instead of one long one.
	MaxDays int
	// Every is the time between two runs (1 h); the first waits Delay
	// (1 min), out of the way of a control plane starting.
	Every, Delay time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

func (r *Rollup) defaults() {
	if r.Settle <= 0 {
		r.Settle = 48 * time.Hour
	}
	if r.MaxScanned <= 0 {
		r.MaxScanned = DefaultMaxScanned
	}
	if r.MaxDays <= 0 {
		r.MaxDays = 400
	}
	if r.Every <= 0 {
		r.Every = time.Hour
	}
	if r.Delay <= 0 {
		r.Delay = time.Minute
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
}

// Run counts the days due after r.Delay, then every r.Every, until ctx
// ends. Without a history store or an archive there is nothing to do.
func (r *Rollup) Run(ctx context.Context) {
	if r == nil || r.History == nil || r.Archive == nil {
		return
	}
	r.defaults()
	select {
	case <-ctx.Done():
		return
	case <-time.After(r.Delay):
	}
	tick := time.NewTicker(r.Every)
	defer tick.Stop()
	for {
		if n, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.Log.Error("report: counting blocked requests per day", "stored", n, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Once counts the school-days not counted yet, from the first day the
// archive still holds whole to the last settled one, at most r.MaxDays of
// them, and says how many it stored.
func (r *Rollup) Once(ctx context.Context) (int, error) {
	r.defaults()
	now := r.Now()
	first := dayStart(now)
	if r.Retention > 0 {
		first = dayStart(now.Add(-r.Retention)).AddDate(0, 0, 1)
	}
	last := dayStart(now.Add(-r.Settle)) // days before it are settled
	if !first.Before(last) {
		return 0, nil
	}
	d, err := r.Store.Draft(ctx)
	if err != nil {
		return 0, err
	}
	rows, err := r.History.BlockedDays(ctx, "", dayKey(first), dayKey(last))
	if err != nil {
		return 0, err
	}
	done := map[string]bool{}
	for _, row := range rows {
		if row.Category == "" {
			done[row.UAI+" "+row.Day] = true
		}
	}
	n := 0
	// Oldest days first, every school's: they are the next to be purged.
	for day := first; day.Before(last); day = day.AddDate(0, 0, 1) {
		key := dayKey(day)
		for _, s := range d.Policy.Schools {
			if done[s.UAI+" "+key] {
				continue
			}
			if n >= r.MaxDays {
				return n, nil
			}
			if err := ctx.Err(); err != nil {
				return n, err
			}
			budget := r.MaxScanned
			days := map[string]*dayCount{}
			trunc, err := countNavigation(ctx, r.Archive, s.UAI, day, day.AddDate(0, 0, 1), &budget, days)
			if err != nil {
				return n, err
			}
			if trunc {
				r.Log.Warn("report: a school's day has more records than one count reads; left to the reports", "uai", s.UAI, "day", key)
				continue
			}
			if err := r.History.PutBlockedDays(ctx, dayRows(s.UAI, key, days[key])); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// dayRows are the rows of one school's day: one per category ("?" for
// the uncategorized), then the totals (empty category), last, since they
// mark the day as counted.
func dayRows(uai, day string, c *dayCount) []store.BlockedDay {
	total := store.BlockedDay{UAI: uai, Day: day}
	var out []store.BlockedDay
	if c != nil {
		total.Allowed = c.allowed
		merged := map[string]int64{}
		for cat, n := range c.blocked {
			if cat == "" {
				cat = "?"
			}
			merged[cat] += n
			total.Blocked += n
		}
		for _, cat := range slices.Sorted(maps.Keys(merged)) {
			out = append(out, store.BlockedDay{UAI: uai, Day: day, Category: cat, Blocked: merged[cat]})
		}
	}
	return append(out, total)
}
