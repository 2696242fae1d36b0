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
}

// maxScanned bounds the records one computation reads, so that a large
// académie's dashboard costs seconds at most, cached for a minute.
const maxScanned = 2_000_000

// activityTTL is how long a computed chart is reused.
const activityTTL = time.Minute

type activityCache struct {
	mu      sync.Mutex
	entries map[string]activityEntry
}

type activityEntry struct {
	at time.Time
	a  *activity
}

var errStopScan = errors.New("stop")

// blockedActivity counts the blocked navigation records of schools over
// the 24 hours ending at now.
func (h *Handler) blockedActivity(ctx context.Context, uais []string, now time.Time) (*activity, error) {
	if h.archive == nil {
		return nil, nil
	}
	key := strings.Join(uais, ",")
	h.activity.mu.Lock()
	if e, ok := h.activity.entries[key]; ok && now.Sub(e.at) < activityTTL && now.Sub(e.at) >= 0 {
		h.activity.mu.Unlock()
		return e.a, nil
	}
	h.activity.mu.Unlock()

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
	h.activity.mu.Lock()
	if h.activity.entries == nil || len(h.activity.entries) > 500 {
		h.activity.entries = map[string]activityEntry{}
	}
	h.activity.entries[key] = activityEntry{at: now, a: a}
	h.activity.mu.Unlock()
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
