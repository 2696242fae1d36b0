package sso

import (
	"encoding/json"
	"errors"
	"testing"

	"vigie/controlplane/auth"
	"vigie/rules/policy"
)

// academie is the mapping of the operator guide's example.
var academie = Mapping{UAIClaim: "FrEduRneResp", Roles: []RoleRule{
	{Claim: "groups", Value: "vigie-rssi", Role: "rssi"},
	{Claim: "FrEduFonctAdm", Value: "DIR", Role: "chef_etablissement"},
	{Claim: "groups", Value: "vigie-techniciens", Role: "technicien"},
	{Claim: "groups", Value: "vigie-audit", Role: "auditeur"},
}}

func TestMap(t *testing.T) {
	tests := []struct {
		name   string
		claims string
		want   Account
		refuse bool
	}{
		{"rssi by group", `{"preferred_username":"C.Martin","name":"Claire Martin","groups":["personnels","vigie-rssi"]}`,
			Account{Login: "c.martin", Name: "Claire Martin", Role: auth.RSSI}, false},
		{"first rule wins", `{"preferred_username":"x","groups":["vigie-audit","vigie-rssi"]}`, Account{Login: "x", Role: auth.RSSI}, false},
		{"chef with FrEduRne UAI", `{"preferred_username":"p.durand","FrEduFonctAdm":"DIR","FrEduRneResp":["0671234x$UAJ$PU$N$T3$CLG$340"]}`,
			Account{Login: "p.durand", Role: auth.Chef, UAI: "0671234X"}, false},
		{"chef twice the same school", `{"preferred_username":"p","FrEduFonctAdm":["DIR"],"FrEduRneResp":["0671234X$UAJ","0671234X$UAJ$PU"]}`,
			Account{Login: "p", Role: auth.Chef, UAI: "0671234X"}, false},
		{"chef without school", `{"preferred_username":"p","FrEduFonctAdm":"DIR"}`, Account{}, true},
		{"chef of two schools", `{"preferred_username":"p","FrEduFonctAdm":"DIR","FrEduRneResp":["0671234X$UAJ","0680001A$UAJ"]}`, Account{}, true},
		{"chef with a bad UAI", `{"preferred_username":"p","FrEduFonctAdm":"DIR","FrEduRneResp":"12345$UAJ"}`, Account{}, true},
		{"no matching claim", `{"preferred_username":"eleve","groups":["eleves"]}`, Account{}, true},
		{"email as login", `{"email":"T.Benali@ac-exemple.fr","groups":"vigie-techniciens"}`, Account{Login: "t.benali@ac-exemple.fr", Role: auth.Technicien}, false},
		{"no usable login", `{"preferred_username":"Jean Dupont","groups":["vigie-rssi"]}`, Account{}, true},
		{"a number is not a group list", `{"preferred_username":"x","groups":42}`, Account{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var claims map[string]any
			if err := json.Unmarshal([]byte(tt.claims), &claims); err != nil {
				t.Fatal(err)
			}
			got, err := academie.Map(claims)
			var r *Refusal
			if tt.refuse {
				if !errors.As(err, &r) || r.Reason == "" {
					t.Fatalf("got %+v, %v; want a refusal", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestMappingCheck(t *testing.T) {
	for _, m := range []Mapping{
		{},
		{Roles: []RoleRule{{Claim: "groups", Value: "x", Role: "admin"}}},
		{Roles: []RoleRule{{Claim: "", Value: "x", Role: "rssi"}}},
		{Roles: []RoleRule{{Claim: "f", Value: "DIR", Role: "chef_etablissement"}}},
	} {
		if err := m.Check(); err == nil {
			t.Errorf("%+v accepted", m)
		}
	}
	if err := academie.Check(); err != nil {
		t.Fatal(err)
	}
}

// FuzzMap: whatever claims a provider sends, the mapping never panics and
// never grants what it should not: a role from the rules, a valid login,
// and a chef always with exactly one valid UAI, others with none.
func FuzzMap(f *testing.F) {
	for _, s := range []string{
		`{"preferred_username":"p","FrEduFonctAdm":"DIR","FrEduRneResp":["0671234X$UAJ"]}`,
		`{"preferred_username":"a","groups":["vigie-rssi"]}`,
		`{"email":"x@y","groups":[1,"vigie-audit",null,{"a":1}]}`,
		`{"preferred_username":["a","b"],"groups":"vigie-rssi"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		a, err := academie.Map(claims)
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) || r.Reason == "" {
				t.Fatalf("error that is not a refusal: %v", err)
			}
			return
		}
		if !validLogin(a.Login) {
			t.Fatalf("invalid login %q granted", a.Login)
		}
		if _, err := auth.ParseRole(string(a.Role)); err != nil {
			t.Fatalf("role %q granted", a.Role)
		}
		if (a.Role == auth.Chef) != (a.UAI != "") || (a.UAI != "" && !policy.ValidUAI(a.UAI)) {
			t.Fatalf("role %s with UAI %q", a.Role, a.UAI)
		}
		again, _ := academie.Map(claims)
		if again != a {
			t.Fatalf("not deterministic: %+v then %+v", a, again)
		}
	})
}
