package api

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/rules/policy"
)

// EdgeHealth is an edge as technicians see it.
type EdgeHealth struct {
	store.Edge
	// UpToDate is true when the edge applied the published serial.
	UpToDate bool `json:"up_to_date"`
	// Online is true when the edge called within two long-poll periods.
	Online bool `json:"online"`
	// UnknownVersion is true when the edge applied a serial and hash this
	// control plane never published ("version inconnue").
	UnknownVersion bool `json:"unknown_version,omitempty"`
	// State is the one word the UI and "vigie admin edges" show: never
	// (not yet seen), error (its last apply failed), silent (not online),
	// unknown (a version this control plane never published), late
	// (online, older serial) or ok.
	State string `json:"state"`
}

// edgeState is the one rule behind State.
func edgeState(e store.Edge, online, upToDate, unknown bool) string {
	switch {
	case e.LastSeen.IsZero():
		return "never"
	case !online:
		return "silent"
	case unknown:
		// Before "error": an unknown claim is also recorded as the
		// edge's error, and "version inconnue" says more.
		return "unknown"
	case e.LastError != "":
		return "error"
	case !upToDate:
		return "late"
	}
	return "ok"
}

func (s *Server) edgeHealth(e store.Edge) EdgeHealth {
	if st, ok := s.edges.pending(e.ID); ok {
		e.EdgeStatus = st
	}
	h := s.pub.Head()
	unknown := !s.versions.known(e.AppliedSerial, e.AppliedHash) || e.ClaimedSerial != 0
	eh := EdgeHealth{Edge: e, UnknownVersion: unknown,
		UpToDate: e.AppliedSerial == h.Serial && (e.AppliedHash == "" || e.AppliedHash == h.Hash) && e.LastError == "" && !unknown,
		Online:   !e.LastSeen.IsZero() && s.now().Sub(e.LastSeen) < 2*s.cfg.LongPoll+10*time.Second}
	eh.State = edgeState(e, eh.Online, eh.UpToDate, eh.UnknownVersion)
	return eh
}

func (s *Server) listEdges(w http.ResponseWriter, r *http.Request) error {
	p, err := pageParams(r)
	if err != nil {
		return err
	}
	uai := r.URL.Query().Get("uai")
	if uai != "" {
		if err := s.schoolScope(r, uai); err != nil {
			return err
		}
	}
	id := identity(r)
	if id.Scoped() && uai == "" {
		return s.listScopedEdges(w, r, id, p)
	}
	q := p
	q.Limit++
	es, err := s.st.Edges(r.Context(), uai, q)
	if err != nil {
		return err
	}
	out := make([]EdgeHealth, 0, len(es))
	for _, e := range es {
		out = append(out, s.edgeHealth(e))
	}
	return writeJSON(w, http.StatusOK, pageOf(out, p, func(e EdgeHealth) string { return e.ID }))
}

// listScopedEdges lists the edges a scoped account may see. The filter
// runs after reading, so it reads store pages from the cursor on until it
// holds one visible edge more than the page shows (to know whether next
// exists) or the store has no more: a single store page could be filled
// by other schools' edges and hide the account's own.
func (s *Server) listScopedEdges(w http.ResponseWriter, r *http.Request, id *auth.Identity, p store.Page) error {
	out := make([]EdgeHealth, 0, min(p.Limit+1, 64))
	after := p.After
	for len(out) <= p.Limit {
		es, err := s.st.Edges(r.Context(), "", store.Page{After: after, Limit: store.MaxPage})
		if err != nil {
			return err
		}
		for _, e := range es {
			if id.CanSeeSchool(e.UAI) {
				out = append(out, s.edgeHealth(e))
			}
		}
		if len(es) < store.MaxPage {
			break
		}
		after = es[len(es)-1].ID
	}
	return writeJSON(w, http.StatusOK, pageOf(out, p, func(e EdgeHealth) string { return e.ID }))
}

func (s *Server) getEdge(w http.ResponseWriter, r *http.Request) error {
	e, err := s.st.Edge(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.schoolScope(r, e.UAI); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.edgeHealth(e))
}

// EdgeCreate registers an edge; ID defaults to the UAI in lower case and a
// number.
type EdgeCreate struct {
	ID   string `json:"id,omitempty"`
	UAI  string `json:"uai"`
	Name string `json:"name,omitempty"`
}

// EdgeCreated shows the edge's token once: put it in its token_file.
type EdgeCreated struct {
	Edge  store.Edge `json:"edge"`
	Token string     `json:"token"`
}

func (s *Server) createEdge(w http.ResponseWriter, r *http.Request) error {
	var req EdgeCreate
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		return err
	}
	d, err := s.st.Draft(r.Context())
	if err != nil {
		return err
	}
	if err := s.schoolScope(r, req.UAI); err != nil {
		return err
	}
	if !slices.ContainsFunc(d.Policy.Schools, func(x policy.School) bool { return x.UAI == req.UAI }) {
		return Errorf("validation", "établissement %q absent du brouillon : ajoutez-le avant sa passerelle", req.UAI)
	}
	tok, hash := auth.NewToken(auth.EdgeTokenPrefix)
	e := store.Edge{ID: req.ID, UAI: req.UAI, Name: req.Name, CreatedAt: s.now(), TokenHash: hash}
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		if e.ID == "" {
			existing, err := tx.Edges(r.Context(), req.UAI, store.Page{Limit: 1000})
			if err != nil {
				return err
			}
			e.ID = fmt.Sprintf("%s-%d", strings.ToLower(req.UAI), len(existing)+1)
		}
		if !policy.ValidID(e.ID) {
			return Errorf("validation", "identifiant de passerelle %q invalide", e.ID)
		}
		if err := tx.CreateEdge(r.Context(), e); err != nil {
			return err
		}
		return s.audit(tx, r, "edge.create", "edge/"+e.ID, nil, e)
	})
	if err != nil {
		return err
	}
	s.edges.metrics.forget()
	return writeJSON(w, http.StatusCreated, EdgeCreated{Edge: e, Token: tok})
}

func (s *Server) deleteEdge(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	err := s.st.Update(r.Context(), func(tx store.Tx) error {
		e, err := tx.Edge(r.Context(), id)
		if err != nil {
			return err
		}
		if err := tx.DeleteEdge(r.Context(), id); err != nil {
			return err
		}
		return s.audit(tx, r, "edge.delete", "edge/"+id, e, nil)
	})
	if err != nil {
		return err
	}
	s.edges.forget(id)
	s.edges.metrics.forget()
	s.auth.ForgetEdge(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateEdgeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	tok, hash := auth.NewToken(auth.EdgeTokenPrefix)
	var e store.Edge
	cur, err := s.st.Edge(r.Context(), id)
	if err != nil {
		return err
	}
	if err := s.schoolScope(r, cur.UAI); err != nil {
		return err
	}
	err = s.st.Update(r.Context(), func(tx store.Tx) error {
		if err := tx.SetEdgeToken(r.Context(), id, hash); err != nil {
			return err
		}
		var err error
		if e, err = tx.Edge(r.Context(), id); err != nil {
			return err
		}
		return s.audit(tx, r, "edge.token.rotate", "edge/"+id, nil, nil)
	})
	if err != nil {
		return err
	}
	s.auth.ForgetEdge(id)
	return writeJSON(w, http.StatusCreated, EdgeCreated{Edge: e, Token: tok})
}

// ---- what edges call

// edgeBundle holds the request until a version newer than after exists (or
// the hold time passes: 204), then answers with its manifest or the whole
// bundle. The hold is a channel wait, so a thousand edges cost a thousand
// parked goroutines and no database reads.
func (s *Server) edgeBundle(w http.ResponseWriter, r *http.Request) error {
	id := identity(r)
	q := r.URL.Query()
	var after uint64
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseUint(a, 10, 63)
		if err != nil {
			return Errorf("bad-request", "after doit être un entier positif")
		}
		after = n
	}
	part := q.Get("part")
	if part != "" && part != "full" && part != "manifest" && part != "delta" {
		return Errorf("bad-request", "part vaut full, manifest ou delta")
	}
	wait := s.cfg.LongPoll
	if ws := q.Get("wait"); ws != "" {
		n, err := strconv.Atoi(ws)
		if err != nil || n < 0 {
			return Errorf("bad-request", "wait est un nombre de secondes")
		}
		wait = min(wait, time.Duration(n)*time.Second)
	}
	if a := q.Get("applied"); a != "" {
		// The version the edge applied since its last poll (see
		// ReportInPoll): a report, which also says it was seen.
		n, err := strconv.ParseUint(a, 10, 63)
		if err != nil {
			return Errorf("bad-request", "applied doit être un entier positif")
		}
		if err := s.recordReport(r, EdgeReport{Serial: n, Hash: q.Get("hash"), Software: q.Get("software")}); err != nil {
			return err
		}
	} else {
		s.edges.seen(id.EdgeID, remote(r))
	}
	w.Header().Set(ReportInPoll, "1")
	if h := s.pub.Head(); h.Serial > 0 && after > h.Serial {
		return Errorf("edge-ahead", "la passerelle détient la version %d, le plan de contrôle ne connaît que la %d (base restaurée ?)", after, h.Serial)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	h := s.pub.Wait(ctx, after)
	if h == nil {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("X-Vigie-Serial", strconv.FormatUint(h.Serial, 10))
	// An edge one version behind gets the changed sections with the
	// manifest, in one response; any other gets the manifest and fetches
	// what it lacks by hash.
	if part == "delta" && h.Delta != nil && h.DeltaFrom == after {
		w.Header().Set("X-Vigie-Part", "delta")
		h.Delta.ServeHTTPAs(w, r, publish.DeltaContentType)
		return nil
	}
	if part == "manifest" || part == "delta" {
		w.Header().Set("X-Vigie-Part", "manifest")
		h.Manifest.ServeHTTP(w, r)
		return nil
	}
	b, err := s.pub.Bundle(r.Context(), h.Serial)
	if err != nil {
		return err
	}
	b.ServeHTTP(w, r)
	return nil
}

func (s *Server) edgeSection(w http.ResponseWriter, r *http.Request) error {
	raw, err := hex.DecodeString(r.PathValue("hash"))
	if err != nil || len(raw) != 32 {
		return Errorf("bad-request", "hash est un SHA-256 en hexadécimal (64 caractères)")
	}
	b, err := s.pub.Section(r.Context(), [32]byte(raw))
	if err != nil {
		return err
	}
	b.ServeHTTP(w, r)
	return nil
}

// EdgeReport is what an edge says after trying a version.
type EdgeReport struct {
	// Serial and Hash are the version in force at the edge.
	Serial uint64 `json:"serial"`
	Hash   string `json:"hash,omitempty"`
	// Error is the last failure (a refused bundle, an unreachable
	// section), empty when the last attempt succeeded.
	Error    string `json:"error,omitempty"`
	Software string `json:"software,omitempty"`
	// Fallback is true while the edge runs its built-in strict policy.
	Fallback bool `json:"fallback,omitempty"`
}

func (s *Server) edgeStatus(w http.ResponseWriter, r *http.Request) error {
	var rep EdgeReport
	if err := decodeBody(w, r, 64<<10, &rep); err != nil {
		return err
	}
	if err := s.recordReport(r, rep); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ReportInPoll is the header by which the long-poll's answers say that
// it takes the edge's report of the version it applied in its query
// (applied, hash, software): an edge then sends no request of its own
// to report, which after a publication is one request per edge fewer on
// both sides. An edge that does not see it reports with POST
// /edge/status (a control plane of an earlier release).
const ReportInPoll = "X-Vigie-Report-In-Poll"

// recordReport checks and records an edge's report, from POST
// /edge/status or from its long-poll's query.
func (s *Server) recordReport(r *http.Request, rep EdgeReport) error {
	if len(rep.Hash) > 64 || len(rep.Software) > 100 {
		return Errorf("validation", "hash ou software trop long")
	}
	rep.Error, rep.Software = boundText(rep.Error, maxEdgeError), boundText(rep.Software, 100)
	if rep.Fallback && rep.Error == "" {
		rep.Error = "politique stricte intégrée (aucune version reçue)"
	}
	id := identity(r)
	var claimSerial uint64
	var claimHash string
	if err := s.checkReportedVersion(rep.Serial, rep.Hash); err != nil {
		// Not a state: the version in force stays what it was, and the
		// claim is shown as the edge's error. The claim is stored apart
		// (EdgeStatus.ClaimedSerial): a control plane restored from an
		// older backup, and every replica, must still flag the edge and
		// publish past its serial.
		claimSerial, claimHash = rep.Serial, rep.Hash
		prev, ok := s.edges.pending(id.EdgeID)
		if !ok {
			if e, err := s.st.Edge(r.Context(), id.EdgeID); err == nil {
				prev = e.EdgeStatus
			}
		}
		rep.Serial, rep.Hash = prev.AppliedSerial, prev.AppliedHash
		msg := err.Error()
		if rep.Error != "" {
			msg += " ; " + rep.Error
		}
		rep.Error = boundText(msg, maxEdgeError)
	}
	// A version it knows ends a claim: the claimed fields go back to zero.
	s.edges.report(id.EdgeID, store.EdgeStatus{LastSeen: s.now(), AppliedSerial: rep.Serial, AppliedHash: rep.Hash,
		Software: rep.Software, LastError: rep.Error, Remote: remote(r), ClaimedSerial: claimSerial, ClaimedHash: claimHash})
	return nil
}

// edgeTracker batches what edges report: after a publication a thousand
// edges report within a second, and one transaction every half second
// writes them all instead of a thousand transactions queueing on the
// single writer. Reads merge the pending reports, so the API shows them
// at once.
type edgeTracker struct {
	st  store.Store
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	known map[string]store.EdgeStatus // latest status of each edge seen
	dirty map[string]bool
	// events are the history to write with the next flush (statusEvents),
	// offlineAfter the silence that is an outage.
	events       []store.EdgeEvent
	offlineAfter time.Duration

	// metrics exports the per-edge series (nil until registered).
	metrics *edgeCollector
}

func newEdgeTracker(st store.Store, log *slog.Logger, now func() time.Time) *edgeTracker {
	return &edgeTracker{st: st, log: log, now: now, known: map[string]store.EdgeStatus{}, dirty: map[string]bool{}}
}

func (t *edgeTracker) seen(id, remote string) {
	t.mu.Lock()
	known, ok := t.known[id]
	t.mu.Unlock()
	var stored store.EdgeStatus
	if !ok {
		// First call since the server started: start from what the
		// store knows (read outside the lock).
		e, err := t.st.Edge(context.Background(), id)
		if err != nil {
			return
		}
		stored = e.EdgeStatus
	}
	contact := t.lastContact(id, known, ok)
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.known[id]
	if !ok {
		st = stored
	}
	prev := st
	if contact.After(prev.LastSeen) {
		prev.LastSeen = contact
	}
	st.LastSeen, st.Remote = t.now(), remote
	t.events = append(t.events, statusEvents(id, prev, st, t.offlineAfter)...)
	t.known[id] = st
	t.dirty[id] = true
}

func (t *edgeTracker) report(id string, st store.EdgeStatus) {
	t.mu.Lock()
	prev, ok := t.known[id]
	t.mu.Unlock()
	if !ok {
		// First word since the server started: compare with what the
		// store knows (read outside the lock), not with nothing.
		if e, err := t.st.Edge(context.Background(), id); err == nil {
			prev, ok = e.EdgeStatus, true
		}
	}
	if contact := t.lastContact(id, prev, ok); contact.After(prev.LastSeen) {
		prev.LastSeen = contact
	}
	t.mu.Lock()
	if ok {
		t.events = append(t.events, statusEvents(id, prev, st, t.offlineAfter)...)
	}
	t.known[id] = st
	t.dirty[id] = true
	t.mu.Unlock()
}

func (t *edgeTracker) pending(id string) (store.EdgeStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.known[id]
	return st, ok
}

func (t *edgeTracker) forget(id string) {
	t.mu.Lock()
	delete(t.known, id)
	delete(t.dirty, id)
	t.mu.Unlock()
}

func (t *edgeTracker) flush(ctx context.Context) {
	t.mu.Lock()
	if len(t.dirty) == 0 {
		t.mu.Unlock()
		return
	}
	batch := make(map[string]store.EdgeStatus, len(t.dirty))
	for id := range t.dirty {
		batch[id] = t.known[id]
	}
	t.dirty = map[string]bool{}
	events := t.events
	t.events = nil
	t.mu.Unlock()
	if err := t.st.Update(ctx, func(tx store.Tx) error { return tx.RecordEdgeStatus(ctx, batch) }); err != nil {
		t.log.Error("cannot store edge reports", "edges", len(batch), "err", err)
		t.mu.Lock()
		for id := range batch {
			t.dirty[id] = true
		}
		t.events = append(events, t.events...)
		t.mu.Unlock()
		return
	}
	t.flushEvents(ctx, events)
}

// lastContact is an edge's last call as any process saw it. Replicas
// sharing PostgreSQL each see some of an edge's calls: when this process's
// view (prev, known) would make an outage, the store's, written by every
// replica, may know a later call. Read only then, outside the lock.
func (t *edgeTracker) lastContact(id string, prev store.EdgeStatus, known bool) time.Time {
	t.mu.Lock()
	after := t.offlineAfter
	t.mu.Unlock()
	if !known || prev.LastSeen.IsZero() || t.now().Sub(prev.LastSeen) <= after {
		return prev.LastSeen
	}
	if e, err := t.st.Edge(context.Background(), id); err == nil && e.LastSeen.After(prev.LastSeen) {
		return e.LastSeen
	}
	return prev.LastSeen
}

// flushEvents writes the edges' history; a store without one keeps none.
// A failed write is logged and dropped: the history is telemetry, and
// holding it back would grow without bound while the database is down.
func (t *edgeTracker) flushEvents(ctx context.Context, events []store.EdgeEvent) {
	h, ok := t.st.(store.History)
	if !ok || len(events) == 0 {
		return
	}
	if err := h.AddEdgeEvents(ctx, events); err != nil {
		t.log.Error("cannot store edge history", "events", len(events), "err", err)
	}
}

func (t *edgeTracker) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			t.flush(ctx)
		case <-ctx.Done():
			t.flush(context.Background())
			return
		}
	}
}

// maxEdgeError bounds the error text an edge may store (characters).
const maxEdgeError = 500

// boundText keeps at most n characters of valid UTF-8 without control
// characters: an edge's text is shown in the UI and the API as is.
func boundText(s string, n int) string {
	var b strings.Builder
	for _, c := range strings.ToValidUTF8(s, "\uFFFD") {
		if n == 0 {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(c) {
			c = ' '
		}
		b.WriteRune(c)
		n--
	}
	return strings.TrimSpace(b.String())
}

// checkReportedVersion says whether serial and hash name a version this
// control plane published (serial 0 without hash: nothing applied yet).
// Reports must carry both: a serial alone could name anything.
func (s *Server) checkReportedVersion(serial uint64, hash string) error {
	if serial == 0 && hash == "" {
		return nil
	}
	if hash == "" || !s.versions.known(serial, hash) {
		return fmt.Errorf("version inconnue\u00a0: n°\u00a0%d, empreinte %q", serial, boundText(hash, 64))
	}
	return nil
}
