package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
)

// Problem is an RFC 9457 problem document. Type is a stable URN per kind
// of problem ("urn:vigie:problem:validation"), so that clients branch on it
// rather than on the French title.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists each problem of an invalid input, naming its place.
	Errors []string `json:"errors,omitempty"`

	retryAfter time.Duration
	cause      error
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%s: %s", p.Title, p.Detail)
	}
	return p.Title
}

func (p *Problem) Unwrap() error { return p.cause }

// Problem kinds, with their status and French title.
var kinds = map[string]struct {
	status int
	title  string
}{
	"bad-request":              {http.StatusBadRequest, "Requête invalide"},
	"unauthenticated":          {http.StatusUnauthorized, "Authentification requise"},
	"forbidden":                {http.StatusForbidden, "Accès refusé"},
	"csrf":                     {http.StatusForbidden, "Jeton CSRF absent ou incorrect"},
	"not-found":                {http.StatusNotFound, "Introuvable"},
	"method-not-allowed":       {http.StatusMethodNotAllowed, "Méthode non autorisée"},
	"conflict":                 {http.StatusConflict, "Conflit"},
	"edge-ahead":               {http.StatusConflict, "La passerelle a une version plus récente que le plan de contrôle"},
	"payload-too-large":        {http.StatusRequestEntityTooLarge, "Requête trop volumineuse"},
	"unsupported-media":        {http.StatusUnsupportedMediaType, "Type de contenu non pris en charge"},
	"validation":               {http.StatusUnprocessableEntity, "Données invalides"},
	"rate-limited":             {http.StatusTooManyRequests, "Trop de tentatives"},
	"internal":                 {http.StatusInternalServerError, "Erreur interne"},
	"upstream":                 {http.StatusBadGateway, "Source externe injoignable ou invalide"},
	"nothing-to-publish":       {http.StatusConflict, "Rien à publier"},
	"precondition-failed":      {http.StatusPreconditionFailed, "Le brouillon a changé entre-temps"},
	ExplainNothingPublished:    {http.StatusUnprocessableEntity, "Rien n'est encore publié"},
	ExplainNoSchool:            {http.StatusUnprocessableEntity, "Établissement absent de cette version"},
	ExplainNoZone:              {http.StatusUnprocessableEntity, "Zone absente de cette version"},
	ExplainBusy:                {http.StatusServiceUnavailable, "Compilation du brouillon déjà en cours"},
	ExplainDraftInvalid:        {http.StatusUnprocessableEntity, "Le brouillon ne se compile pas"},
	"busy":                     {http.StatusTooManyRequests, "Trop de connexions simultanées"},
	"password-change-required": {http.StatusForbidden, "Changement de mot de passe requis"},
	"sso-account":              {http.StatusConflict, "Compte de l’identité académique"},
}

// ProblemType is the type URI of a kind.
func ProblemType(kind string) string { return "urn:vigie:problem:" + kind }

// Errorf returns a problem of a kind (see kinds) with a detail.
func Errorf(kind, format string, args ...any) *Problem {
	k, ok := kinds[kind]
	if !ok {
		k = kinds["internal"]
		kind = "internal"
	}
	return &Problem{Type: ProblemType(kind), Title: k.title, Status: k.status, Detail: fmt.Sprintf(format, args...)}
}

// toProblem maps an error from the layers below onto a problem document.
// Unknown errors become a 500 whose detail hides the internals.
func toProblem(err error) *Problem {
	var p *Problem
	var ve *publish.ValidationError
	var rl *auth.RateLimitedError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &ve):
		p = Errorf("validation", "le brouillon ne peut pas être publié tel quel")
		p.Errors = ve.Problems
	case errors.As(err, &rl) && rl.Busy:
		p = Errorf("busy", "le serveur vérifie déjà autant de mots de passe qu’il le permet ; réessayez dans %s", rl.RetryAfter.Round(time.Second))
		p.retryAfter = rl.RetryAfter
	case errors.As(err, &rl):
		p = Errorf("rate-limited", "réessayez dans %s", rl.RetryAfter.Round(time.Second))
		p.retryAfter = rl.RetryAfter
	case errors.As(err, &mbe):
		p = Errorf("payload-too-large", "au plus %d octets", mbe.Limit)
	case errors.Is(err, auth.ErrWeakPassword):
		p = Errorf("validation", "nouveau mot de passe refusé : %d caractères au moins, 1024 octets au plus, différent de l’actuel", auth.MinPasswordLen)
	case errors.Is(err, auth.ErrSSOAccount):
		p = Errorf("sso-account", "ce compte se connecte avec le compte académique : son mot de passe se change auprès de l’académie")
	case errors.Is(err, auth.ErrPassword):
		p = Errorf("unauthenticated", "identifiant ou mot de passe incorrect")
	case errors.Is(err, auth.ErrUnauthenticated):
		p = Errorf("unauthenticated", "jeton ou session invalide ou expiré")
	case errors.Is(err, auth.ErrCSRF):
		p = Errorf("csrf", "renvoyez le jeton CSRF de la session dans l'en-tête X-CSRF-Token")
	case errors.Is(err, store.ErrNotFound):
		p = Errorf("not-found", "%s", strings.TrimPrefix(err.Error(), "store: "))
	case errors.Is(err, store.ErrConflict):
		p = Errorf("conflict", "%s", strings.TrimPrefix(err.Error(), "store: "))
	default:
		p = Errorf("internal", "erreur interne, consignée dans le journal du serveur")
	}
	p.cause = err
	return p
}

// WriteProblem writes err as a problem document. Handlers mounted by other
// packages use it so that every error of the API looks alike.
func WriteProblem(w http.ResponseWriter, r *http.Request, err error) *Problem {
	p := toProblem(err)
	p.Instance = r.URL.Path
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="vigie"`)
	}
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(p.retryAfter.Seconds()+0.999)))
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
	return p
}
