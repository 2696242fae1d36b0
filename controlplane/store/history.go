package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Kinds of EdgeEvent.
const (
	// EventApplied: the edge reported applying Serial.
	EventApplied = "applied"
	// EventRefused: the edge reported an error (a refused bundle, an
	// unreachable section, its built-in strict policy); Serial is the
	// version it kept, Detail the error.
	EventRefused = "refused"
	// EventSoftware: the edge reported running Detail.
	EventSoftware = "software"
	// EventOutage: the edge did not call between At and Until.
	EventOutage = "outage"
	// EventRecording marks when this control plane started keeping the
	// history (written by the migration that created it).
	EventRecording = "recording"
)

// EdgeEvent is one change in what an edge told the control plane: the
// history behind the yearly review (versions applied and when, outages,
// refused bundles, software in service). The edges table keeps only the
// latest state; these rows keep the changes.
type EdgeEvent struct {
	Edge   string    `json:"edge"`
	UAI    string    `json:"uai"`
	Kind   string    `json:"kind"`
	At     time.Time `json:"at"`
	Until  time.Time `json:"until,omitzero"`
	Serial uint64    `json:"serial,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// History keeps the edges' events. Both backends implement it; writes
// are telemetry, not audited, like RecordEdgeStatus.
type History interface {
	// AddEdgeEvents stores events; each one's UAI is the edge's (events
	// of an edge deleted meanwhile are dropped).
	AddEdgeEvents(ctx context.Context, es []EdgeEvent) error
	// EdgeEvents returns the events of the schools whose UAI starts with
	// prefix that overlap [from, to), oldest first, at most MaxEdgeEvents.
	EdgeEvents(ctx context.Context, prefix string, from, to time.Time) ([]EdgeEvent, error)
	// HistoryStart is when the history began to be kept (zero if never).
	HistoryStart(ctx context.Context) (time.Time, error)

	// PutBlockedDays stores (or replaces) days of blocked-request counts.
	PutBlockedDays(ctx context.Context, ds []BlockedDay) error
	// BlockedDays returns the counts of the schools whose UAI starts with
	// prefix for the days in [from, to) ("2026-03-02"), ordered by school,
	// day and category.
	BlockedDays(ctx context.Context, prefix, from, to string) ([]BlockedDay, error)
}

// BlockedDay counts a school's navigation requests of one day (Paris) and
// category, kept beyond the archive's navigation retention: the yearly
// review still has the months the purge removed. The row with an empty
// Category holds the day's totals, and says the day was counted.
type BlockedDay struct {
	UAI      string `json:"uai"`
	Day      string `json:"day"`
	Category string `json:"category"`
	Blocked  int64  `json:"blocked"`
	Allowed  int64  `json:"allowed"`
}

// MaxEdgeEvents bounds one EdgeEvents read: a département's year is a few
// thousand rows; the bound only stops a runaway edge from exhausting memory.
const MaxEdgeEvents = 200_000

// history implements History on both backends: w is SQLite's writer
// connection or PostgreSQL's pool, r a reader.
type history struct{ w, r querier }

// AddEdgeEvents writes the events in statements of up to 100 rows: after
// a publication a thousand edges report a new version within a second,
// and one statement per event would be a thousand commits.
func (h history) AddEdgeEvents(ctx context.Context, es []EdgeEvent) error {
	const chunk = 100
	for len(es) > 0 {
		n := min(chunk, len(es))
		var q strings.Builder
		// Typed casts: PostgreSQL types a bare parameter of a VALUES
		// list as text, whatever column it goes to. Both backends name
		// the columns of VALUES column1, column2...
		q.WriteString(`INSERT INTO edge_events (edge, uai, kind, at, until_at, serial, detail)
			SELECT e.id, e.uai, v.column2, v.column3, v.column4, v.column5, v.column6 FROM (VALUES `)
		args := make([]any, 0, 6*n)
		for i, e := range es[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(`(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT))`)
			args = append(args, e.Edge, e.Kind, nanos(e.At), nanos(e.Until), int64(e.Serial), e.Detail)
		}
		q.WriteString(`) AS v JOIN edges e ON e.id = v.column1`)
		if _, err := h.w.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("store: %d edge events: %w", n, err)
		}
		es = es[n:]
	}
	return nil
}

func (h history) EdgeEvents(ctx context.Context, prefix string, from, to time.Time) ([]EdgeEvent, error) {
	if strings.ContainsAny(prefix, `%_\`) {
		return nil, fmt.Errorf("store: edge events: invalid school prefix %q", prefix)
	}
	rows, err := h.r.QueryContext(ctx, `SELECT edge, uai, kind, at, until_at, serial, detail FROM edge_events
		WHERE kind != ? AND uai LIKE ? AND at < ? AND (at >= ? OR until_at >= ?)
		ORDER BY at, edge, kind LIMIT ?`,
		EventRecording, prefix+"%", nanos(to), nanos(from), nanos(from), MaxEdgeEvents)
	if err != nil {
		return nil, fmt.Errorf("store: edge events: %w", err)
	}
	defer rows.Close()
	var out []EdgeEvent
	for rows.Next() {
		var e EdgeEvent
		var at, until, serial int64
		if err := rows.Scan(&e.Edge, &e.UAI, &e.Kind, &at, &until, &serial, &e.Detail); err != nil {
			return nil, fmt.Errorf("store: edge events: %w", err)
		}
		e.At, e.Until, e.Serial = fromNanos(at), fromNanos(until), uint64(serial)
		out = append(out, e)
	}
	return out, rows.Err()
}

func (h history) HistoryStart(ctx context.Context) (time.Time, error) {
	var at sql.NullInt64
	if err := h.r.QueryRowContext(ctx, `SELECT min(at) FROM edge_events WHERE kind = ?`, EventRecording).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("store: history start: %w", err)
	}
	if !at.Valid {
		return time.Time{}, nil
	}
	return fromNanos(at.Int64), nil
}

func (h history) PutBlockedDays(ctx context.Context, ds []BlockedDay) error {
	for _, d := range ds {
		_, err := h.w.ExecContext(ctx, `INSERT INTO blocked_days (uai, day, category, blocked, allowed) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (uai, day, category) DO UPDATE SET blocked = excluded.blocked, allowed = excluded.allowed`,
			d.UAI, d.Day, d.Category, d.Blocked, d.Allowed)
		if err != nil {
			return fmt.Errorf("store: blocked requests of %s on %s: %w", d.UAI, d.Day, err)
		}
	}
	return nil
}

func (h history) BlockedDays(ctx context.Context, prefix, from, to string) ([]BlockedDay, error) {
	if strings.ContainsAny(prefix, `%_\`) {
		return nil, fmt.Errorf("store: blocked days: invalid school prefix %q", prefix)
	}
	rows, err := h.r.QueryContext(ctx, `SELECT uai, day, category, blocked, allowed FROM blocked_days
		WHERE uai LIKE ? AND day >= ? AND day < ? ORDER BY uai, day, category`, prefix+"%", from, to)
	if err != nil {
		return nil, fmt.Errorf("store: blocked days: %w", err)
	}
	defer rows.Close()
	var out []BlockedDay
	for rows.Next() {
		var d BlockedDay
		if err := rows.Scan(&d.UAI, &d.Day, &d.Category, &d.Blocked, &d.Allowed); err != nil {
			return nil, fmt.Errorf("store: blocked days: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
