// Package auth says who is calling the control plane and what they may do:
// local accounts with argon2id password hashes, browser sessions carried by
// an HttpOnly cookie and protected against CSRF, bearer API tokens acting as
// their user, and per-edge bearer tokens. Who a person is comes from a
// Directory, so that an académie SSO (OIDC) can replace or complement the
// local accounts without touching the API.
package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Role is what a person may do. Roles are enforced server-side on every
// endpoint (package api); the UI only hides what the server would refuse.
type Role string

const (
	// RSSI authors the policy, publishes, rolls back, manages users and schools.
	RSSI Role = "rssi"
	// Chef is a chef d'établissement, scoped to one UAI: status of the
	// school and exports of its logs only.
	Chef Role = "chef_etablissement"
	// Technicien sees edge health and versions, never browsing data.
	Technicien Role = "technicien"
	// Auditeur reads the audit log.
	Auditeur Role = "auditeur"
	// AQSSI is the recteur's delegate: académie-wide, read-only except for
	// receiving the requisition exports the chefs transmit.
	AQSSI Role = "aqssi"
	// Edge is a school gateway authenticated by its edge token. It is not
	// a person's role and cannot be given to an account.
	Edge Role = "edge"
)

// Roles are the roles an account may have.
var Roles = []Role{RSSI, Chef, Technicien, Auditeur, AQSSI}

// ParseRole checks an account role.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", fmt.Errorf("auth: unknown role %q (rssi, chef_etablissement, technicien, auditeur, aqssi)", s)
	}
	return r, nil
}

// Via is how a request proved its identity.
type Via string

const (
	ViaSession Via = "session"
	ViaToken   Via = "token"
	ViaEdge    Via = "edge"
)

// Identity is the authenticated caller of one request.
type Identity struct {
	// UserID and Login identify a person (zero for an edge).
	UserID int64  `json:"user_id,omitempty"`
	Login  string `json:"login,omitempty"`
	Name   string `json:"name,omitempty"`
	Role   Role   `json:"role"`
	// UAI scopes a chef_etablissement (and an edge) to one school.
	UAI string `json:"uai,omitempty"`
	// Scope limits a technicien to some schools (see ParseScope); empty
	// means the whole académie.
	Scope string `json:"scope,omitempty"`
	// EdgeID is set for an edge.
	EdgeID string `json:"edge_id,omitempty"`
	Via    Via    `json:"via"`
	// TokenID is the API token used, when Via is token.
	TokenID int64 `json:"token_id,omitempty"`
	// MustChangePassword says the account signed in with a generated
	// password: its session may only change it (or sign out).
	MustChangePassword bool `json:"must_change_password,omitempty"`
	// SSO says the account signs in with the académie's identity provider.
	SSO bool `json:"sso,omitempty"`

	sessionHash string
	csrf        string
}

// Actor is the name written in the audit log.
func (id *Identity) Actor() string {
	if id.Role == Edge {
		return "edge:" + id.EdgeID
	}
	return id.Login
}

// CanSeeSchool reports whether the identity may see data of school uai:
// a chef d'établissement and an edge only their own, a scoped technicien
// only the schools of its scope.
func (id *Identity) CanSeeSchool(uai string) bool {
	switch id.Role {
	case Chef, Edge:
		return id.UAI != "" && id.UAI == uai
	case Technicien:
		return InScope(id.Scope, uai)
	}
	return true
}

// Scoped reports whether the identity sees only some schools, so that
// lists must be filtered with CanSeeSchool.
func (id *Identity) Scoped() bool {
	switch id.Role {
	case Chef, Edge:
		return true
	case Technicien:
		return strings.TrimSpace(id.Scope) != ""
	}
	return false
}

// ParseScope checks a technicien's scope: comma-separated UAI prefixes of
// digits (a département is "067", the Bas-Rhin; "068" the Haut-Rhin) and
// whole UAIs. It returns the scope normalised (upper case, no blanks).
func ParseScope(s string) (string, error) {
	var out []string
	for i, part := range strings.Split(s, ",") {
		p := strings.ToUpper(strings.TrimSpace(part))
		if p == "" {
			if strings.TrimSpace(s) == "" {
				return "", nil
			}
			return "", fmt.Errorf("auth: scope: element %d is empty", i+1)
		}
		if !validScopeItem(p) {
			return "", fmt.Errorf("auth: scope: element %d %q is neither a département prefix (2 to 7 digits, e.g. 067) nor a UAI (7 digits and a letter)", i+1, part)
		}
		out = append(out, p)
	}
	return strings.Join(out, ","), nil
}

func validScopeItem(p string) bool {
	if len(p) < 2 || len(p) > 8 {
		return false
	}
	for i, c := range p {
		if c >= '0' && c <= '9' {
			continue
		}
		if i == 7 && c >= 'A' && c <= 'Z' {
			continue
		}
		return false
	}
	return true
}

// InScope reports whether school uai belongs to scope (empty: all).
func InScope(scope, uai string) bool {
	if strings.TrimSpace(scope) == "" {
		return true
	}
	uai = strings.ToUpper(uai)
	for _, p := range strings.Split(scope, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if len(p) == 8 && p == uai || len(p) < 8 && strings.HasPrefix(uai, p) {
			return true
		}
	}
	return false
}

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the request's identity, nil when anonymous.
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(ctxKey{}).(*Identity)
	return id
}

// CSRFToken returns the token a page must echo in unsafe requests made with
// the session cookie ("" outside a session). UI templates put it in forms as
// the csrf_token field or send it in the X-CSRF-Token header.
func CSRFToken(ctx context.Context) string {
	if id := FromContext(ctx); id != nil {
		return id.csrf
	}
	return ""
}
