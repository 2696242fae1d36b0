package ui

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
)

// activity is what the dashboard's charts show: requests of a period
// (24 hours, 7 or 30 days), allowed and blocked, the blocked ones by
// category, by hour or day, and by host (for the RSSI's top domains). It
// never keeps a URL or a client.
type activity struct {
	From, To   time.Time
	Period     period
	ByCategory map[string]int64
	// Hourly[i] counts the hour starting at From + i hours (24 hours).
	Hourly [24]int64
	// Buckets[i] counts the step starting at From + i steps.
	Buckets []int64
	// ByHost counts blocked requests per host, up to maxHosts hosts.
	ByHost map[string]int64
	// Total counts blocked requests, Allowed the others.
	Total   int64
	Allowed int64
	// Truncated says the scan stopped at maxScanned records: the figures
	// are a lower bound.
	Truncated bool
	// Crashes are the loss intervals edges declared after unclean stops
	// in the period: shown, never hidden behind a complete-looking chart.
	Crashes []crashNote
}

// crashNote is one declared loss interval of a school.
type crashNote struct {
	UAI, Text string
}

// period is a span the dashboard offers.
type period struct {
	Key  string
	Step time.Duration
	N    int
}

// periods are the dashboard's choices, the first the default.
var periods = []period{{"24h", time.Hour, 24}, {"7j", 24 * time.Hour, 7}, {"30j", 24 * time.Hour, 30}}

// periodOf reads a period's key, the default when unknown.
func periodOf(key string) period {
	for _, p := range periods {
		if p.Key == key {
			return p
		}
	}
	return periods[0]
}

// start is the first bucket's start: the current hour's or day's (Paris)
// start, N-1 steps back.
func (p period) start(now time.Time) time.Time {
	if p.Step == time.Hour {
		return now.Truncate(time.Hour).Add(-time.Duration(p.N-1) * time.Hour)
	}
	l := now.In(paris)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, paris)
	return day.AddDate(0, 0, -(p.N - 1))
}

// bucket is the index of t's step, -1 outside the period.
func (p period) bucket(from, t time.Time) int {
	if t.Before(from) {
		return -1
	}
	var i int
	if p.Step == time.Hour {
		i = int(t.Sub(from) / time.Hour)
	} else {
		// Days in Paris, which are not all 24 hours long.
		lf, lt := from.In(paris), t.In(paris)
		i = int(time.Date(lt.Year(), lt.Month(), lt.Day(), 12, 0, 0, 0, time.UTC).Sub(
			time.Date(lf.Year(), lf.Month(), lf.Day(), 12, 0, 0, 0, time.UTC)) / (24 * time.Hour))
	}
	if i >= p.N {
		return -1
	}
	return i
}

// maxHosts bounds the hosts counted for the top domains.
const maxHosts = 20000

// maxScanned bounds the records one computation reads. The archive is
// read record by record (about 5-15 µs each on SQLite, see
// BenchmarkBlockedActivity), so the bound keeps one computation to a few
// seconds; beyond it the chart says its figures are a minimum.
const maxScanned = 500_000

// activityTTL is how long a computed chart is shown before it is
// recomputed, in the background: a page never waits for a recomputation,
// only for the very first one.
const activityTTL = time.Minute

type activityCache struct {
	mu      sync.Mutex
	entries map[string]*activityEntry
}

type activityEntry struct {
	at      time.Time
	a       *activity
	running bool
}

var errStopScan = errors.New("stop")

// blockedActivity returns the blocked navigation records of schools over
// the 24 hours ending about now: the cached figures, refreshed in the
// background once older than activityTTL, or computed now the first time.
func (h *Handler) blockedActivity(ctx context.Context, uais []string, now time.Time) (*activity, error) {
	return h.periodActivity(ctx, uais, now, periods[0])
}

// periodActivity is blockedActivity over any period.
func (h *Handler) periodActivity(ctx context.Context, uais []string, now time.Time, p period) (*activity, error) {
	if h.archive == nil {
		return nil, nil
	}
	key := p.Key + ":" + strings.Join(uais, ",")
	c := &h.activity
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		if now.Sub(e.at) >= activityTTL && !e.running {
			e.running = true
			go func() {
				// Detached from the request that noticed the age: it
				// must finish even when that page has been sent.
				bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
				defer cancel()
				a, err := h.countPeriod(bg, uais, h.now(), p)
				c.mu.Lock()
				defer c.mu.Unlock()
				e.running = false
				if err != nil {
					h.log.Warn("ui: dashboard statistics not refreshed", "err", err)
					return
				}
				e.at, e.a = a.To, a
			}()
		}
		a := e.a
		c.mu.Unlock()
		return a, nil
	}
	c.mu.Unlock()
	a, err := h.countPeriod(ctx, uais, now, p)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) > 500 {
		c.entries = map[string]*activityEntry{}
	}
	c.entries[key] = &activityEntry{at: now, a: a}
	c.mu.Unlock()
	return a, nil
}

// countBlocked reads the archive: blocked navigation records of the last
// 24 hours by category and by hour.
func (h *Handler) countBlocked(ctx context.Context, uais []string, now time.Time) (*activity, error) {
	return h.countPeriod(ctx, uais, now, periods[0])
}

// countPeriod reads the archive's navigation records of a period: allowed
// and blocked, the blocked by category, step and host.
func (h *Handler) countPeriod(ctx context.Context, uais []string, now time.Time, p period) (*activity, error) {
	from := p.start(now)
	a := &activity{From: from, To: now, Period: p, ByCategory: map[string]int64{}, ByHost: map[string]int64{}, Buckets: make([]int64, p.N)}
	var scanned int64
	var rec journal.Record
	for _, uai := range uais {
		q := archive.Query{UAI: uai, From: from, To: now, Streams: []journal.Stream{journal.Navigation}}
		err := h.archive.Scan(ctx, q, func(_ archive.Chain, s *archive.Stored) error {
			scanned++
			if scanned > maxScanned {
				a.Truncated = true
				return errStopScan
			}
			if err := journal.DecodeRecord(s.Payload, &rec); err != nil {
				// The archive verified every record on ingest; a record
				// that no longer decodes is not counted, and the audit
				// of the chain will say why.
				return nil
			}
			if _, _, ok := rec.CrashInterval(); ok {
				a.Crashes = append(a.Crashes, crashNote{UAI: uai, Text: rec.Host})
				return nil
			}
			if rec.Lost > 0 {
				return nil
			}
			i := p.bucket(from, rec.Time)
			if i < 0 {
				return nil
			}
			if rec.Verdict != "block" {
				a.Allowed++
				return nil
			}
			cat := rec.Category
			if cat == "" {
				cat = "?"
			}
			a.ByCategory[cat]++
			a.Buckets[i]++
			if p.Step == time.Hour && i < len(a.Hourly) {
				a.Hourly[i]++
			}
			if _, ok := a.ByHost[rec.Host]; ok || len(a.ByHost) < maxHosts {
				a.ByHost[rec.Host]++
			}
			a.Total++
			return nil
		})
		if errors.Is(err, errStopScan) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// categoryCount is one bar of the chart.
type categoryCount struct {
	ID, Label string
	N         int64
}

// topCategories returns the n largest categories and the rest summed as
// one "others" bar, largest first, ties by identifier (stable output).
func (a *activity) topCategories(n int, label func(string) string) []categoryCount {
	var all []categoryCount
	for id, c := range a.ByCategory {
		all = append(all, categoryCount{ID: id, Label: label(id), N: c})
	}
	slices.SortFunc(all, func(x, y categoryCount) int {
		if x.N != y.N {
			if x.N > y.N {
				return -1
			}
			return 1
		}
		return strings.Compare(x.ID, y.ID)
	})
	if len(all) <= n {
		return all
	}
	rest := categoryCount{ID: "", Label: T("chart.others")}
	for _, c := range all[n:] {
		rest.N += c.N
	}
	return append(all[:n], rest)
}

// topHosts returns the n most blocked hosts, largest first.
func (a *activity) topHosts(n int) []categoryCount {
	var all []categoryCount
	for h, c := range a.ByHost {
		if h != "" {
			all = append(all, categoryCount{ID: h, Label: h, N: c})
		}
	}
	slices.SortFunc(all, func(x, y categoryCount) int {
		if x.N != y.N {
			if x.N > y.N {
				return -1
			}
			return 1
		}
		return strings.Compare(x.ID, y.ID)
	})
	return all[:min(n, len(all))]
}

// percent is the blocked share of the requests, "12,5 %".
func (a *activity) percent() string {
	all := a.Total + a.Allowed
	if all == 0 {
		return "0\u00a0%"
	}
	f := 100 * float64(a.Total) / float64(all)
	return strings.Replace(strconv.FormatFloat(f, 'f', 1, 64), ".", ",", 1) + "\u00a0%"
}
