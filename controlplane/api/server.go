// Package api is the control plane's HTTP interface: REST JSON under
// /api/v1, described by the OpenAPI 3 document it serves at
// /api/v1/openapi.json, errors as RFC 9457 problem documents, collections
// paginated. Every route declares the roles allowed to call it and the
// server enforces them before the handler runs; handlers add the checks
// that depend on the object (a chef d'établissement sees only their school).
//
// Other parts of the control plane build on the same Server: the web UI
// mounts its pages with Mount, the log archive and requisition exports add
// documented JSON routes with Handle (under /api/v1/logs/, /api/v1/exports/
// and /api/v1/holds/, left free for them), and all get the caller's identity
// from auth.FromContext.
package api

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
)

// HandlerFunc handles one API request. A returned error is written as a
// problem document; a handler that wrote its answer returns nil.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Route is one documented endpoint.
type Route struct {
	// Method and Path as in a net/http pattern: "GET", "/api/v1/lists/{id}".
	Method, Path string
	// Roles may call the route; empty means anyone, even anonymous.
	Roles []auth.Role
	// Summary documents the route (OpenAPI summary).
	Summary string
	// Tag groups routes in the document.
	Tag string
	// Request and Response name schemas of the document ("" for none);
	// Status is the success status (200 when zero).
	Request, Response string
	Status            int
	// Query documents query parameters: name -> description.
	Query map[string]string
	// Binary marks a response that is not JSON (bundles, sections).
	Binary bool
}

// Public reports whether anonymous callers may use the route.
func (rt Route) Public() bool { return len(rt.Roles) == 0 }

// Allows reports whether role may call the route.
func (rt Route) Allows(role auth.Role) bool { return rt.Public() || slices.Contains(rt.Roles, role) }

// Config tunes the server.
type Config struct {
	// DataDir holds imported list trees.
	DataDir string
	// LongPoll is how long an edge's request for a newer bundle is held
	// (30 s: well under the usual 60 s proxy and load-balancer timeouts).
	LongPoll time.Duration
	// MaxBody bounds JSON request bodies (8 MiB: a list of 100,000 domains).
	MaxBody int64
	// HTTPClient downloads UT1 tarballs.
	HTTPClient *http.Client
	// StatusFlush is how often edge reports are written (500 ms).
	StatusFlush time.Duration
	// TrustedProxies are the reverse proxies in front of the API: from
	// them, the client is the last address of X-Forwarded-For that is not
	// a proxy (the audit log and the login limit need the real client).
	TrustedProxies []netip.Prefix
	Log            *slog.Logger
	Registry       prometheus.Registerer
	Now            func() time.Time
}

// Server is the control plane's HTTP handler.
type Server struct {
	st   store.Store
	auth *auth.Service
	pub  *publish.Publisher
	cfg  Config
	log  *slog.Logger
	now  func() time.Time

	mux      *http.ServeMux
	mu       sync.Mutex
	routes   []Route
	schemas  map[string]any
	edges    *edgeTracker
	versions *versionHashes
	explain  explainState
	// unblockSetting caches who approves unblock requests.
	unblockSetting settingCache
}

// New builds the server and its routes.
func New(st store.Store, a *auth.Service, pub *publish.Publisher, cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LongPoll <= 0 {
		cfg.LongPoll = 30 * time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 8 << 20
	}
	if cfg.StatusFlush <= 0 {
		cfg.StatusFlush = 500 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Minute}
	}
	s := &Server{st: st, auth: a, pub: pub, cfg: cfg, log: cfg.Log, now: cfg.Now,
		mux: http.NewServeMux(), schemas: map[string]any{}}
	s.explain.compiling = make(chan struct{}, 1)
	s.edges = newEdgeTracker(st, cfg.Log, cfg.Now)
	s.edges.offlineAfter = offlineAfter(cfg.LongPoll)
	s.versions = &versionHashes{st: st}
	if pub != nil {
		pub.SetSerialFloor(s.edges.maxReported)
	}
	s.registerEdgeMetrics()
	for name, sc := range schemas {
		s.schemas[name] = sc
	}
	s.routesV1()
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, Errorf("not-found", "aucune route %s %s", r.Method, r.URL.Path))
	})
	return s
}

// Run writes edge reports and failed sign-ins in batches until ctx ends,
// then flushes both.
func (s *Server) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.auth.Run(ctx)
		close(done)
	}()
	s.edges.run(ctx, s.cfg.StatusFlush)
	<-done
}

// Store, Auth and Publisher give mounted handlers the same parts.
func (s *Server) Store() store.Store            { return s.st }
func (s *Server) Auth() *auth.Service           { return s.auth }
func (s *Server) Publisher() *publish.Publisher { return s.pub }
func (s *Server) PublicKey() ed25519.PublicKey  { return s.pub.PublicKey() }

// ServeHTTP serves the API and what was mounted on it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.TrustedProxies) > 0 {
		r = s.realClient(r)
	}
	s.mux.ServeHTTP(w, r)
}

// realClient replaces a trusted proxy's address by the client's.
func (s *Server) realClient(r *http.Request) *http.Request {
	trusted := func(a netip.Addr) bool {
		for _, p := range s.cfg.TrustedProxies {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !trusted(peer.Addr()) {
		return r
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return r // a garbled header: keep the proxy's address
		}
		if !trusted(a) {
			r2 := r.Clone(r.Context())
			r2.RemoteAddr = netip.AddrPortFrom(a.Unmap(), 0).String()
			return r2
		}
	}
	return r
}

// Routes returns the documented routes (the role matrix test walks them).
func (s *Server) Routes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes)
}

// Handle adds a documented JSON route. Roles are enforced before h runs.
func (s *Server) Handle(rt Route, h HandlerFunc) {
	if rt.Status == 0 {
		rt.Status = http.StatusOK
	}
	s.mu.Lock()
	first := !slices.ContainsFunc(s.routes, func(o Route) bool { return o.Path == rt.Path })
	s.routes = append(s.routes, rt)
	s.mu.Unlock()
	if first {
		// Any other method on a known path gets a problem document (the
		// mux's own 405 is plain text), listing the allowed ones.
		path := rt.Path
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			var allowed []string
			for _, o := range s.Routes() {
				if o.Path == path {
					allowed = append(allowed, o.Method)
				}
			}
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			WriteProblem(w, r, Errorf("method-not-allowed", "%s n'accepte que %s", path, strings.Join(allowed, ", ")))
		})
	}
	s.mux.Handle(rt.Method+" "+rt.Path, s.guard(rt.Roles, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			p := WriteProblem(w, r, err)
			if p.Status >= 500 {
				s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
		}
	}))
}

// AddSchema adds a named schema to the OpenAPI document, for routes added
// with Handle by other packages.
func (s *Server) AddSchema(name string, schema any) {
	s.mu.Lock()
	s.schemas[name] = schema
	s.mu.Unlock()
}

// Mount serves undocumented handlers (web pages, assets) behind the same
// authentication: the identity is in the request's context. With roles,
// callers outside them get a problem document; pages that prefer to
// redirect to a login form mount without roles and check themselves.
func (s *Server) Mount(pattern string, h http.Handler, roles ...auth.Role) {
	s.mux.Handle(pattern, s.guard(roles, h.ServeHTTP))
}

// guard authenticates the request, enforces roles and puts the identity
// in the context.
func (s *Server) guard(roles []auth.Role, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.auth.Authenticate(r)
		if err != nil {
			// A public route still answers a caller with a stale cookie.
			if len(roles) != 0 || !strings.HasPrefix(r.URL.Path, "/api/v1/session") {
				WriteProblem(w, r, err)
				return
			}
			id = nil
		}
		if len(roles) > 0 {
			if id == nil {
				WriteProblem(w, r, auth.ErrUnauthenticated)
				return
			}
			if !slices.Contains(roles, id.Role) {
				WriteProblem(w, r, Errorf("forbidden", "le rôle %s ne permet pas %s %s", id.Role, r.Method, r.URL.Path))
				return
			}
		}
		if id != nil && id.Via == auth.ViaSession && id.MustChangePassword && !passwordChangeAllowed(r) {
			WriteProblem(w, r, Errorf("password-change-required", "le mot de passe de ce compte a été généré : changez-le (POST /api/v1/me/password) avant toute autre chose"))
			return
		}
		if id != nil {
			r = r.WithContext(auth.WithIdentity(r.Context(), id))
		}
		next(w, r)
	})
}

// passwordChangeAllowed lists what a session with a generated password may
// do: see who it is, change the password, sign out. Pages of the UI mounted
// here check the same flag and send the browser to the form.
func passwordChangeAllowed(r *http.Request) bool {
	switch r.Method + " " + r.URL.Path {
	case "GET /api/v1/me", "POST /api/v1/me/password", "DELETE /api/v1/session":
		return true
	}
	return !strings.HasPrefix(r.URL.Path, "/api/")
}

// remote is the client address written in the audit log.
func remote(r *http.Request) string {
	return r.RemoteAddr
}

func identity(r *http.Request) *auth.Identity { return auth.FromContext(r.Context()) }

func actor(r *http.Request) publish.Actor {
	id := identity(r)
	if id == nil {
		return publish.Actor{Name: "anonymous", Remote: remote(r)}
	}
	return publish.Actor{Name: id.Actor(), Role: string(id.Role), Remote: remote(r)}
}

// role sets, named by who they are for.
var (
	rssiOnly     = []auth.Role{auth.RSSI}
	staff        = []auth.Role{auth.RSSI, auth.Technicien}
	historyRoles = []auth.Role{auth.RSSI, auth.Technicien, auth.Auditeur}
	schoolRoles  = []auth.Role{auth.RSSI, auth.Technicien, auth.Chef}
	auditRoles   = []auth.Role{auth.Auditeur, auth.RSSI}
	everyone     = []auth.Role{auth.RSSI, auth.Chef, auth.Technicien, auth.Auditeur, auth.AQSSI}
	edgeOnly     = []auth.Role{auth.Edge}
	unblockRoles = []auth.Role{auth.RSSI, auth.Chef}
)

// routesV1 is the whole API, in the order of the document. Roles follow
// the issue: the RSSI authors and publishes; a chef d'établissement sees
// their school's status; a technicien sees edges, versions and the policy
// structure but no browsing data; an auditeur reads the audit log and the
// history of versions; an edge talks only to the edge endpoints.
func (s *Server) routesV1() {
	const v1 = "/api/v1"
	page := map[string]string{"limit": "taille de la page (défaut 100, max 1000)", "cursor": "curseur renvoyé par la page précédente (next)"}

	// Discovery and health need no account: edges and monitoring use them.
	s.Handle(Route{Method: "GET", Path: v1 + "/openapi.json", Summary: "Ce document OpenAPI", Tag: "meta", Response: "OpenAPI"}, s.openapi)
	s.Handle(Route{Method: "GET", Path: v1 + "/health", Summary: "État du plan de contrôle", Tag: "meta", Response: "Health"}, s.health)
	s.Handle(Route{Method: "GET", Path: v1 + "/public-key", Summary: "Clé publique de signature de l'académie (PEM)", Tag: "meta", Binary: true}, s.publicKey)

	// Sessions and tokens: every account manages its own.
	s.Handle(Route{Method: "POST", Path: v1 + "/session", Summary: "Se connecter (cookie de session)", Tag: "session", Request: "Login", Response: "SessionInfo", Status: 201}, s.login)
	s.Handle(Route{Method: "DELETE", Path: v1 + "/session", Roles: everyone, Summary: "Se déconnecter", Tag: "session", Status: 204}, s.logout)
	s.Handle(Route{Method: "GET", Path: v1 + "/me", Roles: everyone, Summary: "Identité courante", Tag: "session", Response: "Identity"}, s.me)
	s.Handle(Route{Method: "GET", Path: v1 + "/tokens", Roles: everyone, Summary: "Mes jetons d'API", Tag: "session", Response: "TokenPage", Query: page}, s.listTokens)
	s.Handle(Route{Method: "POST", Path: v1 + "/tokens", Roles: everyone, Summary: "Créer un jeton d'API (affiché une seule fois)", Tag: "session", Request: "TokenRequest", Response: "TokenCreated", Status: 201}, s.createToken)
	s.Handle(Route{Method: "DELETE", Path: v1 + "/tokens/{id}", Roles: everyone, Summary: "Révoquer un de mes jetons", Tag: "session", Status: 204}, s.revokeToken)
	s.Handle(Route{Method: "POST", Path: v1 + "/me/password", Roles: everyone, Summary: "Changer mon mot de passe (met fin à mes sessions et jetons ; renvoie une nouvelle session)", Tag: "session", Request: "PasswordChange", Response: "SessionInfo"}, s.changePassword)

	// Accounts: the RSSI manages them; listing them is an audited read.
	s.Handle(Route{Method: "GET", Path: v1 + "/users", Roles: rssiOnly, Summary: "Comptes", Tag: "users", Response: "UserPage", Query: page}, s.listUsers)
	s.Handle(Route{Method: "POST", Path: v1 + "/users", Roles: rssiOnly, Summary: "Créer un compte", Tag: "users", Request: "UserRequest", Response: "UserCreated", Status: 201}, s.createUser)
	s.Handle(Route{Method: "PATCH", Path: v1 + "/users/{login}", Roles: rssiOnly, Summary: "Modifier un compte (rôle, établissement, désactivation, mot de passe : ses sessions et jetons prennent fin)", Tag: "users", Request: "UserPatch", Response: "User"}, s.patchUser)
	s.Handle(Route{Method: "GET", Path: v1 + "/users/{login}/tokens", Roles: rssiOnly, Summary: "Jetons d'API d'un compte", Tag: "users", Response: "TokenPage", Query: page}, s.listUserTokens)
	s.Handle(Route{Method: "DELETE", Path: v1 + "/users/{login}/tokens/{id}", Roles: rssiOnly, Summary: "Révoquer un jeton d'API d'un compte", Tag: "users", Status: 204}, s.revokeUserToken)

	// The draft policy document and its parts.
	s.Handle(Route{Method: "GET", Path: v1 + "/draft", Roles: rssiOnly, Summary: "Brouillon de la politique", Tag: "draft", Response: "Draft"}, s.getDraft)
	s.Handle(Route{Method: "PUT", Path: v1 + "/draft", Roles: rssiOnly, Summary: "Remplacer le document du brouillon (sans les listes)", Tag: "draft", Request: "DraftPut", Response: "Draft"}, s.putDraft)
	s.Handle(Route{Method: "GET", Path: v1 + "/draft/diff", Roles: rssiOnly, Summary: "Différences avec la dernière version publiée", Tag: "draft", Response: "Diff"}, s.draftDiff)
	s.Handle(Route{Method: "POST", Path: v1 + "/draft/validate", Roles: rssiOnly, Summary: "Valider et compiler le brouillon sans publier", Tag: "draft", Response: "ValidateResult"}, s.validateDraft)
	s.Handle(Route{Method: "GET", Path: v1 + "/categories", Roles: everyone, Summary: "Catégories de la dernière version publiée", Tag: "draft", Response: "CategoryPage", Query: page}, s.listCategories)
	s.Handle(Route{Method: "PUT", Path: v1 + "/categories/{id}", Roles: rssiOnly, Summary: "Créer ou renommer une catégorie", Tag: "draft", Request: "Category", Response: "Category"}, s.putCategory)
	s.Handle(Route{Method: "GET", Path: v1 + "/profiles", Roles: staff, Summary: "Profils du brouillon", Tag: "draft", Response: "ProfilePage", Query: page}, s.listProfiles)
	s.Handle(Route{Method: "PUT", Path: v1 + "/profiles/{id}", Roles: rssiOnly, Summary: "Créer ou remplacer un profil", Tag: "draft", Request: "Profile", Response: "Profile"}, s.putProfile)
	s.Handle(Route{Method: "DELETE", Path: v1 + "/profiles/{id}", Roles: rssiOnly, Summary: "Supprimer un profil", Tag: "draft", Status: 204}, s.deleteProfile)
	s.Handle(Route{Method: "GET", Path: v1 + "/firewall", Roles: staff, Summary: "Matrice de flux du brouillon", Tag: "draft", Response: "Firewall"}, s.getFirewall)
	s.Handle(Route{Method: "PUT", Path: v1 + "/firewall", Roles: rssiOnly, Summary: "Remplacer la matrice de flux", Tag: "draft", Request: "Firewall", Response: "Firewall"}, s.putFirewall)

	// Schools: a chef sees only their own; the RSSI edits the IP plans.
	s.Handle(Route{Method: "GET", Path: v1 + "/schools", Roles: schoolRoles, Summary: "Établissements", Tag: "schools", Response: "SchoolPage", Query: page}, s.listSchools)
	s.Handle(Route{Method: "GET", Path: v1 + "/schools/{uai}", Roles: schoolRoles, Summary: "Un établissement", Tag: "schools", Response: "School"}, s.getSchool)
	s.Handle(Route{Method: "PUT", Path: v1 + "/schools/{uai}", Roles: rssiOnly, Summary: "Créer ou modifier un établissement (plan d'adressage)", Tag: "schools", Request: "School", Response: "School"}, s.putSchool)
	s.Handle(Route{Method: "DELETE", Path: v1 + "/schools/{uai}", Roles: rssiOnly, Summary: "Retirer un établissement", Tag: "schools", Status: 204}, s.deleteSchool)
	s.Handle(Route{Method: "POST", Path: v1 + "/explain", Roles: schoolRoles, Summary: "Tester une adresse : verdict et listes concernées pour une zone (version en vigueur, ou brouillon pour le RSSI)", Tag: "schools", Request: "ExplainRequest", Response: "ExplainResult"}, s.explainAddress)
	s.Handle(Route{Method: "POST", Path: v1 + "/schools/{uai}/exceptions", Roles: unblockRoles, Summary: "Ajouter des exceptions à un établissement (le chef : le sien, si le réglage des demandes de déblocage le permet)", Tag: "schools", Request: "EntriesChange", Response: "SchoolExceptions"}, s.addSchoolExceptions)
	s.Handle(Route{Method: "GET", Path: v1 + "/settings/unblock", Roles: unblockRoles, Summary: "Qui accepte les demandes de déblocage", Tag: "schools", Response: "UnblockSettings"}, s.getUnblockSettings)
	s.Handle(Route{Method: "PUT", Path: v1 + "/settings/unblock", Roles: rssiOnly, Summary: "Régler qui accepte les demandes de déblocage (RSSI seul, ou aussi le chef pour son établissement)", Tag: "schools", Request: "UnblockSettings", Response: "UnblockSettings"}, s.putUnblockSettings)
	s.Handle(Route{Method: "GET", Path: v1 + "/schools/{uai}/status", Roles: schoolRoles, Summary: "Version appliquée par les passerelles de l'établissement", Tag: "schools", Response: "SchoolStatus"}, s.schoolStatus)
	// IP plans proposed by the départements' technicians (ipplan.go).
	s.routesIPPlan(v1)

	// Custom lists and their entries (per-school exceptions are lists with a school).
	s.Handle(Route{Method: "GET", Path: v1 + "/lists", Roles: rssiOnly, Summary: "Listes personnalisées", Tag: "lists", Response: "ListPage", Query: page}, s.listLists)
	s.Handle(Route{Method: "POST", Path: v1 + "/lists", Roles: rssiOnly, Summary: "Créer une liste", Tag: "lists", Request: "ListCreate", Response: "List", Status: 201}, s.createList)
	s.Handle(Route{Method: "GET", Path: v1 + "/lists/{id}", Roles: rssiOnly, Summary: "Une liste", Tag: "lists", Response: "List"}, s.getList)
	s.Handle(Route{Method: "PATCH", Path: v1 + "/lists/{id}", Roles: rssiOnly, Summary: "Modifier une liste", Tag: "lists", Request: "ListPatch", Response: "List"}, s.patchList)
	s.Handle(Route{Method: "DELETE", Path: v1 + "/lists/{id}", Roles: rssiOnly, Summary: "Supprimer une liste et ses entrées", Tag: "lists", Status: 204}, s.deleteList)
	s.Handle(Route{Method: "GET", Path: v1 + "/lists/{id}/entries", Roles: rssiOnly, Summary: "Entrées d'une liste", Tag: "lists", Response: "EntryPage", Query: page}, s.listEntries)
	s.Handle(Route{Method: "POST", Path: v1 + "/lists/{id}/entries", Roles: rssiOnly, Summary: "Ajouter des entrées", Tag: "lists", Request: "EntriesChange", Response: "EntriesResult"}, s.addEntries)
	s.Handle(Route{Method: "POST", Path: v1 + "/lists/{id}/entries/remove", Roles: rssiOnly, Summary: "Retirer des entrées", Tag: "lists", Request: "EntriesChange", Response: "EntriesResult"}, s.removeEntries)

	// Publishing and history.
	s.Handle(Route{Method: "POST", Path: v1 + "/publish", Roles: rssiOnly, Summary: "Publier le brouillon (valider, compiler, signer, réveiller les passerelles)", Tag: "versions", Request: "PublishRequest", Response: "Version", Status: 201}, s.publish)
	s.Handle(Route{Method: "GET", Path: v1 + "/versions", Roles: historyRoles, Summary: "Versions publiées, de la plus récente à la plus ancienne", Tag: "versions", Response: "VersionPage", Query: page}, s.listVersions)
	s.Handle(Route{Method: "GET", Path: v1 + "/versions/{serial}", Roles: historyRoles, Summary: "Une version", Tag: "versions", Response: "Version"}, s.getVersion)
	s.Handle(Route{Method: "GET", Path: v1 + "/versions/{serial}/source", Roles: rssiOnly, Summary: "Source d'une version (politique et listes)", Tag: "versions", Response: "Source"}, s.versionSource)
	s.Handle(Route{Method: "GET", Path: v1 + "/versions/{serial}/bundle", Roles: staff, Summary: "Bundle signé d'une version (installation hors ligne)", Tag: "versions", Binary: true}, s.versionBundle)
	s.Handle(Route{Method: "POST", Path: v1 + "/versions/{serial}/rollback", Roles: rssiOnly, Summary: "Republier le contenu d'une version sous un nouveau numéro", Tag: "versions", Request: "PublishRequest", Response: "Version", Status: 201}, s.rollback)
	s.Handle(Route{Method: "POST", Path: v1 + "/imports/ut1", Roles: rssiOnly, Summary: "Importer les listes UT1 dans le brouillon (téléchargement http(s) contrôlé par le MD5 publié ; fichier local : vigie controlplane import-ut1)", Tag: "versions", Request: "ImportRequest", Response: "ImportResult", Status: 201}, s.importUT1)

	// Edges: health, enrolment and token rotation for the RSSI and the
	// technicians (within their scope); removal by the RSSI.
	s.Handle(Route{Method: "GET", Path: v1 + "/edges", Roles: staff, Summary: "Passerelles et version appliquée", Tag: "edges", Response: "EdgePage", Query: map[string]string{"limit": page["limit"], "cursor": page["cursor"], "uai": "filtrer par établissement"}}, s.listEdges)
	s.Handle(Route{Method: "POST", Path: v1 + "/edges", Roles: staff, Summary: "Enregistrer une passerelle (jeton affiché une seule fois)", Tag: "edges", Request: "EdgeCreate", Response: "EdgeCreated", Status: 201}, s.createEdge)
	s.Handle(Route{Method: "GET", Path: v1 + "/edges/{id}", Roles: staff, Summary: "Une passerelle", Tag: "edges", Response: "Edge"}, s.getEdge)
	s.Handle(Route{Method: "DELETE", Path: v1 + "/edges/{id}", Roles: rssiOnly, Summary: "Retirer une passerelle (son jeton cesse de fonctionner)", Tag: "edges", Status: 204}, s.deleteEdge)
	s.Handle(Route{Method: "POST", Path: v1 + "/edges/{id}/token", Roles: staff, Summary: "Renouveler le jeton d'une passerelle", Tag: "edges", Response: "EdgeCreated", Status: 201}, s.rotateEdgeToken)

	// What edges call, with their edge token.
	s.Handle(Route{Method: "GET", Path: v1 + "/edge/bundle", Roles: edgeOnly, Summary: "Attendre une version plus récente que after (long-poll)", Tag: "edge", Binary: true,
		Query: map[string]string{"after": "numéro de la version détenue", "part": "full (défaut), manifest, ou delta (manifeste et sections changées depuis after, en un envoi)", "wait": "attente maximale en secondes (défaut et max 30)",
			"applied": "version appliquée depuis la dernière attente (compte rendu, avec hash et software, quand les réponses portent X-Vigie-Report-In-Poll)",
			"hash":    "empreinte de la version appliquée (avec applied)", "software": "version du logiciel de la passerelle (avec applied)"}}, s.edgeBundle)
	s.Handle(Route{Method: "GET", Path: v1 + "/edge/sections/{hash}", Roles: edgeOnly, Summary: "Une section de bundle par son SHA-256", Tag: "edge", Binary: true}, s.edgeSection)
	s.Handle(Route{Method: "POST", Path: v1 + "/edge/status", Roles: edgeOnly, Summary: "Compte rendu de la passerelle (version appliquée ou erreur)", Tag: "edge", Request: "EdgeReport", Status: 204}, s.edgeStatus)

	// The audit log: every read of it is itself audited.
	s.Handle(Route{Method: "GET", Path: v1 + "/audit", Roles: auditRoles, Summary: "Journal d'audit", Tag: "audit", Response: "AuditPage", Query: page}, s.listAudit)
	s.Handle(Route{Method: "GET", Path: v1 + "/audit/verify", Roles: auditRoles, Summary: "Vérifier la chaîne du journal d'audit", Tag: "audit", Response: "AuditVerify",
		Query: map[string]string{"anchor_seq": "numéro d'une entrée notée auparavant", "anchor_hash": "son empreinte"}}, s.verifyAudit)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	h := s.pub.Head()
	return writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "serial": h.Serial, "hash": h.Hash, "time": s.now().UTC()})
}

func (s *Server) publicKey(w http.ResponseWriter, r *http.Request) error {
	pem, err := publicKeyPEM(s.pub.PublicKey())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err = w.Write(pem)
	return err
}
