package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fuzzTargets are the endpoints taking a JSON body, with who calls them.
// Publication, rollback and imports are left out: each compiles or
// downloads for long, and their bodies are the small ones tested above.
var fuzzTargets = []struct{ role, method, path string }{
	{"rssi", "POST", "/api/v1/lists"},
	{"rssi", "PATCH", "/api/v1/lists/academie-bloque"},
	{"rssi", "POST", "/api/v1/lists/academie-bloque/entries"},
	{"rssi", "POST", "/api/v1/lists/academie-bloque/entries/remove"},
	{"rssi", "PUT", "/api/v1/draft"},
	{"rssi", "PUT", "/api/v1/schools/0671234X"},
	{"rssi", "PUT", "/api/v1/profiles/eleves"},
	{"rssi", "PUT", "/api/v1/categories/academie_bloque"},
	{"rssi", "PUT", "/api/v1/firewall"},
	{"rssi", "POST", "/api/v1/users"},
	{"rssi", "PATCH", "/api/v1/users/tech"},
	{"rssi", "POST", "/api/v1/tokens"},
	{"rssi", "POST", "/api/v1/edges"},
	{"edge", "POST", "/api/v1/edge/status"},
	{"", "POST", "/api/v1/session"},
}

// FuzzAPIBodies sends arbitrary bodies to the JSON endpoints of a real
// server: whatever the bytes, the answer is a success or a problem
// document, never a 500, a panic or a non-JSON body.
func FuzzAPIBodies(f *testing.F) {
	e := newEnv(f)
	seeds := []string{
		`{"id":"nouvelle","category":"academie_bloque","school":"0671234X"}`,
		`{"comment":"x","category":"academie_autorise"}`,
		`{"domains":["exemple.fr","xn--caf-dma.fr","*.a.b"],"urls":["exemple.fr/chemin"],"expressions":["a+b"],"comment":"c"}`,
		`{"revision":1,"policy":{"version":1,"academie":"A","profiles":[{"id":"p","windows":[{"categories":["adult"],"from":"08:00","to":"09:00"}]}],"schools":[]}}`,
		`{"uai":"0671234X","name":"C","zones":[{"name":"z","cidrs":["10.0.0.0/8","::/0"],"profile":"eleves"}]}`,
		`{"id":"eleves","block":["adult"],"https":"intercept","windows":[{"categories":["x"],"from":"25:00","to":"00:00"}]}`,
		`{"name_fr":"é","usage":"grey"}`,
		`{"flows":[{"from":"a","to":"b","ports":["80","1-65535"]}]}`,
		`{"login":"x.y@z","role":"chef_etablissement","uai":"0671234X","password":"court"}`,
		`{"role":"rssi","password":"generate","disabled":true}`,
		`{"name":"jeton","expires_in_days":-3}`,
		`{"uai":"0671234X","id":"../etc"}`,
		`{"serial":18446744073709551615,"hash":"zz","error":"é","fallback":true}`,
		`{"login":"rssi","password":"x"}`,
		`[]`, `null`, `"x"`, `{"a":` + string(bytes.Repeat([]byte("["), 10000)),
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		tg := fuzzTargets[int(which)%len(fuzzTargets)]
		req := httptest.NewRequest(tg.method, tg.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tg.role != "" {
			req.Header.Set("Authorization", "Bearer "+e.tokens[tg.role])
		}
		req.RemoteAddr = "10.10.0.9:1234"
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s answered %d to %q: %s", tg.method, tg.path, w.Code, body, w.Body.Bytes())
		}
		if w.Code == http.StatusNoContent {
			return
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: response is not JSON: %q", tg.method, tg.path, w.Body.Bytes())
		}
	})
}
