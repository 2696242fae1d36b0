// Package logs mounts the connection journal on the control plane's API:
// the archive's ingest route for edges, gap reports, legal holds, the
// retention purge, and requisition exports. It owns no HTTP plumbing of its
// own: routes are added to api.Server with Handle, so that authentication,
// roles, problem documents and the OpenAPI document are the API's.
//
// Access follows the roles: an edge posts only its own school's batches;
// an export is for the RSSI or the chef d'établissement of the school, and
// every attempt, allowed or denied (another school's data, a technicien),
// is written to the audit log with who, when, the query, the reference and,
// once sent, the SHA-256 of the archive.
package logs

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane/api"
	"vigie/controlplane/audit"
	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/journal/archive"
	"vigie/journal/export"
)

// Config is the logs section of the control plane.
type Config struct {
	// DataDir holds journal.db (the archive on SQLite).
	DataDir string
	// Database, when a postgres:// URL (the control plane's database:),
	// holds the archive instead, in schema DatabaseSchema + "_journal":
	// replicas share it. DatabasePassword overrides libpq's.
	Database         string
	DatabaseSchema   string
	DatabasePassword string
	// Academie names the académie in export summaries.
	Academie string
	// Retention per stream (connexions 365 days, navigation 183 by
	// default; at most 365 days each).
	Retention archive.Retention
	// PurgeEvery is the purge job's period (6 h).
	PurgeEvery time.Duration
	// TempDir holds exports while they are built (the system's default).
	TempDir string
	// MaxBatchBytes bounds one journal batch (64 MiB: a sealed segment
	// of 256 Ki records is a few MiB).
	MaxBatchBytes int64
	// MaxIngests bounds the batches received at once (2): with
	// MaxBatchBytes, what uploads can hold in memory; beyond, 429.
	MaxIngests int
}

// Deps are given rather than reached for.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time
}

// Service is the journal side of the control plane.
type Service struct {
	srv   *api.Server
	key   ed25519.PrivateKey
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	store *archive.SQLStore
	arch  *archive.Archive
	// ingesting holds a slot per batch being received.
	ingesting chan struct{}
}

type ctxKey struct{}

// presented is what the ingest route learned about the caller before the
// archive asks for the edge's key.
type presented struct {
	id  *auth.Identity
	pub ed25519.PublicKey
	err error
}

// Open opens the archive and adds the routes to srv. key signs exports
// (the académie's key, the one edges verify bundles with).
func Open(srv *api.Server, key ed25519.PrivateKey, cfg Config, d Deps) (*Service, error) {
	if cfg.PurgeEvery <= 0 {
		cfg.PurgeEvery = 6 * time.Hour
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 64 << 20
	}
	if cfg.MaxIngests <= 0 {
		cfg.MaxIngests = 2
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	var st *archive.SQLStore
	var err error
	if store.Backend(cfg.Database) == "postgres" {
		st, err = archive.OpenPostgres(context.Background(), cfg.Database, archive.PostgresConfig{Schema: cfg.DatabaseSchema, Password: cfg.DatabasePassword, Now: d.Now})
	} else {
		st, err = archive.OpenSQLite(filepath.Join(cfg.DataDir, "journal.db"))
	}
	if err != nil {
		return nil, err
	}
	s := &Service{srv: srv, key: key, cfg: cfg, log: d.Log, now: d.Now, store: st, ingesting: make(chan struct{}, cfg.MaxIngests)}
	s.arch, err = archive.New(archive.Options{Store: st, EdgeKey: s.edgeKey, Audit: s, Registry: d.Registry,
		Log: d.Log.With("component", "archive"), Now: d.Now, Retention: cfg.Retention})
	if err != nil {
		st.Close()
		return nil, err
	}
	s.routes()
	return s, nil
}

// Archive returns the archive (tests, the demo).
func (s *Service) Archive() *archive.Archive { return s.arch }

// Run runs the retention purge until ctx ends.
func (s *Service) Run(ctx context.Context) { s.arch.RunPurge(ctx, s.cfg.PurgeEvery) }

// Close closes the archive.
func (s *Service) Close() error { return s.store.Close() }

// Audit writes an archive event to the control plane's audit log.
func (s *Service) Audit(ctx context.Context, e archive.Event) error {
	_, err := s.appendAudit(ctx, e)
	return err
}

// appendAudit writes e and returns its sequence number. The transaction
// never sees the caller's cancellation: a client that hangs up or
// half-closes must not be able to keep its export or its denial out of
// the audit log.
func (s *Service) appendAudit(ctx context.Context, e archive.Event) (uint64, error) {
	entry := &audit.Entry{Time: s.now(), Actor: e.Actor, Role: e.Role, Action: e.Action, Target: e.Target, Remote: e.Remote}
	if e.Detail != nil {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return 0, fmt.Errorf("logs: audit: %w", err)
		}
		entry.After = b
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.srv.Store().Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, entry) }); err != nil {
		return 0, err
	}
	return entry.Seq, nil
}

func (s *Service) auditReq(r *http.Request, action, target string, detail any) {
	if _, err := s.auditReqSeq(r, action, target, detail); err != nil {
		s.log.Error("logs: audit entry not written", "action", action, "err", err)
	}
}

func (s *Service) auditReqSeq(r *http.Request, action, target string, detail any) (uint64, error) {
	id := auth.FromContext(r.Context())
	e := archive.Event{Actor: "anonymous", Action: action, Target: target, Detail: detail, Remote: r.RemoteAddr}
	if id != nil {
		e.Actor, e.Role = id.Actor(), string(id.Role)
	}
	return s.appendAudit(r.Context(), e)
}

// edgeKey answers the archive with the key the posting edge presented,
// pinned to that edge on first use.
func (s *Service) edgeKey(ctx context.Context, uai string) (ed25519.PublicKey, error) {
	p, _ := ctx.Value(ctxKey{}).(*presented)
	if p == nil || p.id == nil {
		return nil, errors.New("no edge identity")
	}
	if p.id.UAI != uai {
		p.err = fmt.Errorf("edge %s serves %s, not %s", p.id.EdgeID, p.id.UAI, uai)
		return nil, p.err
	}
	if len(p.pub) != ed25519.PublicKeySize {
		p.err = fmt.Errorf("no valid %s header", archive.EdgeKeyHeader)
		return nil, p.err
	}
	first, err := s.store.PinEdgeKey(ctx, p.id.EdgeID, uai, p.pub)
	if err != nil {
		p.err = err
		return nil, err
	}
	if first {
		s.Audit(ctx, archive.Event{Actor: p.id.Actor(), Role: string(p.id.Role), Action: "logs.edge_key.pin", Target: "edge/" + p.id.EdgeID,
			Detail: map[string]string{"uai": uai, "public_key": base64.StdEncoding.EncodeToString(p.pub)}})
	}
	return p.pub, nil
}

var (
	edgeOnly   = []auth.Role{auth.Edge}
	rssiOnly   = []auth.Role{auth.RSSI}
	gapRoles   = []auth.Role{auth.RSSI, auth.Technicien, auth.Chef}
	everyone   = []auth.Role{auth.RSSI, auth.Chef, auth.Technicien, auth.Auditeur}
	exportsFor = []auth.Role{auth.RSSI, auth.Chef}
)

func (s *Service) routes() {
	const v1 = "/api/v1"
	s.srv.AddSchema("ExportRequest", map[string]any{"type": "object", "required": []string{"uai", "from", "to", "reference", "motive"},
		"properties": map[string]any{
			"uai": map[string]any{"type": "string"}, "from": map[string]any{"type": "string", "description": "RFC 3339, ou date et heure de Paris"},
			"to": map[string]any{"type": "string"}, "client": map[string]any{"type": "string"}, "mac": map[string]any{"type": "string"},
			"user": map[string]any{"type": "string"}, "domain": map[string]any{"type": "string"},
			"reference": map[string]any{"type": "string", "description": "référence de la réquisition (numéro de procès-verbal)"},
			"motive":    map[string]any{"type": "string"},
		}})
	s.srv.AddSchema("Hold", map[string]any{"type": "object", "required": []string{"uai", "from", "to", "reference"},
		"properties": map[string]any{"id": map[string]any{"type": "integer"}, "uai": map[string]any{"type": "string"},
			"from": map[string]any{"type": "string", "format": "date-time"}, "to": map[string]any{"type": "string", "format": "date-time"},
			"client": map[string]any{"type": "string"}, "reference": map[string]any{"type": "string"}}})
	s.srv.AddSchema("BatchAck", map[string]any{"type": "object"})
	s.srv.AddSchema("GapList", map[string]any{"type": "object"})
	s.srv.AddSchema("HoldList", map[string]any{"type": "object"})
	s.srv.AddSchema("PurgeReport", map[string]any{"type": "object"})

	s.srv.Handle(api.Route{Method: "POST", Path: v1 + "/logs/batches", Roles: edgeOnly, Summary: "Déposer un lot signé du journal (segment scellé ou fin de segment ouvert)", Tag: "logs", Response: "BatchAck", Binary: true}, s.ingest)
	s.srv.Handle(api.Route{Method: "GET", Path: v1 + "/logs/gaps", Roles: gapRoles, Summary: "Lacunes des chaînes du journal d'un établissement", Tag: "logs", Response: "GapList",
		Query: map[string]string{"uai": "établissement (obligatoire)"}}, s.gaps)
	s.srv.Handle(api.Route{Method: "DELETE", Path: v1 + "/logs/keys/{edge}", Roles: rssiOnly, Summary: "Oublier la clé de scellement d'une passerelle (réinstallation)", Tag: "logs", Status: 204}, s.unpin)
	s.srv.Handle(api.Route{Method: "POST", Path: v1 + "/logs/purge", Roles: rssiOnly, Summary: "Lancer la purge de rétention maintenant", Tag: "logs", Response: "PurgeReport"}, s.purge)
	// Every role reaches the export handler so that a refused attempt is
	// audited too; the handler admits the RSSI and the school's chef.
	s.srv.Handle(api.Route{Method: "POST", Path: export.Path, Roles: everyone, Summary: "Extraction sur réquisition (ZIP signé) ; réservée au RSSI et au chef d'établissement", Tag: "exports", Request: "ExportRequest", Binary: true}, s.export)
	s.srv.Handle(api.Route{Method: "GET", Path: v1 + "/holds", Roles: rssiOnly, Summary: "Gels (conservation légale)", Tag: "holds", Response: "HoldList",
		Query: map[string]string{"all": "true pour inclure les gels levés"}}, s.listHolds)
	s.srv.Handle(api.Route{Method: "POST", Path: v1 + "/holds", Roles: rssiOnly, Summary: "Geler des enregistrements (établissement, période, poste facultatif)", Tag: "holds", Request: "Hold", Response: "Hold", Status: 201}, s.placeHold)
	s.refRoutes()
	s.srv.Handle(api.Route{Method: "POST", Path: v1 + "/holds/{id}/release", Roles: rssiOnly, Summary: "Lever un gel", Tag: "holds", Response: "Hold"}, s.releaseHold)
	s.whoRoutes()
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

func (s *Service) ingest(w http.ResponseWriter, r *http.Request) error {
	id := auth.FromContext(r.Context())
	p := &presented{id: id}
	if k, err := base64.StdEncoding.DecodeString(r.Header.Get(archive.EdgeKeyHeader)); err == nil {
		p.pub = k
	}
	select {
	case s.ingesting <- struct{}{}:
		defer func() { <-s.ingesting }()
	default:
		w.Header().Set("Retry-After", "5")
		return api.Errorf("busy", "l’archive reçoit déjà %d lots ; réessayez dans quelques secondes", cap(s.ingesting))
	}
	data, err := readBatch(r, s.cfg.MaxBatchBytes)
	if err != nil {
		return err
	}
	ack, err := s.arch.Ingest(context.WithValue(r.Context(), ctxKey{}, p), data)
	switch {
	case err == nil:
		return writeJSON(w, http.StatusOK, ack)
	case errors.Is(err, archive.ErrUnknownEdge):
		reason := "clé de scellement refusée"
		if p.err != nil {
			reason = p.err.Error()
		}
		return api.Errorf("forbidden", "lot refusé : %s", reason)
	case errors.Is(err, archive.ErrBadBatch):
		return api.Errorf("bad-request", "%v", err)
	case errors.Is(err, archive.ErrConflict):
		return api.Errorf("conflict", "%v", err)
	}
	return err
}

func (s *Service) gaps(w http.ResponseWriter, r *http.Request) error {
	uai := r.URL.Query().Get("uai")
	if uai == "" {
		return api.Errorf("bad-request", "paramètre uai obligatoire")
	}
	if id := auth.FromContext(r.Context()); id == nil || !id.CanSeeSchool(uai) {
		return api.Errorf("forbidden", "établissement %s hors de votre périmètre", uai)
	}
	g, err := s.store.Gaps(r.Context(), uai)
	if err != nil {
		return err
	}
	if g == nil {
		g = []archive.Gap{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"uai": uai, "gaps": g})
}

func (s *Service) unpin(w http.ResponseWriter, r *http.Request) error {
	edge := r.PathValue("edge")
	if err := s.store.UnpinEdgeKey(r.Context(), edge); err != nil {
		if errors.Is(err, archive.ErrNotFound) {
			return api.Errorf("not-found", "aucune clé pour la passerelle %s", edge)
		}
		return err
	}
	s.auditReq(r, "logs.edge_key.unpin", "edge/"+edge, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) purge(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.arch.Purge(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// schoolName looks the school up in the draft policy (for the summary).
func (s *Service) schoolName(ctx context.Context, uai string) string {
	d, err := s.srv.Store().Draft(ctx)
	if err != nil {
		return ""
	}
	for _, sc := range d.Policy.Schools {
		if sc.UAI == uai {
			return sc.Name
		}
	}
	return ""
}

// export builds a requisition export and streams it. Its SHA-256 goes in
// a trailer and in the audit entry.
func (s *Service) export(w http.ResponseWriter, r *http.Request) error {
	id := auth.FromContext(r.Context())
	var body export.APIRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return api.Errorf("bad-request", "corps JSON illisible : %v", err)
	}
	req, err := body.Request()
	if err != nil {
		return api.Errorf("validation", "%v", err)
	}
	query := map[string]any{"uai": req.UAI, "from": req.From, "to": req.To, "client": body.Client, "mac": req.MAC, "user": req.User,
		"domain": req.Domain, "reference": req.Reference, "motive": req.Motive}
	// Access: the RSSI, or the chef of this school. Denials are audited.
	switch {
	case id.Role == auth.RSSI:
	case id.Role == auth.Chef && id.CanSeeSchool(req.UAI):
	default:
		s.auditReq(r, "export.denied", "school/"+req.UAI, map[string]any{"query": query, "reason": "role " + string(id.Role) + " for school " + id.UAI})
		if id.Role == auth.Chef {
			return api.Errorf("forbidden", "un chef d'établissement n'exporte que les journaux de son établissement (%s)", id.UAI)
		}
		return api.Errorf("forbidden", "le rôle %s ne permet pas d'extraire les journaux", id.Role)
	}
	req.Exporter, req.Role = id.Actor(), string(id.Role)
	req.School = s.schoolName(r.Context(), req.UAI)
	if err := req.Validate(); err != nil {
		return api.Errorf("validation", "%s", strings.TrimPrefix(err.Error(), "export: "))
	}
	return s.streamExport(w, r, req, "vigie-export", query, nil)
}

// streamExport writes req's archive to w with its audit trail: an
// "export.start" entry before the first byte leaves, so that whatever
// happens to the download afterwards (client gone, server killed) the log
// shows that an export of this school was started, by whom and why; then
// "export" (records, bytes, SHA-256) when it completes, or
// "export.interrupted" (after how many bytes) when it fails. extra goes
// into every entry. Both exports, by criteria and by public address, go
// through here.
func (s *Service) streamExport(w http.ResponseWriter, r *http.Request, req export.Request, file string, query, extra map[string]any) error {
	details := func(kv map[string]any) map[string]any {
		kv["query"] = query
		for k, v := range extra {
			kv[k] = v
		}
		return kv
	}
	started, err := s.auditReqSeq(r, "export.start", "school/"+req.UAI, details(map[string]any{}))
	if err != nil {
		return fmt.Errorf("logs: export not started, audit entry not written: %w", err)
	}
	h := sha256.New()
	cw := &countingWriter{w: w, h: h, header: func() {
		hd := w.Header()
		hd.Set("Content-Type", "application/zip")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s-%s.zip"`, file, req.UAI, s.now().In(export.Paris).Format("20060102-150405")))
		hd.Set("Trailer", export.HashTrailer)
		w.WriteHeader(http.StatusOK)
	}}
	m, err := export.Write(r.Context(), cw, s.store, req, export.Options{Key: s.key, Now: s.now, Academie: s.cfg.Academie, TempDir: s.cfg.TempDir})
	if err == nil {
		// A client gone after the last Write is only seen here.
		err = http.NewResponseController(w).Flush()
	}
	if err != nil {
		s.auditReq(r, "export.interrupted", "school/"+req.UAI, details(map[string]any{"start_seq": started, "bytes": cw.n,
			"status": fmt.Sprintf("interrompue après %d octets", cw.n), "error": err.Error()}))
		if cw.n == 0 {
			return err
		}
		// Headers are gone: without the trailer, the client knows the
		// download is incomplete.
		s.log.Error("export failed while streaming", "file", file, "bytes", cw.n, "err", err)
		return nil
	}
	sum := hex.EncodeToString(h.Sum(nil))
	w.Header().Set(export.HashTrailer, sum)
	s.auditReq(r, "export", "school/"+req.UAI, details(map[string]any{"start_seq": started, "counts": m.Comptes, "sha256": sum, "bytes": cw.n,
		"status": "complète", "manifest_files": m.Fichiers}))
	return nil
}

type countingWriter struct {
	w      io.Writer
	h      io.Writer
	n      int64
	header func()
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n == 0 && c.header != nil {
		c.header()
		c.header = nil
	}
	c.h.Write(p)
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type holdBody struct {
	UAI       string `json:"uai"`
	From      string `json:"from"`
	To        string `json:"to"`
	Client    string `json:"client,omitempty"`
	Reference string `json:"reference"`
}

func (s *Service) listHolds(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.store.Holds(r.Context(), r.URL.Query().Get("all") != "true")
	if err != nil {
		return err
	}
	if hs == nil {
		hs = []archive.Hold{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"holds": hs})
}

func (s *Service) placeHold(w http.ResponseWriter, r *http.Request) error {
	var b holdBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return api.Errorf("bad-request", "corps JSON illisible : %v", err)
	}
	ar, err := export.APIRequest{UAI: b.UAI, From: b.From, To: b.To, Client: b.Client}.Request()
	if err != nil {
		return api.Errorf("validation", "%v", err)
	}
	id := auth.FromContext(r.Context())
	h, err := s.arch.PlaceHold(r.Context(), id.Actor(), string(id.Role), r.RemoteAddr,
		archive.Hold{UAI: ar.UAI, From: ar.From, To: ar.To, Client: ar.Client, Reference: strings.TrimSpace(b.Reference)})
	if err != nil {
		return api.Errorf("validation", "%s", strings.TrimPrefix(err.Error(), "archive: "))
	}
	return writeJSON(w, http.StatusCreated, h)
}

func (s *Service) releaseHold(w http.ResponseWriter, r *http.Request) error {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return api.Errorf("bad-request", "identifiant de gel %q invalide", r.PathValue("id"))
	}
	id := auth.FromContext(r.Context())
	h, err := s.arch.ReleaseHold(r.Context(), id.Actor(), string(id.Role), r.RemoteAddr, n)
	if errors.Is(err, archive.ErrNotFound) {
		return api.Errorf("not-found", "gel %d introuvable ou déjà levé", n)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}
