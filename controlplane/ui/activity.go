package ui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
)

// activity is what the dashboard's chart shows: blocked requests of the
// last 24 hours, by category and by hour. It counts; it never keeps a
// host, a URL or a client.
type activity struct {
	From, To   time.Time
	ByCategory map[string]int64
	// Hourly[i] counts the hour starting at From + i hours.
	Hourly [24]int64
	Total  int64
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
	if h.archive == nil {
		return nil, nil
	}
	key := strings.Join(uais, ",")
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
				a, err := h.countBlocked(bg, uais, h.now())
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
	a, err := h.countBlocked(ctx, uais, now)
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
	from := now.Truncate(time.Hour).Add(-23 * time.Hour)
	a := &activity{From: from, To: now, ByCategory: map[string]int64{}}
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
			if rec.Verdict != "block" || rec.Lost > 0 {
				return nil
			}
			i := int(rec.Time.Sub(from) / time.Hour)
			if i < 0 || i >= len(a.Hourly) {
				return nil
			}
			cat := rec.Category
			if cat == "" {
				cat = "?"
			}
			a.ByCategory[cat]++
			a.Hourly[i]++
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
