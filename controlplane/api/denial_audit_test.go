package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"vigie/controlplane/auth"
)

// TestDenialAuditedWhenRequestCanceled: a refused access is audited even
// when the request's context is already canceled (a client that hung up
// or half-closed right after its request), for a school and a département.
func TestDenialAuditedWhenRequestCanceled(t *testing.T) {
	e := newEnv(t)
	id := &auth.Identity{Login: "tech67", Role: auth.Technicien, Scope: "067"}
	for _, tc := range []struct {
		name   string
		target string
		deny   func(*Server, *http.Request) error
	}{
		{"school", "school/" + autre, func(s *Server, r *http.Request) error { return s.schoolScope(r, autre) }},
		{"departement", "departement/068", func(s *Server, r *http.Request) error { return s.DepartementScope(r, "068") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(auth.WithIdentity(context.Background(), id))
			cancel()
			r := httptest.NewRequest("GET", "/api/v1/"+tc.target, nil).WithContext(ctx)
			if err := tc.deny(e.srv, r); err == nil {
				t.Fatal("access granted")
			}
			es, err := e.st.AuditEntries(context.Background(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range es {
				if en.Action == "access.denied" && en.Target == tc.target && en.Actor == "tech67" {
					return
				}
			}
			t.Fatalf("no access.denied entry for %s with a canceled request", tc.target)
		})
	}
}
