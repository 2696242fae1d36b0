// Package sso signs people in with the académie's identity provider
// (OpenID Connect: authorization code with PKCE, state and nonce) and maps
// the claims it asserts onto a Vigie role and, for a chef
// d'établissement, a school. Local accounts stay for break-glass.
package sso

import (
	"fmt"
	"strconv"
	"strings"

	"vigie/controlplane/auth"
	"vigie/rules/policy"
)

// RoleRule gives Role to whoever's claim Claim equals Value (or, for a
// list claim such as groups, contains it). Rules are tried in order: the
// first that matches wins, so list the most privileged first.
type RoleRule struct {
	Claim string `yaml:"claim"`
	Value string `yaml:"value"`
	Role  string `yaml:"role"`
}

// Mapping turns an identity provider's claims into an account.
type Mapping struct {
	// LoginClaim names the account (default preferred_username, then
	// email); NameClaim is the display name (default name).
	LoginClaim string `yaml:"login_claim,omitempty"`
	NameClaim  string `yaml:"name_claim,omitempty"`
	// UAIClaim carries a chef's school, as the académies' directories do
	// (FrEduRneResp, FrEduRne: "0671234X$UAJ$PU$..."; the UAI is what
	// precedes the first $).
	UAIClaim string     `yaml:"uai_claim,omitempty"`
	Roles    []RoleRule `yaml:"roles"`
}

// Refusal explains, in French, why a signed-in person gets no access.
type Refusal struct {
	Login  string
	Reason string
}

func (r *Refusal) Error() string { return "sso: refused " + r.Login + ": " + r.Reason }

// Check validates the mapping, naming the faulty field.
func (m Mapping) Check() error {
	if len(m.Roles) == 0 {
		return fmt.Errorf("roles: at least one rule is required")
	}
	for i, r := range m.Roles {
		role, err := auth.ParseRole(r.Role)
		if err != nil {
			return fmt.Errorf("roles[%d].role: %w", i, err)
		}
		if r.Claim == "" || r.Value == "" {
			return fmt.Errorf("roles[%d]: claim and value are required", i)
		}
		if role == auth.Chef && m.UAIClaim == "" {
			return fmt.Errorf("roles[%d]: a chef_etablissement rule needs uai_claim", i)
		}
	}
	return nil
}

// Account is what a person is in Vigie, from their claims.
type Account struct {
	Login, Name string
	Role        auth.Role
	UAI         string
}

// Map applies the mapping to claims (the ID token's, merged with the
// userinfo answer). A person matching no rule, or a chef without exactly
// one valid UAI, gets a *Refusal.
func (m Mapping) Map(claims map[string]any) (Account, error) {
	var a Account
	for _, c := range []string{m.LoginClaim, "preferred_username", "email"} {
		if c == "" {
			continue
		}
		if vs := strings1(claims[c]); len(vs) == 1 && vs[0] != "" {
			a.Login = strings.ToLower(strings.TrimSpace(vs[0]))
			break
		}
	}
	if !validLogin(a.Login) {
		return a, &Refusal{Login: a.Login, Reason: "l’identité académique ne fournit pas d’identifiant utilisable (attribut " + quoteClaim(m.LoginClaim, "preferred_username") + ")."}
	}
	if vs := strings1(claims[orDefault(m.NameClaim, "name")]); len(vs) == 1 {
		a.Name = bounded(vs[0], 100)
	}
	for _, r := range m.Roles {
		if contains(strings1(claims[r.Claim]), r.Value) {
			a.Role = auth.Role(r.Role)
			break
		}
	}
	if a.Role == "" {
		return a, &Refusal{Login: a.Login, Reason: "votre compte académique ne porte aucun des attributs qui donnent accès à Vigie (groupes ou fonctions configurés par l’académie). Demandez à la RSSI de votre académie de vous ouvrir l’accès."}
	}
	if a.Role == auth.Chef {
		uais := map[string]bool{}
		for _, v := range strings1(claims[m.UAIClaim]) {
			u, _, _ := strings.Cut(v, "$")
			u = strings.ToUpper(strings.TrimSpace(u))
			if policy.ValidUAI(u) {
				uais[u] = true
			}
		}
		switch len(uais) {
		case 1:
			for u := range uais {
				a.UAI = u
			}
		case 0:
			return a, &Refusal{Login: a.Login, Reason: "votre compte académique vous désigne comme chef d’établissement, mais ne nomme pas d’établissement (attribut " + m.UAIClaim + ")."}
		default:
			return a, &Refusal{Login: a.Login, Reason: "votre compte académique nomme plusieurs établissements (attribut " + m.UAIClaim + ") : Vigie ne sait pas lequel vous confier."}
		}
	}
	return a, nil
}

// strings1 reads a claim as strings: a string, a number, a boolean, or a
// list of them; anything else reads as nothing.
func strings1(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case bool:
		return []string{strconv.FormatBool(v)}
	case float64:
		return []string{strconv.FormatFloat(v, 'f', -1, 64)}
	case []any:
		var out []string
		for _, e := range v {
			if len(out) == 1000 {
				break
			}
			switch e := e.(type) {
			case string:
				out = append(out, e)
			case float64:
				out = append(out, strconv.FormatFloat(e, 'f', -1, 64))
			}
		}
		return out
	case []string:
		return v
	}
	return nil
}

func contains(vs []string, want string) bool {
	for _, v := range vs {
		if v == want {
			return true
		}
	}
	return false
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func quoteClaim(s, d string) string { return orDefault(s, d) }

func bounded(s string, n int) string {
	r := []rune(strings.ToValidUTF8(s, ""))
	if len(r) > n {
		r = r[:n]
	}
	return strings.TrimSpace(string(r))
}

// validLogin is the API's rule for logins.
func validLogin(l string) bool {
	if l == "" || len(l) > 64 {
		return false
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '@') {
			return false
		}
	}
	return true
}
