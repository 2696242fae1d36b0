package ui

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/audit"
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
	Before, After string
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
		var res api.AuditVerify
		if err := rq.call("GET", "/api/v1/audit/verify", nil, &res); err != nil {
			return err
		}
		v.Verify = &res
		// The verification is itself an entry, appended after it
		// counted: read to the real end so the page shows it too.
		tail := res.HeadSeq
		for {
			es, err := h.st.AuditEntries(rq.r.Context(), tail, 1000)
			if err != nil {
				return err
			}
			if len(es) == 0 {
				break
			}
			tail = es[len(es)-1].Seq
		}
		before = tail + 1
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
	r := auditRow{Entry: e, Label: actionLabel(e.Action), Before: prettyJSON(e.Before), After: prettyJSON(e.After)}
	return r
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

// prettyJSON indents a JSON document for reading, bounded: a change of a
// 100,000-entry list would otherwise make a page of megabytes.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return shorten(string(raw), 4000)
	}
	return shorten(b.String(), 4000)
}
