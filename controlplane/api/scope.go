package api

import (
	"net/http"
	"strings"

	"vigie/controlplane/auth"
)

// SchoolScope refuses (403) a caller who may not see school uai and
// writes the refusal in the audit log, as the API's own school routes do,
// for the routes other packages add with Handle.
func (s *Server) SchoolScope(r *http.Request, uai string) error { return s.schoolScope(r, uai) }

// DepartementScope refuses (403, audited) a caller who may not see every
// school whose UAI starts with prefix ("067", the Bas-Rhin): a chef
// d'établissement (one school), a technicien whose scope does not hold
// the whole département.
func (s *Server) DepartementScope(r *http.Request, prefix string) error {
	id := identity(r)
	if id != nil && coversPrefix(id, prefix) {
		return nil
	}
	if err := s.auditDenial(r, "departement/"+prefix); err != nil {
		s.log.Error("cannot audit a refused access", "departement", prefix, "err", err)
	}
	return Errorf("forbidden", "département %s hors de votre périmètre", prefix)
}

func coversPrefix(id *auth.Identity, prefix string) bool {
	switch id.Role {
	case auth.Chef, auth.Edge:
		return false
	case auth.Technicien:
		if !id.Scoped() {
			return true
		}
		for _, p := range strings.Split(id.Scope, ",") {
			if p = strings.TrimSpace(p); p != "" && len(p) < 8 && strings.HasPrefix(prefix, p) {
				return true
			}
		}
		return false
	}
	return true
}

// auditDenial writes a refused access to the audit log. Through Audit,
// its transaction is detached from the request: a client that hangs up or
// half-closes right after its request must not keep its probe out of the
// log.
func (s *Server) auditDenial(r *http.Request, target string) error {
	return s.Audit(r, "access.denied", target, nil, map[string]string{"method": r.Method, "path": r.URL.Path})
}
