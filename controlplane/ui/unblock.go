package ui

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/rules"
	"vigie/rules/normalize"
	"vigie/rules/policy"
)

// Unblock requests: a teacher blocked by the filter asks, from the block
// page, for a site to be let through; the RSSI decides.
//
// The block page posts the request straight to the control plane
// (POST /deblocage, no session: the teacher has no account), at the
// address the edge's http.unblock_url names. Going through the edge would
// have needed a relay in the filtering proxy, on the path of every pupil's
// request; a plain form to the académie's address needs nothing there, and
// the control plane is already reachable from the schools for their edges.
// What the form says about the school (its UAI) is checked against the
// policy but cannot be proven: the request is a request, the RSSI decides.
//
// Requests and decisions are audit entries (unblock.request,
// unblock.approve, unblock.refuse): the hash-chained log is their store,
// so that each is audited by construction and none can vanish. A request's
// number is its audit sequence number.

// unblockLimit bounds the requests of one client address: unblockBurst
// in unblockWindow.
const (
	unblockBurst  = 5
	unblockWindow = 10 * time.Minute
	// unblockScan bounds the request and decision entries the queue
	// reads.
	unblockScan = 50000
)

// unblockLimiter counts recent requests per client address.
type unblockLimiter struct {
	mu   sync.Mutex
	seen map[string][]time.Time
}

// allow records a request of addr at now, or refuses it past the limit.
func (l *unblockLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil || len(l.seen) > 10000 {
		// Bounded memory: a flood of addresses resets the window.
		l.seen = map[string][]time.Time{}
	}
	recent := slices.DeleteFunc(l.seen[addr], func(t time.Time) bool { return now.Sub(t) >= unblockWindow })
	if len(recent) >= unblockBurst {
		l.seen[addr] = recent
		return false
	}
	l.seen[addr] = append(recent, now)
	return true
}

// unblockRequest is what the block page sends.
type unblockRequest struct {
	UAI       string `json:"uai"`
	URL       string `json:"url"`
	Host      string `json:"host"`
	Category  string `json:"category,omitempty"`
	Reference string `json:"reference,omitempty"`
	Reason    string `json:"reason"`
	Requester string `json:"requester"`
}

// unblockForm is the public page: the form, its problems, or the thanks.
type unblockForm struct {
	Req    unblockRequest
	Errors formErrors
	Sent   bool
	School string
}

var unblockFields = map[string]string{"url": "d-url", "reason": "d-reason", "requester": "d-requester", "uai": "d-url"}

// unblockPage shows the request form (GET /deblocage), filled from the
// block page's link.
func (h *Handler) unblockPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := unblockForm{Req: unblockRequest{UAI: strings.ToUpper(q.Get("uai")), URL: q.Get("url"), Category: q.Get("categorie"),
		Reference: q.Get("reference")}}
	h.unblockRender(w, r, http.StatusOK, f)
}

// unblockSubmit receives a request from a block page.
func (h *Handler) unblockSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.bare(w, r, http.StatusRequestEntityTooLarge, "error.toolarge.title", "error.toolarge.text")
		return
	}
	field := func(k string, max int) string { return shorten(strings.TrimSpace(r.PostForm.Get(k)), max) }
	req := unblockRequest{UAI: strings.ToUpper(field("uai", 8)), URL: field("url", 2000), Category: field("categorie", 64),
		Reference: field("reference", 32), Reason: field("motif", 1000), Requester: field("demandeur", 200)}
	f := unblockForm{Req: req}
	host, err := unblockHost(req.URL)
	if err != nil {
		f.Errors = append(f.Errors, on("d-url", T("unblock.err.url")))
	}
	f.Req.Host = host
	d, err := h.st.Draft(r.Context())
	if err != nil {
		h.log.Error("ui: unblock request: draft", "err", err)
		h.bare(w, r, http.StatusInternalServerError, "error.internal.title", "error.internal.text")
		return
	}
	if i := slices.IndexFunc(d.Policy.Schools, func(s policy.School) bool { return s.UAI == req.UAI }); i < 0 {
		f.Errors = append(f.Errors, on("d-url", T("unblock.err.school")))
	} else {
		f.School = d.Policy.Schools[i].Name
	}
	if req.Reason == "" {
		f.Errors = append(f.Errors, on("d-reason", T("unblock.err.reason")))
	}
	if req.Requester == "" {
		f.Errors = append(f.Errors, on("d-requester", T("unblock.err.requester")))
	}
	if len(f.Errors) > 0 {
		h.unblockRender(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	addr := r.RemoteAddr
	if ip, _, err := net.SplitHostPort(addr); err == nil {
		addr = ip
	}
	if !h.unblockLimit.allow(addr, h.now()) {
		w.Header().Set("Retry-After", strconv.Itoa(int(unblockWindow.Seconds())))
		f.Errors = msgs(T("unblock.err.limit", int(unblockWindow.Minutes())))
		h.unblockRender(w, r, http.StatusTooManyRequests, f)
		return
	}
	if err := h.api.Audit(r, "unblock.request", "school/"+f.Req.UAI, nil, f.Req); err != nil {
		h.log.Error("ui: unblock request: audit", "err", err)
		h.bare(w, r, http.StatusInternalServerError, "error.internal.title", "error.internal.text")
		return
	}
	f.Sent = true
	h.unblockRender(w, r, http.StatusCreated, f)
}

func (h *Handler) unblockRender(w http.ResponseWriter, r *http.Request, status int, f unblockForm) {
	title := pageTitle(status, "unblock", T("unblock.title"), nil)
	v := &view{Title: title, Path: r.URL.Path, Data: f, Academie: h.academie(r), Now: h.now()}
	if err := h.write(w, status, "unblock", "layout", v); err != nil {
		h.log.Error("ui: render unblock", "err", err)
	}
}

// unblockHost is the host of the address asked for, normalized.
func unblockHost(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty")
	}
	s := raw
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return "", errors.New("no host")
	}
	h, err := normalize.Host(u.Hostname())
	if err != nil {
		return "", err
	}
	return h, nil
}

// unblockItem is one request of the queue with its decision.
type unblockItem struct {
	Seq      uint64
	Time     time.Time
	Req      unblockRequest
	School   string
	Remote   string
	Decision string // "", approve, refuse
	By       string
	At       time.Time
	Note     string
	Category string
}

// unblockQueue is the Demandes de déblocage page.
type unblockQueue struct {
	Pending, Done []unblockItem
	// CanDecide: the RSSI, or a chef when the setting lets chefs
	// approve (their school's requests only, as school exceptions).
	CanDecide bool
	// SchoolOnly: the decider may only add a school exception.
	SchoolOnly bool
	// CanSet: the RSSI edits who approves; Approvers is the setting.
	CanSet    bool
	Approvers string
	Errors    formErrors
}

// unblockActions are the audit actions of requests and decisions.
var unblockActions = []string{"unblock.request", "unblock.approve", "unblock.refuse"}

// unblockItems reads the requests and their decisions from the audit
// log, newest first, of the schools the caller may see. The store reads
// the log from its end, these actions only: a decision is always newer
// than its request, so it is met first.
func (h *Handler) unblockItems(rq *request) ([]unblockItem, error) {
	ctx := rq.r.Context()
	decisions := map[uint64]unblockItem{}
	var out []unblockItem
	var before uint64
	for scanned := 0; scanned < unblockScan; {
		es, err := h.st.AuditTail(ctx, store.AuditQuery{Before: before, Actions: unblockActions, Limit: auditRead})
		if err != nil {
			return nil, err
		}
		scanned += len(es)
		for _, e := range es {
			switch e.Action {
			case "unblock.approve", "unblock.refuse":
				n, err := strconv.ParseUint(strings.TrimPrefix(e.Target, "unblock/"), 10, 64)
				if err != nil {
					continue
				}
				var d struct {
					Note string `json:"note"`
				}
				json.Unmarshal(e.After, &d)
				decisions[n] = unblockItem{Decision: strings.TrimPrefix(e.Action, "unblock."), By: e.Actor, At: e.Time, Note: d.Note}
			case "unblock.request":
				var req unblockRequest
				if json.Unmarshal(e.After, &req) != nil || !rq.id.CanSeeSchool(req.UAI) {
					continue
				}
				it := unblockItem{Seq: e.Seq, Time: e.Time, Req: req, Remote: e.Remote}
				if d, ok := decisions[e.Seq]; ok {
					it.Decision, it.By, it.At, it.Note = d.Decision, d.By, d.At, d.Note
				}
				out = append(out, it)
			}
		}
		if len(es) < auditRead {
			break
		}
		before = es[len(es)-1].Seq
	}
	return out, nil
}

func (h *Handler) unblockQueuePage(rq *request) error {
	v, err := h.unblockQueueData(rq)
	if err != nil {
		return err
	}
	return rq.render(200, "requests", "requests.title", v)
}

func (h *Handler) unblockQueueData(rq *request) (*unblockQueue, error) {
	items, err := h.unblockItems(rq)
	if err != nil {
		return nil, err
	}
	schools, err := allSchools(rq)
	if err != nil {
		return nil, err
	}
	rs, _, _ := h.publishedRules(rq.r.Context())
	set, err := rq.api().UnblockSettings(rq.ctx())
	if err != nil {
		return nil, err
	}
	chef := rq.is(auth.Chef) && set.Approvers == api.ApproversChef
	v := &unblockQueue{CanDecide: rq.is(auth.RSSI) || chef, SchoolOnly: chef, CanSet: rq.is(auth.RSSI), Approvers: set.Approvers}
	for _, it := range items {
		it.School = schoolName(schools, it.Req.UAI)
		if it.Req.Category != "" {
			it.Category = catNameOf(rs, it.Req.Category)
		}
		if it.Decision == "" {
			v.Pending = append(v.Pending, it)
		} else if len(v.Done) < 50 {
			v.Done = append(v.Done, it)
		}
	}
	return v, nil
}

// unblockDecide approves or refuses a request: the RSSI's, or a chef's
// for their own school when the setting says so. Approving adds the host
// to an exception list of the school, or (the RSSI only) of the
// académie, in the draft, with the request as the entry's comment: it
// applies at the next publication, like any change. The API checks the
// chef's scope and the setting again.
func (h *Handler) unblockDecide(rq *request) error {
	seq, err := strconv.ParseUint(rq.r.PathValue("seq"), 10, 64)
	if err != nil {
		return notFound()
	}
	if rq.is(auth.Chef) {
		set, err := rq.api().UnblockSettings(rq.ctx())
		if err != nil {
			return err
		}
		if set.Approvers != api.ApproversChef || rq.form("portee") == "academie" {
			return forbidden()
		}
	}
	// A chef's requests are their school's only: another school's
	// number is not found.
	items, err := h.unblockItems(rq)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(items, func(it unblockItem) bool { return it.Seq == seq })
	if i < 0 {
		return notFound()
	}
	it := items[i]
	fail := func(msg string) error {
		v, err := h.unblockQueueData(rq)
		if err != nil {
			return err
		}
		v.Errors = msgs(msg)
		return rq.render(http.StatusUnprocessableEntity, "requests", "requests.title", v)
	}
	if it.Decision != "" {
		return fail(T("requests.err.decided", seq))
	}
	note := shorten(rq.form("note"), 1000)
	switch rq.form("decision") {
	case "refuse":
		if note == "" {
			return fail(T("requests.err.note"))
		}
		if err := rq.h.api.Audit(rq.r, "unblock.refuse", "unblock/"+u64(seq), nil, map[string]any{"note": note, "uai": it.Req.UAI, "host": it.Req.Host}); err != nil {
			return err
		}
		return rq.redirect("/demandes?n="+u64(seq), "unblockrefused")
	case "approve":
	default:
		return fail(T("requests.err.decision"))
	}
	scope := rq.form("portee")
	comment := shorten(T("requests.comment", seq, it.Req.Requester, it.Req.Reason), 1000)
	change := api.EntriesChange{Domains: []string{it.Req.Host}, Comment: comment}
	var list string
	if scope == "academie" {
		if list, err = h.academieExceptionList(rq); err != nil {
			return err
		}
		if _, err := rq.api().AddEntries(rq.ctx(), list, change); err != nil {
			return err
		}
	} else {
		res, err := rq.api().AddSchoolExceptions(rq.ctx(), it.Req.UAI, change)
		if err != nil {
			return err
		}
		list = res.List
	}
	if err := rq.h.api.Audit(rq.r, "unblock.approve", "unblock/"+u64(seq), nil,
		map[string]any{"note": note, "uai": it.Req.UAI, "host": it.Req.Host, "list": list, "scope": scope}); err != nil {
		return err
	}
	return rq.redirect("/demandes?n="+u64(seq), "unblockapproved")
}

// academieExceptionList finds (or creates) the académie's exception
// list an approval for the whole académie goes to.
func (h *Handler) academieExceptionList(rq *request) (string, error) {
	lists, err := rq.api().Lists(rq.ctx())
	if err != nil {
		return "", err
	}
	cats, err := allCategories(rq)
	if err != nil {
		return "", err
	}
	white := func(cat string) bool {
		return slices.ContainsFunc(cats, func(c rules.CategoryInfo) bool { return c.ID == cat && c.Usage == "white" })
	}
	for _, l := range lists {
		if l.School == "" && white(l.Category) {
			return l.ID, nil
		}
	}
	// None yet: create it, with the first exception category.
	cat := ""
	for _, c := range cats {
		if c.Usage == "white" && cat == "" {
			cat = c.ID
		}
	}
	if cat == "" {
		return "", &pageError{status: http.StatusUnprocessableEntity, title: "error.api.title", text: "requests.err.nowhite"}
	}
	const id = "academie-deblocages"
	if _, err := rq.api().CreateList(rq.ctx(), api.ListCreate{ID: id, Category: cat, Comment: T("requests.list.comment")}); err != nil {
		return "", err
	}
	return id, nil
}

// unblockSettingSave changes who approves the requests (RSSI).
func (h *Handler) unblockSettingSave(rq *request) error {
	set := api.UnblockSettings{Approvers: rq.form("approbateurs")}
	if _, err := rq.api().PutUnblockSettings(rq.ctx(), set); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
			v, err := h.unblockQueueData(rq)
			if err != nil {
				return err
			}
			v.Errors = append(v.Errors, on("approbateurs-"+api.ApproversRSSI, T("requests.setting.err")))
			return rq.render(http.StatusUnprocessableEntity, "requests", "requests.title", v)
		}
		return err
	}
	return rq.redirect("/demandes#reglage", "unblocksetting")
}
