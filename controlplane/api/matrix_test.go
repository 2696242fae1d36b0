package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"vigie/controlplane/auth"
)

// sample is a valid request for a route: the matrix sends it as every role.
type sample struct {
	path string
	body any
}

func samples(e *env) map[string]sample {
	s := map[string]sample{
		"GET /api/v1/openapi.json":                 {"/api/v1/openapi.json", nil},
		"GET /api/v1/health":                       {"/api/v1/health", nil},
		"GET /api/v1/public-key":                   {"/api/v1/public-key", nil},
		"POST /api/v1/session":                     {"/api/v1/session", LoginRequest{Login: "tech", Password: e.passwd["tech"]}},
		"DELETE /api/v1/session":                   {"/api/v1/session", nil},
		"GET /api/v1/me":                           {"/api/v1/me", nil},
		"GET /api/v1/tokens":                       {"/api/v1/tokens", nil},
		"POST /api/v1/tokens":                      {"/api/v1/tokens", TokenRequest{Name: "script", ExpiresInDays: 30}},
		"POST /api/v1/me/password":                 {"/api/v1/me/password", PasswordChange{Current: "x", New: "une phrase de passe neuve"}},
		"GET /api/v1/users/{login}/tokens":         {"/api/v1/users/tech/tokens", nil},
		"DELETE /api/v1/users/{login}/tokens/{id}": {"/api/v1/users/tech/tokens/999999", nil},
		"DELETE /api/v1/tokens/{id}":               {"/api/v1/tokens/999999", nil},
		"GET /api/v1/users":                        {"/api/v1/users?limit=2", nil},
		"POST /api/v1/users":                       {"/api/v1/users", UserRequest{Login: "nouveau.chef", Role: "chef_etablissement", UAI: autre}},
		"PATCH /api/v1/users/{login}":              {"/api/v1/users/tech", map[string]any{"name": "Technicien du département"}},
		"GET /api/v1/draft":                        {"/api/v1/draft", nil},
		"PUT /api/v1/draft":                        {"/api/v1/draft", nil}, // filled below: needs the revision
		"GET /api/v1/draft/diff":                   {"/api/v1/draft/diff", nil},
		"POST /api/v1/draft/validate":              {"/api/v1/draft/validate", nil},
		"GET /api/v1/categories":                   {"/api/v1/categories?limit=5", nil},
		"PUT /api/v1/categories/{id}":              {"/api/v1/categories/academie_test", map[string]any{"name_fr": "Test", "usage": "black"}},
		"GET /api/v1/profiles":                     {"/api/v1/profiles", nil},
		"PUT /api/v1/profiles/{id}":                {"/api/v1/profiles/cdi", map[string]any{"name": "CDI", "block": []string{"adult"}}},
		"DELETE /api/v1/profiles/{id}":             {"/api/v1/profiles/jetable", nil},
		"GET /api/v1/firewall":                     {"/api/v1/firewall", nil},
		"PUT /api/v1/firewall":                     {"/api/v1/firewall", map[string]any{"internet": []map[string]any{{"from": "pedagogique", "services": []string{"web", "dns", "ntp"}}}}},
		"GET /api/v1/schools":                      {"/api/v1/schools", nil},
		"GET /api/v1/schools/{uai}":                {"/api/v1/schools/" + monnet, nil},
		"PUT /api/v1/schools/{uai}":                {"/api/v1/schools/0671111A", map[string]any{"name": "Collège Neuf", "zones": []map[string]any{{"name": "pedagogique", "cidrs": []string{"10.70.0.0/24"}, "profile": "eleves"}}}},
		"DELETE /api/v1/schools/{uai}":             {"/api/v1/schools/0679999Z", nil},
		"POST /api/v1/explain":                     {"/api/v1/explain", ExplainRequest{Address: "https://www.pornhub.com/video", UAI: monnet, Zone: "pedagogique"}},
		"GET /api/v1/schools/{uai}/status":         {"/api/v1/schools/" + monnet + "/status", nil},
		"POST /api/v1/schools/{uai}/exceptions":    {"/api/v1/schools/" + monnet + "/exceptions", EntriesChange{Domains: []string{"matrice.example.fr"}}},
		"GET /api/v1/settings/unblock":             {"/api/v1/settings/unblock", nil},
		"PUT /api/v1/settings/unblock":             {"/api/v1/settings/unblock", UnblockSettings{Approvers: ApproversRSSI}},
		"GET /api/v1/lists":                        {"/api/v1/lists?limit=2", nil},
		"POST /api/v1/lists":                       {"/api/v1/lists", ListCreate{ID: "exceptions-hugo", Category: "etablissement_autorise", School: autre}},
		"GET /api/v1/lists/{id}":                   {"/api/v1/lists/academie-bloque", nil},
		"PATCH /api/v1/lists/{id}":                 {"/api/v1/lists/academie-bloque", map[string]any{"comment": "Décisions du RSSI (2026)"}},
		"DELETE /api/v1/lists/{id}":                {"/api/v1/lists/jetable", nil},
		"GET /api/v1/lists/{id}/entries":           {"/api/v1/lists/academie-autorise/entries?limit=2", nil},
		"POST /api/v1/lists/{id}/entries":          {"/api/v1/lists/academie-bloque/entries", EntriesChange{Domains: []string{"Matrice.Example."}, Comment: "test"}},
		"POST /api/v1/lists/{id}/entries/remove":   {"/api/v1/lists/academie-bloque/entries/remove", EntriesChange{Domains: []string{"matrice.example"}}},
		"POST /api/v1/publish":                     {"/api/v1/publish", PublishRequest{Comment: "matrice", Force: true}},
		"GET /api/v1/versions":                     {"/api/v1/versions?limit=1", nil},
		"GET /api/v1/versions/{serial}":            {"/api/v1/versions/1", nil},
		"GET /api/v1/versions/{serial}/source":     {"/api/v1/versions/1/source", nil},
		"GET /api/v1/versions/{serial}/bundle":     {"/api/v1/versions/1/bundle", nil},
		"POST /api/v1/versions/{serial}/rollback":  {"/api/v1/versions/1/rollback", PublishRequest{Comment: "retour"}},
		"POST /api/v1/imports/ut1":                 {"/api/v1/imports/ut1", ImportRequest{URL: e.ut1.URL + "/blacklists.tar.gz"}},
		"GET /api/v1/edges":                        {"/api/v1/edges?uai=" + monnet, nil},
		"POST /api/v1/edges":                       {"/api/v1/edges", EdgeCreate{UAI: monnet, Name: "secours"}},
		"GET /api/v1/edges/{id}":                   {"/api/v1/edges/monnet-1", nil},
		"DELETE /api/v1/edges/{id}":                {"/api/v1/edges/jetable-edge", nil},
		"POST /api/v1/edges/{id}/token":            {"/api/v1/edges/monnet-2/token", nil},
		"GET /api/v1/edge/bundle":                  {"/api/v1/edge/bundle?after=0&part=manifest", nil},
		"GET /api/v1/edge/sections/{hash}":         {"/api/v1/edge/sections/" + e.metaHex, nil},
		"POST /api/v1/edge/status":                 {"/api/v1/edge/status", EdgeReport{Serial: 1, Software: "test"}},
		"GET /api/v1/audit":                        {"/api/v1/audit?limit=3", nil},
		"GET /api/v1/audit/verify":                 {"/api/v1/audit/verify", nil},
	}
	maps.Copy(s, ipplanSamples())
	return s
}

var principals = []string{"", string(auth.RSSI), string(auth.Chef), string(auth.Technicien), string(auth.Auditeur), string(auth.AQSSI), string(auth.Edge), "tech67"}

// TestRoleMatrix sends every route's sample as every principal: allowed
// roles must get past the role check (and a 2xx that matches the route's
// schema), the others a 403, anonymous callers a 401.
func TestRoleMatrix(t *testing.T) {
	e := newEnv(t)
	doc := e.srv.Document()
	smp := samples(e)
	routes := e.srv.Routes()
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		s, ok := smp[key]
		if !ok {
			t.Errorf("route %s has no sample request: add one to samples()", key)
			continue
		}
		for _, who := range principals {
			name := who
			if name == "" {
				name = "anonyme"
			}
			t.Run(key+"/"+name, func(t *testing.T) {
				body := s.body
				if key == "PUT /api/v1/draft" && who == string(auth.RSSI) {
					var d DraftView
					json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/draft", nil, 200), &d)
					body = DraftPut{Revision: d.Revision, Policy: d.Policy}
				}
				if key == "POST /api/v1/edge/status" || key == "PUT /api/v1/draft" {
					if body == nil {
						body = map[string]any{}
					}
				}
				code, b, hdr := e.do(who, rt.Method, s.path, body)
				role := auth.Role(who)
				if who == "tech67" {
					// The Bas-Rhin technicien: every sample names a
					// Bas-Rhin school, so the role alone decides.
					role = auth.Technicien
				}
				switch {
				case key == "POST /api/v1/schools/{uai}/exceptions" && role == auth.Chef:
					// Past the role check, a chef also needs the
					// unblock setting, off by default.
					if code != http.StatusForbidden {
						t.Fatalf("chef under the default setting: status %d, want 403: %s", code, b)
					}
					checkProblem(t, b, hdr)
				case who == "" && !rt.Public():
					if code != http.StatusUnauthorized {
						t.Fatalf("anonymous: status %d, want 401: %s", code, b)
					}
					checkProblem(t, b, hdr)
				case who != "" && !rt.Allows(role):
					if code != http.StatusForbidden {
						t.Fatalf("role %s: status %d, want 403: %s", who, code, b)
					}
					checkProblem(t, b, hdr)
				default:
					if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
						t.Fatalf("allowed caller got %d: %s", code, b)
					}
					if code >= 300 {
						checkProblem(t, b, hdr)
						t.Logf("allowed but refused by the handler: %d %s", code, b)
						return
					}
					if code != rt.Status {
						t.Fatalf("status %d, the route documents %d: %s", code, rt.Status, b)
					}
					if rt.Response != "" && !rt.Binary {
						var v any
						if err := json.Unmarshal(b, &v); err != nil {
							t.Fatalf("response is not JSON: %v: %s", err, b)
						}
						if err := validate(doc, ref(rt.Response), v, "$"); err != nil {
							t.Fatalf("response does not match schema %s: %v\n%s", rt.Response, err, b)
						}
					}
				}
			})
		}
	}
	for k := range smp {
		if !slices.ContainsFunc(routes, func(r Route) bool { return r.Method+" "+r.Path == k }) {
			t.Errorf("sample %s names no route", k)
		}
	}
}

func checkProblem(t *testing.T, b []byte, hdr http.Header) {
	t.Helper()
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("error with Content-Type %q, want application/problem+json", ct)
	}
	var p Problem
	if err := json.Unmarshal(b, &p); err != nil || !strings.HasPrefix(p.Type, "urn:vigie:problem:") || p.Status == 0 || p.Title == "" {
		t.Fatalf("not a problem document: %s", b)
	}
}

// TestSchoolScope checks the object-level rule on top of the matrix: a chef
// d'établissement sees their own school and nothing of another.
func TestSchoolScope(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/api/v1/schools/" + autre, "/api/v1/schools/" + autre + "/status"} {
		if code, b, _ := e.do("chef_etablissement", "GET", path, nil); code != http.StatusForbidden {
			t.Errorf("chef reads %s: %d %s", path, code, b)
		}
		e.mustDo("rssi", "GET", path, nil, 200)
		e.mustDo("technicien", "GET", path, nil, 200)
	}
	var page Page[map[string]any]
	json.Unmarshal(e.mustDo("chef_etablissement", "GET", "/api/v1/schools", nil, 200), &page)
	if len(page.Items) != 1 || page.Items[0]["uai"] != monnet {
		t.Fatalf("chef lists %v", page.Items)
	}
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/schools", nil, 200), &page)
	if len(page.Items) != 3 {
		t.Fatalf("rssi lists %d schools", len(page.Items))
	}
}

// TestTechnicienScope checks the département scope on top of the matrix:
// the Bas-Rhin technicien (scope 067) sees and runs the Bas-Rhin's edges
// and schools only; asking for a Haut-Rhin school is refused and audited.
func TestTechnicienScope(t *testing.T) {
	e := newEnv(t)
	var created EdgeCreated
	json.Unmarshal(e.mustDo("rssi", "POST", "/api/v1/edges", EdgeCreate{UAI: autre, Name: "hugo"}, 201), &created)
	hugoEdge := created.Edge.ID

	forbidden := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/schools/" + autre, nil},
		{"GET", "/api/v1/schools/" + autre + "/status", nil},
		{"GET", "/api/v1/edges?uai=" + autre, nil},
		{"GET", "/api/v1/edges/" + hugoEdge, nil},
		{"POST", "/api/v1/edges", EdgeCreate{UAI: autre, Name: "intrus"}},
		{"POST", "/api/v1/edges/" + hugoEdge + "/token", nil},
		{"POST", "/api/v1/explain", ExplainRequest{Address: "https://example.org/", UAI: autre, Zone: "pedagogique"}},
	}
	for _, f := range forbidden {
		code, b, hdr := e.do("tech67", f.method, f.path, f.body)
		if code != http.StatusForbidden {
			t.Errorf("Bas-Rhin technicien %s %s: %d %s", f.method, f.path, code, b)
			continue
		}
		checkProblem(t, b, hdr)
	}
	// Each refusal is in the audit log, with who asked and for which school.
	var page Page[map[string]any]
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/audit?limit=1000", nil, 200), &page)
	denied := 0
	for _, it := range page.Items {
		if it["action"] == "access.denied" && it["actor"] == "tech67" && it["target"] == "school/"+autre {
			denied++
		}
	}
	if denied != len(forbidden) {
		t.Fatalf("%d audited refusals, want %d", denied, len(forbidden))
	}

	// The Bas-Rhin's own schools and edges are the technicien's to run.
	e.mustDo("tech67", "GET", "/api/v1/schools/"+monnet+"/status", nil, 200)
	e.mustDo("tech67", "POST", "/api/v1/edges/monnet-2/token", nil, 201)
	e.mustDo("tech67", "POST", "/api/v1/edges", EdgeCreate{UAI: monnet, Name: "secours"}, 201)
	var edges Page[EdgeHealth]
	json.Unmarshal(e.mustDo("tech67", "GET", "/api/v1/edges", nil, 200), &edges)
	for _, eh := range edges.Items {
		if !strings.HasPrefix(eh.UAI, "067") {
			t.Errorf("Bas-Rhin technicien lists edge %s of %s", eh.ID, eh.UAI)
		}
	}
	if len(edges.Items) < 4 {
		t.Errorf("Bas-Rhin technicien lists %d edges, want the 4 of %s", len(edges.Items), monnet)
	}
	json.Unmarshal(e.mustDo("tech68", "GET", "/api/v1/edges", nil, 200), &edges)
	if len(edges.Items) != 1 || edges.Items[0].ID != hugoEdge {
		t.Errorf("Haut-Rhin technicien lists %+v", edges.Items)
	}
	var schools Page[map[string]any]
	json.Unmarshal(e.mustDo("tech67", "GET", "/api/v1/schools", nil, 200), &schools)
	for _, sc := range schools.Items {
		if !strings.HasPrefix(sc["uai"].(string), "067") {
			t.Errorf("Bas-Rhin technicien lists school %v", sc["uai"])
		}
	}
	// Still no policy authoring, whatever the scope.
	if code, _, _ := e.do("tech67", "PUT", "/api/v1/schools/"+monnet, map[string]any{"name": "x"}); code != http.StatusForbidden {
		t.Errorf("scoped technicien edits a school: %d", code)
	}
}

// TestScopeValidation checks the scope an RSSI gives an account.
func TestScopeValidation(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		req  UserRequest
		want int
	}{
		{UserRequest{Login: "t1", Role: "technicien", Scope: " 067 , 0681234a"}, 201},
		{UserRequest{Login: "t2", Role: "technicien", Scope: "Bas-Rhin"}, 422},
		{UserRequest{Login: "t3", Role: "technicien", Scope: "067,,068"}, 422},
		{UserRequest{Login: "t4", Role: "rssi", Scope: "067"}, 422},
	} {
		code, b, _ := e.do("rssi", "POST", "/api/v1/users", c.req)
		if code != c.want {
			t.Errorf("%+v: %d %s", c.req, code, b)
		}
		if code == 201 && !strings.Contains(string(b), `"scope":"067,0681234A"`) {
			t.Errorf("scope not normalised: %s", b)
		}
	}
}

// validate checks a decoded JSON value against the subset of JSON Schema
// the document uses (type, properties, required, additionalProperties,
// items, $ref).
func validate(doc map[string]any, schema map[string]any, v any, at string) error {
	if r, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(r, "#/components/schemas/")
		s, ok := doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: unresolved $ref %s", at, r)
		}
		return validate(doc, s, v, at)
	}
	if typ, ok := schema["type"]; ok {
		var types []string
		switch t := typ.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return jsonType(v, t) }) {
			return fmt.Errorf("%s: %T is not %v", at, v, types)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		if req, ok := schema["required"].([]string); ok {
			for _, r := range req {
				if _, ok := x[r]; !ok {
					return fmt.Errorf("%s: required property %q missing", at, r)
				}
			}
		}
		for k, val := range x {
			if ps, ok := props[k].(map[string]any); ok {
				if err := validate(doc, ps, val, at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: property %q is not in the schema", at, k)
				}
			case map[string]any:
				if err := validate(doc, ap, val, at+"."+k); err != nil {
					return err
				}
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, it := range x {
				if err := validate(doc, items, it, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func jsonType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	}
	return false
}
