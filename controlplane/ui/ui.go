// Package ui is the control plane's web interface: server-rendered pages in
// French (html/template, CSS, a little JavaScript and the SVG charts all
// embedded in the binary: no CDN, no external font) for the académie's
// RSSI, the chefs d'établissement, the technicians and the auditors.
//
// The interface holds no state and is no second authority. People sign in
// through the control plane's auth service (the API's session cookie and
// CSRF token), and every read and every change a page makes goes through
// the JSON API, called in process with the caller's own session: the API's
// role checks, validation and audit entries apply to a click exactly as
// to any other client, and a page that forgot a check would still be
// refused. The few views the API has no route for (testing an address
// against the published policy, the rendered firewall, the statistics of
// the journal archive) are computed here, read-only, from the published
// bundle, the draft and the archive.
//
// Every string shown lives in one catalogue (catalog_fr.go) so that
// another language can follow.
package ui

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/auth/sso"
	"vigie/controlplane/publish"
	"vigie/controlplane/report"
	"vigie/controlplane/requisition"
	"vigie/controlplane/store"
	"vigie/journal/archive"
)

// templateFS holds the pages (templates/*.html) and the partials other
// features add to them (templates/partials/*.html, parsed with the layout:
// a partial redefines one of the empty hooks of parts.html).
//
//go:embed templates
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are what the interface is given.
type Deps struct {
	// API is the control plane's JSON API. Pages call it in process;
	// requests under /api/ are passed to it untouched.
	API *api.Server
	// Archive is the journal archive, optional: without it the dashboard
	// shows no statistics of blocked requests and no journal gaps.
	Archive archive.Store
	// SSO signs people in with the académie's identity provider
	// (optional).
	SSO *sso.Flow
	Log *slog.Logger
	Now func() time.Time
	// Requisitions keeps the exports transmitted to the AQSSI, optional:
	// without it exports are only downloaded.
	Requisitions *requisition.Vault
}

// Handler serves the pages.
type Handler struct {
	api     *api.Server
	st      store.Store
	auth    *auth.Service
	pub     *publish.Publisher
	archive archive.Store
	sso     *sso.Flow
	log     *slog.Logger
	now     func() time.Time

	mux    *http.ServeMux
	pages  map[string]*template.Template
	static http.Handler
	routes []route

	activity activityCache
	exports  exportFiles
	vault    *requisition.Vault
	// unblockLimit bounds the unblock requests per client address.
	unblockLimit unblockLimiter
}

// New parses the templates and assembles the routes.
func New(d Deps) (*Handler, error) {
	if d.API == nil {
		return nil, errors.New("ui: the API server is required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &Handler{api: d.API, st: d.API.Store(), auth: d.API.Auth(), pub: d.API.Publisher(), archive: d.Archive, sso: d.SSO,
		log: d.Log, now: d.Now, mux: http.NewServeMux(), vault: d.Requisitions}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	h.static = http.StripPrefix("/static/", staticFiles(http.FileServerFS(sub)))
	h.routesUI()
	return h, nil
}

// Role sets, named by who they are for. They mirror the API's: the UI
// only hides what the API would refuse anyway.
var (
	everyone    = []auth.Role{auth.RSSI, auth.Chef, auth.Technicien, auth.Auditeur, auth.AQSSI}
	rssiOnly    = []auth.Role{auth.RSSI}
	staff       = []auth.Role{auth.RSSI, auth.Technicien}
	schoolRoles = []auth.Role{auth.RSSI, auth.Technicien, auth.Chef}
	history     = []auth.Role{auth.RSSI, auth.Technicien, auth.Auditeur}
	logsRoles   = []auth.Role{auth.RSSI, auth.Chef}
	auditRoles  = []auth.Role{auth.RSSI, auth.Auditeur}
	aqssiRoles  = []auth.Role{auth.AQSSI}
)

// route is one page or form target.
type route struct {
	method, path string
	roles        []auth.Role
	// nav is the catalogue key of the menu entry ("" for no entry).
	nav string
	h   func(*request) error
}

// routesUI is every page, in menu order. Each page declares the roles that
// may open it; the API re-checks each call the page makes.
func (h *Handler) routesUI() {
	add := func(method, path string, roles []auth.Role, nav string, fn func(*request) error) {
		h.routes = append(h.routes, route{method: method, path: path, roles: roles, nav: nav, h: fn})
	}
	// Signing in and out need no session; everything else does.
	h.mux.HandleFunc("GET /connexion", h.loginForm)
	h.mux.HandleFunc("POST /connexion", h.loginSubmit)
	h.mux.HandleFunc("GET /connexion/academique", h.ssoStart)
	h.mux.HandleFunc("GET /connexion/academique/retour", h.ssoReturn)
	h.mux.Handle("GET /static/", h.static)
	// Unblock requests come from block pages, without a session.
	h.mux.HandleFunc("GET /deblocage", h.unblockPage)
	h.mux.HandleFunc("POST /deblocage", h.unblockSubmit)
	h.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})

	// The dashboard is everyone's first page; what it shows depends on
	// the role (a chef sees their school only, a technician no traffic).
	add("GET", "/{$}", everyone, "nav.dashboard", h.dashboard)
	add("GET", "/fragments/parc", everyone, "", h.dashboardFleet)
	add("GET", "/categories", staff, "nav.categories", h.categories)
	add("GET", "/listes", rssiOnly, "nav.lists", h.lists)
	add("POST", "/listes", rssiOnly, "", h.listCreate)
	add("GET", "/listes/{id}", rssiOnly, "", h.listShow)
	add("POST", "/listes/{id}/ajouter", rssiOnly, "", h.listAdd)
	add("POST", "/listes/{id}/retirer", rssiOnly, "", h.listRemove)
	add("POST", "/listes/{id}/supprimer", rssiOnly, "", h.listDelete)
	add("GET", "/profils", staff, "nav.profiles", h.profiles)
	add("POST", "/profils", rssiOnly, "", h.profilesSave)
	add("GET", "/profils/{id}/plages", staff, "", h.windowsPage)
	add("POST", "/profils/{id}/plages", rssiOnly, "", h.windowSave)
	add("POST", "/profils/{id}/plages/retirer", rssiOnly, "", h.windowRemove)
	add("GET", "/pare-feu", staff, "nav.firewall", h.firewall)
	add("POST", "/pare-feu/flux", rssiOnly, "", h.firewallAdd)
	add("POST", "/pare-feu/flux/retirer", rssiOnly, "", h.firewallRemove)
	add("GET", "/tester", schoolRoles, "nav.test", h.tester)
	add("GET", "/publier", history, "nav.publish", h.publishPage)
	add("POST", "/publier", rssiOnly, "", h.publishSubmit)
	add("POST", "/publier/retour/{serial}", rssiOnly, "", h.rollbackSubmit)
	add("GET", "/etablissements", schoolRoles, "nav.schools", h.schools)
	add("GET", "/etablissements/nouveau", rssiOnly, "", h.schoolNew)
	add("POST", "/etablissements/nouveau", rssiOnly, "", h.schoolSave)
	add("GET", "/etablissements/{uai}", schoolRoles, "", h.schoolShow)
	add("POST", "/etablissements/{uai}", rssiOnly, "", h.schoolSave)
	add("POST", "/etablissements/{uai}/passerelles", staff, "", h.edgeCreate)
	add("POST", "/passerelles/{id}/jeton", staff, "", h.edgeToken)
	add("POST", "/passerelles/{id}/retirer", rssiOnly, "", h.edgeDelete)
	// IP plans proposed by the départements, validated by the RSSI (ipplan.go).
	add("GET", "/plans-adressage", staff, "nav.ipplans", h.ipplans)
	add("GET", "/plans-adressage/proposer", ipplanProposers, "", h.proposeForm)
	add("POST", "/plans-adressage/proposer", ipplanProposers, "", h.proposeSubmit)
	add("GET", "/plans-adressage/{id}", staff, "", h.ipplanShow)
	add("POST", "/plans-adressage/{id}/valider", rssiOnly, "", h.ipplanValidate)
	add("POST", "/plans-adressage/{id}/refuser", rssiOnly, "", h.ipplanRefuse)
	add("GET", "/journaux", logsRoles, "nav.logs", h.logs)
	add("POST", "/journaux/exports", logsRoles, "", h.exportCreate)
	add("GET", "/journaux/qui", logsRoles, "", h.whoPage)
	add("POST", "/journaux/qui/export", logsRoles, "", h.whoExport)
	add("GET", "/journaux/exports/{token}", logsRoles, "", h.exportDownload)
	add("GET", "/journaux/exports/{token}/resume.html", logsRoles, "", h.exportSummary)
	add("POST", "/journaux/exports/{token}/transmettre", logsRoles, "", h.exportTransmit)
	add("GET", "/aqssi", aqssiRoles, "nav.aqssi", h.aqssiPage)
	add("GET", "/aqssi/{id}", aqssiRoles, "", h.aqssiDownload)
	add("POST", "/aqssi/demandes", aqssiRoles, "", h.aqssiAsk)
	add("GET", "/journaux/reference", logsRoles, "", h.refLookup)
	add("POST", "/journaux/gels", rssiOnly, "", h.holdCreate)
	add("POST", "/journaux/gels/{id}/lever", rssiOnly, "", h.holdRelease)
	add("GET", "/demandes", logsRoles, "nav.requests", h.unblockQueuePage)
	add("POST", "/demandes/reglage", rssiOnly, "", h.unblockSettingSave)
	// A chef decides their school's requests when the setting says so
	// (unblockDecide and the API check it).
	add("POST", "/demandes/{seq}", logsRoles, "", h.unblockDecide)
	add("GET", "/rapport-annuel", report.Roles, "nav.report", h.reportPage)
	add("GET", "/audit", auditRoles, "nav.audit", h.auditPage)
	add("GET", "/utilisateurs", rssiOnly, "nav.users", h.users)
	add("POST", "/utilisateurs", rssiOnly, "", h.userCreate)
	add("GET", "/utilisateurs/{login}", rssiOnly, "", h.userShow)
	add("POST", "/utilisateurs/{login}", rssiOnly, "", h.userUpdate)
	add("GET", "/utilisateurs/{login}/jetons", rssiOnly, "", h.userTokens)
	add("POST", "/utilisateurs/{login}/jetons/{id}/revoquer", rssiOnly, "", h.userTokenRevoke)
	add("GET", "/compte", everyone, "nav.account", h.account)
	add("GET", "/compte/mot-de-passe", everyone, "", h.passwordForm)
	add("POST", "/compte/mot-de-passe", everyone, "", h.passwordSubmit)
	add("POST", "/compte/jetons", everyone, "", h.tokenCreate)
	add("POST", "/compte/jetons/{id}/revoquer", everyone, "", h.tokenRevoke)
	add("POST", "/deconnexion", everyone, "", h.logout)

	for _, rt := range h.routes {
		h.mux.Handle(rt.method+" "+rt.path, h.page(rt))
	}
	h.mux.HandleFunc("/", h.notFoundPage)
}

// ServeHTTP sends /api/ to the API and serves the pages.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		h.api.ServeHTTP(w, r)
		return
	}
	securityHeaders(w.Header())
	h.mux.ServeHTTP(w, r)
}

// securityHeaders forbid everything a page does not need: no script,
// style, font or image from elsewhere, no inline script, no framing.
func securityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
}

// staticFiles lets browsers keep the embedded assets for a day: they only
// change with the binary.
func staticFiles(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		next.ServeHTTP(w, r)
	})
}

// allowed reports whether role may open a route.
func allowed(roles []auth.Role, role auth.Role) bool { return slices.Contains(roles, role) }
