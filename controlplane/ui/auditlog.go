package ui

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/audit"
	"vigie/controlplane/store"
)

// auditView is the Audit page: the chain's verification and the entries,
// newest first, filtered.
type auditView struct {
	Verify  *api.AuditVerify
	Rows    []auditRow
	Filter  auditFilter
	Actions []string
	// Before is the cursor of the next (older) page, 0 when none.
	Before  uint64
	Paged   bool
	Scanned int
	// Limited says the scan stopped before the start of the log.
	Limited bool
}

type auditFilter struct {
	Actor, Action, Target, From, To string
}

type auditRow struct {
	audit.Entry
	Label         string
	Before, After []auditField
	// Count is how many consecutive reads of the same person the row
	// stands for (1 for a change), Since the earliest of them.
	Count int
	Since time.Time
}

// auditField is one line of an entry's details: a French name and the
// value as text.
type auditField struct {
	Key, Value string
}

const (
	auditPage = 50
	// auditScan bounds the entries one page reads while filtering.
	auditScan = 20000
	auditRead = 500
)

func (h *Handler) auditPage(rq *request) error {
	f := auditFilter{Actor: rq.query("acteur"), Action: rq.query("action"), Target: rq.query("cible"),
		From: rq.query("du"), To: rq.query("au")}
	v := &auditView{Filter: f, Actions: knownActions()}
	before, _ := strconv.ParseUint(rq.query("avant"), 10, 63)
	v.Paged = before > 0
	if !v.Paged {
		// The chain is verified on the first page (through the API,
		// which records the verification itself).
		res, err := rq.api().VerifyAudit(rq.ctx())
		if err != nil {
			return err
		}
		v.Verify = &res
		// The verification is itself an entry, appended after it
		// counted: read to the real end so the page shows it too.
		last, err := h.st.AuditTail(rq.r.Context(), store.AuditQuery{Limit: 1})
		if err != nil {
			return err
		}
		before = res.HeadSeq + 1
		if len(last) == 1 {
			before = last[0].Seq + 1
		}
	}
	from, _ := time.ParseInLocation("2006-01-02", f.From, paris)
	to, _ := time.ParseInLocation("2006-01-02", f.To, paris)
	if !to.IsZero() {
		to = to.AddDate(0, 0, 1)
	}
	match := func(e *audit.Entry) bool {
		return (f.Actor == "" || strings.Contains(fold(e.Actor), fold(f.Actor))) &&
			(f.Action == "" || e.Action == f.Action || strings.HasPrefix(e.Action, f.Action+".")) &&
			(f.Target == "" || strings.Contains(fold(e.Target), fold(f.Target))) &&
			(from.IsZero() || !e.Time.Before(from)) && (to.IsZero() || e.Time.Before(to))
	}
	// Read backwards from before, a window at a time, until a page of
	// matches or the scan bound. The store pages forward only.
	ctx := rq.r.Context()
	hi := before // exclusive
	for hi > 1 && len(v.Rows) < auditPage {
		if v.Scanned >= auditScan {
			v.Limited = true
			break
		}
		lo := uint64(1)
		if hi > auditRead {
			lo = hi - auditRead
		}
		es, err := h.st.AuditEntries(ctx, lo-1, int(hi-lo))
		if err != nil {
			return err
		}
		v.Scanned += len(es)
		for i := len(es) - 1; i >= 0 && len(v.Rows) < auditPage; i-- {
			e := &es[i]
			hi = e.Seq
			if match(e) {
				// A page view is a read the log must keep, but a
				// person reading ten pages is one line to a reader.
				if n := len(v.Rows); n > 0 && isRead(e.Action) && v.Rows[n-1].Action == e.Action &&
					v.Rows[n-1].Actor == e.Actor {
					v.Rows[n-1].Count++
					v.Rows[n-1].Since = e.Time
					continue
				}
				v.Rows = append(v.Rows, auditRowOf(*e))
			}
		}
		if len(es) == 0 {
			break
		}
		if len(v.Rows) < auditPage {
			hi = lo
		}
	}
	if hi > 1 {
		v.Before = hi
	}
	// Reading the audit log is itself audited, with what was asked.
	if err := h.api.Audit(rq.r, "audit.read", "audit", nil, map[string]any{"filter": f, "before": before, "count": len(v.Rows), "via": "ui"}); err != nil {
		return err
	}
	return rq.render(200, "audit", "audit.title", v)
}

func auditRowOf(e audit.Entry) auditRow {
	return auditRow{Entry: e, Label: actionLabel(e.Action), Before: auditFields(e.Before), After: auditFields(e.After), Count: 1, Since: e.Time}
}

// isRead reports a consultation (the entries that aggregate).
func isRead(action string) bool { return strings.HasSuffix(action, ".read") }

// maxAuditFields bounds the lines of one entry's details: a change of a
// 100,000-entry list would otherwise make a page of megabytes.
const maxAuditFields = 60

// auditFields flattens an entry's JSON details into French lines: keys
// the catalogue knows are translated ("reference" → "Référence"), nested
// keys are joined with ›, lists are written inline.
func auditFields(raw json.RawMessage) []auditField {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return []auditField{{Key: T("audit.key.value"), Value: shorten(string(raw), 4000)}}
	}
	var out []auditField
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if len(out) >= maxAuditFields {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				name := auditKey(k)
				if prefix != "" {
					name = prefix + " › " + name
				}
				walk(name, x[k])
			}
		case []any:
			if len(x) == 0 {
				out = append(out, auditField{Key: prefix, Value: "—"})
				return
			}
			simple := true
			var parts []string
			for _, it := range x {
				switch it.(type) {
				case map[string]any, []any:
					simple = false
				}
				parts = append(parts, auditValue(it))
			}
			if simple {
				out = append(out, auditField{Key: prefix, Value: shorten(strings.Join(parts, ", "), 2000)})
				return
			}
			for i, it := range x {
				walk(prefix+" › "+strconv.Itoa(i+1), it)
			}
		default:
			if prefix == "" {
				prefix = T("audit.key.value")
			}
			val := auditValue(x)
			if strings.HasSuffix(prefix, auditKey("summary")) {
				// The publisher's French sentence, set in French
				// typography like the rest of the page.
				val = typo(val)
			}
			out = append(out, auditField{Key: prefix, Value: val})
		}
	}
	walk("", doc)
	if len(out) >= maxAuditFields {
		out = append(out, auditField{Key: "…", Value: T("audit.fields.more")})
	}
	return out
}

// auditKey names a detail in French when the catalogue knows it.
func auditKey(k string) string {
	if Has("audit.key." + k) {
		return T("audit.key." + k)
	}
	return k
}

// auditValue writes one value: times in Paris, booleans in French, roles
// translated.
func auditValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case bool:
		if x {
			return T("common.yes")
		}
		return T("common.no")
	case float64:
		return formatInt(int64(x))
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return formatDateTime(t)
		}
		if Has("role." + x) {
			return T("role." + x)
		}
		return shorten(x, 500)
	}
	b, _ := json.Marshal(v)
	return shorten(string(b), 500)
}

// actionLabel says an action in French ("Entrées ajoutées à une liste").
func actionLabel(a string) string {
	if Has("action." + a) {
		return T("action." + a)
	}
	return a
}

// knownActions are the actions the filter offers, those the catalogue
// names.
func knownActions() []string {
	var out []string
	for k := range current {
		if a, ok := strings.CutPrefix(k, "action."); ok {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(fold(actionLabel(a)), fold(actionLabel(b))) })
	return out
}
