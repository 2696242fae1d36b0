package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/audit"
	"vigie/rules"
	"vigie/rules/bundle"
	"vigie/tstest"
)

func TestSessionCookieAndCSRF(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	post := func(path, body, csrf string) (int, []byte) {
		req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, b := post("/api/v1/session", `{"login":"rssi","password":"faux"}`, "")
	if code != 401 {
		t.Fatalf("bad password: %d %s", code, b)
	}
	code, b = post("/api/v1/session", fmt.Sprintf(`{"login":"rssi","password":%q}`, e.passwd["rssi"]), "")
	if code != 201 {
		t.Fatalf("login: %d %s", code, b)
	}
	var si SessionInfo
	json.Unmarshal(b, &si)
	if si.Identity.Role != "rssi" || si.CSRFToken == "" {
		t.Fatalf("session info %s", b)
	}
	// The cookie authenticates reads; writes need the CSRF token too.
	resp, err := c.Get(e.http.URL + "/api/v1/me")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("me with cookie: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	body := `{"domains":["csrf.example"]}`
	if code, b := post("/api/v1/lists/academie-bloque/entries", body, ""); code != 403 || !strings.Contains(string(b), "csrf") {
		t.Fatalf("write without CSRF token: %d %s", code, b)
	}
	if code, b := post("/api/v1/lists/academie-bloque/entries", body, si.CSRFToken); code != 200 {
		t.Fatalf("write with CSRF token: %d %s", code, b)
	}
	req, _ := http.NewRequest("DELETE", e.http.URL+"/api/v1/session", nil)
	req.Header.Set("X-CSRF-Token", si.CSRFToken)
	resp, _ = c.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	resp, _ = c.Get(e.http.URL + "/api/v1/me")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

func TestPublishFlowAndLongPoll(t *testing.T) {
	e := newEnv(t)
	// An edge waits on serial 1; the RSSI blocks a domain and publishes.
	type result struct {
		code   int
		serial string
		body   []byte
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", e.http.URL+"/api/v1/edge/bundle?after=1&part=manifest", nil)
		req.Header.Set("Authorization", "Bearer "+e.edgeTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, resp.Header.Get("X-Vigie-Serial"), b}
	}()
	tstest.WaitFor(5*time.Second, func() bool { return e.srv.pub.Waiting() != 0 })
	e.mustDo("rssi", "POST", "/api/v1/lists/academie-bloque/entries", EntriesChange{Domains: []string{"Interdit.Example"}, Comment: "signalement"}, 200)
	var diff map[string]any
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/draft/diff", nil, 200), &diff)
	if !strings.Contains(fmt.Sprint(diff["summary"]), "academie-bloque : 1 entrée ajoutée") {
		t.Fatalf("diff summary %v", diff["summary"])
	}
	if code, b, _ := e.do("rssi", "POST", "/api/v1/publish", PublishRequest{}); code != 422 {
		t.Fatalf("publish without comment: %d %s", code, b)
	}
	var v map[string]any
	json.Unmarshal(e.mustDo("rssi", "POST", "/api/v1/publish", PublishRequest{Comment: "Blocage signalé"}, 201), &v)
	if v["serial"].(float64) != 2 {
		t.Fatalf("published %v", v)
	}
	r := <-got
	if r.code != 200 || r.serial != "2" {
		t.Fatalf("long-poll answered %d serial %q", r.code, r.serial)
	}
	h, secs, err := bundle.ReadHeader(r.body, e.srv.PublicKey())
	if err != nil || h.Serial != 2 {
		t.Fatalf("manifest: %v", err)
	}
	// An edge one version behind gets the changed sections in the same
	// answer; an edge further behind gets the manifest alone.
	code, delta, hdr := e.do("edge", "GET", "/api/v1/edge/bundle?after=1&part=delta", nil)
	if code != 200 || hdr.Get("Content-Type") != "application/vnd.vigie.delta" || len(delta) > len(r.body)+100000 ||
		string(delta[4:12]) != "VIGIEPAT" {
		t.Fatalf("delta answer: %d %s, %d bytes", code, hdr.Get("Content-Type"), len(delta))
	}
	if _, _, hdr := e.do("edge", "GET", "/api/v1/edge/bundle?after=0&part=delta", nil); hdr.Get("X-Vigie-Part") != "manifest" {
		t.Fatalf("two versions behind: part %q", hdr.Get("X-Vigie-Part"))
	}
	// Sections answer 304 to an edge that holds them already.
	sec := fmt.Sprintf("/api/v1/edge/sections/%x", secs[0].Hash)
	req, _ := http.NewRequest("GET", e.http.URL+sec, nil)
	req.Header.Set("Authorization", "Bearer "+e.edgeTok)
	req.Header.Set("If-None-Match", fmt.Sprintf(`"%x"`, secs[0].Hash))
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 304 {
		t.Fatalf("conditional section: %d", resp.StatusCode)
	}
	// The whole bundle blocks the domain.
	code, full, _ := e.do("edge", "GET", "/api/v1/edge/bundle?after=1", nil)
	if code != 200 {
		t.Fatalf("full bundle: %d", code)
	}
	rs, _, err := rules.DecodeBundle(full, e.srv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := rs.Profile("eleves")
	if rs.Decide(id, rules.Query{Host: "www.interdit.example", Time: time.Now()}).Action != rules.Block {
		t.Fatal("published bundle does not block the new domain")
	}
	// Same content again is refused unless forced.
	if code, b, _ := e.do("rssi", "POST", "/api/v1/publish", PublishRequest{Comment: "encore"}); code != 409 || !strings.Contains(string(b), "nothing-to-publish") {
		t.Fatalf("unchanged publish: %d %s", code, b)
	}
	// A poll with nothing new answers 204 after its wait.
	if code, _, _ := e.do("edge", "GET", "/api/v1/edge/bundle?after=2&wait=1", nil); code != 204 {
		t.Fatalf("idle poll: %d", code)
	}
	// An edge ahead of the control plane (restored database) is told so.
	if code, b, _ := e.do("edge", "GET", "/api/v1/edge/bundle?after=9", nil); code != 409 || !strings.Contains(string(b), "edge-ahead") {
		t.Fatalf("edge ahead: %d %s", code, b)
	}
	// The edge reports; technicians see it applied at once.
	e.mustDo("edge", "POST", "/api/v1/edge/status", EdgeReport{Serial: 2, Hash: h.HashHex(), Software: "test"}, 204)
	var eh map[string]any
	json.Unmarshal(e.mustDo("technicien", "GET", "/api/v1/edges/monnet-1", nil, 200), &eh)
	if eh["applied_serial"].(float64) != 2 || eh["up_to_date"] != true {
		t.Fatalf("edge health %v", eh)
	}
	// Rollback republishes serial 1 as 3 and the edge is no longer up to date.
	json.Unmarshal(e.mustDo("rssi", "POST", "/api/v1/versions/1/rollback", PublishRequest{}, 201), &v)
	if v["serial"].(float64) != 3 || v["rollback_of"].(float64) != 1 {
		t.Fatalf("rollback %v", v)
	}
	var st SchoolStatus
	json.Unmarshal(e.mustDo("chef_etablissement", "GET", "/api/v1/schools/"+monnet+"/status", nil, 200), &st)
	if st.PublishedSerial != 3 || st.UpToDate {
		t.Fatalf("school status %+v", st)
	}
}

func TestInputErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path, ctype string
		body                      string
		status                    int
		detail                    string
	}{
		{"unknown field", "POST", "/api/v1/lists", "application/json", `{"id":"x","category":"adult","couleur":"rouge"}`, 400, "champ inconnu"},
		{"wrong type", "POST", "/api/v1/lists", "application/json", `{"id":5}`, 400, "champ id"},
		{"trailing data", "POST", "/api/v1/lists", "application/json", `{"id":"x"} {}`, 400, "après la valeur"},
		{"empty body", "POST", "/api/v1/publish", "application/json", ``, 400, "corps JSON attendu"},
		{"form body", "POST", "/api/v1/publish", "application/x-www-form-urlencoded", `comment=x`, 415, "JSON"},
		{"bad domain", "POST", "/api/v1/lists/academie-bloque/entries", "application/json", `{"domains":["ok.example","pas un domaine"]}`, 422, "domains[1]"},
		{"bad regexp", "POST", "/api/v1/lists/academie-bloque/entries", "application/json", `{"expressions":["(a"]}`, 422, "expressions[0]"},
		{"unknown list", "POST", "/api/v1/lists/absente/entries", "application/json", `{"domains":["a.example"]}`, 404, "absente"},
		{"unknown school in list", "POST", "/api/v1/lists", "application/json", `{"id":"x","category":"adult","school":"0000000A"}`, 422, "0000000A"},
		{"bad list id", "POST", "/api/v1/lists", "application/json", `{"id":"Pas Bon","category":"adult"}`, 422, "invalide"},
		{"unknown category", "POST", "/api/v1/lists", "application/json", `{"id":"x","category":"inexistante"}`, 422, "inconnue"},
		{"school breaks policy", "PUT", "/api/v1/schools/0671234X", "application/json", `{"name":"","zones":[]}`, 422, "schools"},
		{"chef without uai", "POST", "/api/v1/users", "application/json", `{"login":"x","role":"chef_etablissement"}`, 422, "uai"},
		{"bad role", "POST", "/api/v1/users", "application/json", `{"login":"x","role":"admin"}`, 422, "role"},
		{"rollback forward", "POST", "/api/v1/versions/7/rollback", "application/json", `{}`, 422, "antérieure"},
		{"file import", "POST", "/api/v1/imports/ut1", "application/json", `{"url":"/etc/passwd"}`, 422, "https"},
		{"file md5", "POST", "/api/v1/imports/ut1", "application/json", `{"url":"https://exemple/bl.tar.gz","md5_url":"/etc/passwd"}`, 422, "md5_url"},
		{"bad cursor", "GET", "/api/v1/versions?cursor=!!", "", ``, 400, "curseur"},
		{"bad serial", "GET", "/api/v1/versions/abc", "", ``, 400, "serial"},
		{"no route", "GET", "/api/v1/nulle-part", "", ``, 404, "aucune route"},
		{"wrong method", "PUT", "/api/v1/versions", "", ``, 405, "GET"},
		{"stale draft", "PUT", "/api/v1/draft", "application/json", `{"revision":0,"policy":{"version":1,"academie":"A","profiles":[{"id":"p"}],"sources":[],"schools":[]}}`, 412, "révision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.http.URL+tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			req.Header.Set("Authorization", "Bearer "+e.tokens["rssi"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.detail) {
				t.Fatalf("status %d body %s; want %d mentioning %q", resp.StatusCode, b, tt.status, tt.detail)
			}
			checkProblem(t, b, resp.Header)
		})
	}
	t.Run("too large", func(t *testing.T) {
		big := `{"domains":["` + strings.Repeat("a", 9<<20) + `"]}`
		code, b, _ := e.do("rssi", "POST", "/api/v1/lists/academie-bloque/entries", big)
		if code != 413 {
			t.Fatalf("status %d: %.200s", code, b)
		}
	})
}

func TestEntriesPagination(t *testing.T) {
	e := newEnv(t)
	var domains []string
	for i := 0; i < 250; i++ {
		domains = append(domains, fmt.Sprintf("site%03d.example", i))
	}
	var res EntriesResult
	json.Unmarshal(e.mustDo("rssi", "POST", "/api/v1/lists/academie-bloque/entries", EntriesChange{Domains: domains}, 200), &res)
	if res.Changed != 250 {
		t.Fatalf("added %d", res.Changed)
	}
	seen := map[string]bool{}
	path := "/api/v1/lists/academie-bloque/entries?limit=100"
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		var p Page[map[string]any]
		json.Unmarshal(e.mustDo("rssi", "GET", path, nil, 200), &p)
		for _, it := range p.Items {
			v := it["value"].(string)
			if seen[v] {
				t.Fatalf("%s seen twice", v)
			}
			seen[v] = true
		}
		if p.Next == "" {
			break
		}
		path = "/api/v1/lists/academie-bloque/entries?limit=100&cursor=" + p.Next
	}
	if len(seen) != 251 { // and the demo's own entry
		t.Fatalf("paged %d entries", len(seen))
	}
}

func TestAuditVerifyEndpoint(t *testing.T) {
	e := newEnv(t)
	var v AuditVerify
	json.Unmarshal(e.mustDo("auditeur", "GET", "/api/v1/audit/verify", nil, 200), &v)
	if !v.OK || v.Entries == 0 {
		t.Fatalf("verify %+v", v)
	}
	head := v.Result
	// Reading the log is itself recorded.
	var page Page[audit.Entry]
	json.Unmarshal(e.mustDo("auditeur", "GET", "/api/v1/audit?limit=1000", nil, 200), &page)
	last := page.Items[len(page.Items)-1]
	if last.Action != "audit.verify" || last.Actor != "audit" {
		t.Fatalf("last entry %+v", last)
	}
	anchor := fmt.Sprintf("/api/v1/audit/verify?anchor_seq=%d&anchor_hash=%s", head.HeadSeq, head.Head)
	json.Unmarshal(e.mustDo("auditeur", "GET", anchor, nil, 200), &v)
	if !v.OK {
		t.Fatalf("anchored verify %+v", v)
	}
	// Someone with database access edits an entry: the chain says where.
	rawEdit(t, e, `UPDATE audit SET actor = 'quelquun' WHERE seq = 3`)
	json.Unmarshal(e.mustDo("auditeur", "GET", "/api/v1/audit/verify", nil, 200), &v)
	if v.OK || v.Problem == nil || v.Problem.Seq != 3 {
		t.Fatalf("edited entry not detected: %+v", v)
	}
	rawEdit(t, e, `UPDATE audit SET actor = 'setup' WHERE seq = 3`)
	// Removing the tail is caught by the anchor noted earlier.
	rawEdit(t, e, fmt.Sprintf(`DELETE FROM audit WHERE seq >= %d`, head.HeadSeq))
	json.Unmarshal(e.mustDo("auditeur", "GET", anchor, nil, 200), &v)
	if v.OK || !strings.Contains(v.AnchorError, "removed") {
		t.Fatalf("truncated log not detected: %+v", v)
	}
}

// rawEdit changes the database behind the server's back, as an intruder
// with file access would.
func rawEdit(t *testing.T, e *env, query string) {
	t.Helper()
	db := openRaw(t, e.dir)
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatal(err)
	}
}

// TestEdgeTokenRevocation checks that the edge token cache never outlives
// a revocation made on this server.
func TestEdgeTokenRevocation(t *testing.T) {
	e := newEnv(t)
	e.mustDo("edge", "GET", "/api/v1/edge/bundle?after=0&part=manifest", nil, 200) // now cached
	var created EdgeCreated
	json.Unmarshal(e.mustDo("rssi", "POST", "/api/v1/edges/monnet-1/token", nil, 201), &created)
	if code, _, _ := e.do("edge", "GET", "/api/v1/edge/bundle?after=0&part=manifest", nil); code != 401 {
		t.Fatalf("rotated-out token still works: %d", code)
	}
	e.tokens["edge"] = created.Token
	e.mustDo("edge", "GET", "/api/v1/edge/bundle?after=0&part=manifest", nil, 200)
	e.mustDo("rssi", "DELETE", "/api/v1/edges/monnet-1", nil, 204)
	if code, _, _ := e.do("edge", "GET", "/api/v1/edge/bundle?after=0&part=manifest", nil); code != 401 {
		t.Fatalf("deleted edge's token still works: %d", code)
	}
}

func TestTrustedProxyClientAddress(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}}}
	tests := []struct{ peer, xff, want string }{
		{"10.1.0.5:4000", "203.0.113.7", "203.0.113.7:0"},
		{"10.1.0.5:4000", "198.51.100.1, 203.0.113.7, 10.1.0.9", "203.0.113.7:0"},
		{"203.0.113.9:4000", "198.51.100.1", "203.0.113.9:4000"}, // not from a proxy: ignored
		{"10.1.0.5:4000", "pas une adresse", "10.1.0.5:4000"},
		{"10.1.0.5:4000", "", "10.1.0.5:4000"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.peer
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := s.realClient(r).RemoteAddr; got != tt.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", tt.peer, tt.xff, got, tt.want)
		}
	}
}
