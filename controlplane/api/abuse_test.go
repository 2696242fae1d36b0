package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
)

// TestAbuseMatrix attacks the sign-in, the tokens and the edge endpoints
// the way an attacker would, one row per hole found in the first version:
// each row failed against it and must pass now.
func TestAbuseMatrix(t *testing.T) {
	rows := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"address limit ignores the source port", func(t *testing.T, e *env) {
			// Every request on a new connection, hence a new port.
			codes := e.loginFlood(t, 24, func(i int) (string, string) { return fmt.Sprintf("inconnu%d", i), "" })
			if codes[429] == 0 {
				t.Fatalf("24 failures from one address: %v, want some 429", codes)
			}
		}},
		{"X-Forwarded-For of an untrusted peer is ignored", func(t *testing.T, e *env) {
			codes := e.loginFlood(t, 24, func(i int) (string, string) {
				return fmt.Sprintf("inconnu%d", i), fmt.Sprintf("198.51.100.%d", i+1)
			})
			if codes[429] == 0 {
				t.Fatalf("24 failures with made-up X-Forwarded-For: %v, want some 429", codes)
			}
		}},
		{"behind a trusted proxy an attacker cannot lock the real user out", func(t *testing.T, e *env) {
			e.trustLoopback()
			codes := e.loginFlood(t, 30, func(int) (string, string) { return "rssi", "198.51.100.7" })
			if codes[429] == 0 {
				t.Fatalf("30 failures on rssi from one client: %v, want some 429", codes)
			}
			if code, b := e.loginAs("rssi", e.passwd["rssi"], "198.51.100.8"); code != 201 {
				t.Fatalf("the real RSSI from another address: %d %s", code, b)
			}
		}},
		{"a distributed attack slows a login down but not from its usual address", func(t *testing.T, e *env) {
			e.trustLoopback()
			if code, b := e.loginAs("rssi", e.passwd["rssi"], "203.0.113.9"); code != 201 {
				t.Fatalf("first sign-in: %d %s", code, b)
			}
			codes := e.loginFlood(t, 60, func(i int) (string, string) { return "rssi", fmt.Sprintf("198.51.100.%d", 100+i) })
			if codes[429] == 0 {
				t.Fatalf("60 failures on rssi from 60 addresses: %v, want the login slowed down", codes)
			}
			if code, _ := e.loginAs("rssi", e.passwd["rssi"], "203.0.113.10"); code != 429 {
				t.Fatalf("rssi from a new address during the attack: %d, want 429", code)
			}
			if code, b := e.loginAs("rssi", e.passwd["rssi"], "203.0.113.9"); code != 201 {
				t.Fatalf("rssi from their usual address during the attack: %d %s", code, b)
			}
		}},
		{"password hashing is capped, beyond it 429 without hashing", func(t *testing.T, e *env) {
			e.trustLoopback()
			var mu sync.Mutex
			codes, types := map[int]int{}, map[string]int{}
			var wg sync.WaitGroup
			for i := range 60 {
				wg.Go(func() {
					code, b := e.loginAs(fmt.Sprintf("inconnu%d", i), "mauvais mot de passe", fmt.Sprintf("198.51.100.%d", i+1))
					var p Problem
					json.Unmarshal(b, &p)
					mu.Lock()
					codes[code]++
					types[p.Type]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if types[ProblemType("busy")] == 0 || codes[401]+codes[429] != 60 {
				t.Fatalf("60 concurrent failed logins: %v %v, want some busy 429", codes, types)
			}
		}},
		{"a flood of failed logins costs one audit entry", func(t *testing.T, e *env) {
			e.trustLoopback()
			before := e.auditCount(t)
			codes := e.loginFlood(t, 100, func(i int) (string, string) {
				return fmt.Sprintf("cible%d", i%10), fmt.Sprintf("198.51.100.%d", i%50+1)
			})
			e.flushFailedLogins(t)
			es := e.auditSince(t, before)
			if len(es) > 2 {
				t.Fatalf("100 failed logins (%v) wrote %d audit entries", codes, len(es))
			}
			// The periodic flush may fall inside a slow flood and split
			// it in two entries: together they count every attempt.
			attempts := 0
			for _, a := range es {
				if a.Action == "login.failed" {
					var sum struct{ Attempts int }
					json.Unmarshal(a.After, &sum)
					attempts += sum.Attempts
				}
			}
			if attempts != 100 {
				t.Fatalf("the aggregated entries count %d attempts, want 100", attempts)
			}
		}},
		{"a password reset revokes the account's API tokens", func(t *testing.T, e *env) {
			e.mustDo("rssi", "PATCH", "/api/v1/users/chef", map[string]any{"password": "generate"}, 200)
			if code, _, _ := e.do("chef_etablissement", "GET", "/api/v1/me", nil); code != 401 {
				t.Fatalf("chef's token after a password reset: %d, want 401", code)
			}
		}},
		{"a role change revokes the account's API tokens", func(t *testing.T, e *env) {
			e.mustDo("rssi", "PATCH", "/api/v1/users/tech", map[string]any{"role": "auditeur"}, 200)
			if code, _, _ := e.do("technicien", "GET", "/api/v1/me", nil); code != 401 {
				t.Fatalf("token after a role change: %d, want 401", code)
			}
		}},
		{"re-enabling an account brings none of its tokens back", func(t *testing.T, e *env) {
			e.mustDo("rssi", "PATCH", "/api/v1/users/tech", map[string]any{"disabled": true}, 200)
			if code, _, _ := e.do("technicien", "GET", "/api/v1/me", nil); code != 401 {
				t.Fatalf("token of a disabled account: %d, want 401", code)
			}
			e.mustDo("rssi", "PATCH", "/api/v1/users/tech", map[string]any{"disabled": false}, 200)
			if code, _, _ := e.do("technicien", "GET", "/api/v1/me", nil); code != 401 {
				t.Fatalf("token after re-enabling: %d, want 401", code)
			}
		}},
		{"the RSSI lists and revokes anyone's tokens", func(t *testing.T, e *env) {
			var pg struct{ Items []store.APIToken }
			json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/users/chef/tokens", nil, 200), &pg)
			if len(pg.Items) != 1 {
				t.Fatalf("chef's tokens: %+v", pg)
			}
			e.mustDo("rssi", "DELETE", fmt.Sprintf("/api/v1/users/chef/tokens/%d", pg.Items[0].ID), nil, 204)
			if code, _, _ := e.do("chef_etablissement", "GET", "/api/v1/me", nil); code != 401 {
				t.Fatalf("revoked token: %d, want 401", code)
			}
			if code, _, _ := e.do("technicien", "GET", "/api/v1/users/chef/tokens", nil); code != 403 {
				t.Fatalf("a technicien listing tokens: %d, want 403", code)
			}
		}},
		{"token ids are never reused", func(t *testing.T, e *env) {
			var a, b TokenCreated
			json.Unmarshal(e.mustDo("chef_etablissement", "POST", "/api/v1/tokens", TokenRequest{Name: "a"}, 201), &a)
			e.mustDo("chef_etablissement", "DELETE", fmt.Sprintf("/api/v1/tokens/%d", a.Info.ID), nil, 204)
			json.Unmarshal(e.mustDo("technicien", "POST", "/api/v1/tokens", TokenRequest{Name: "b"}, 201), &b)
			if b.Info.ID <= a.Info.ID {
				t.Fatalf("revoked token %d, next token %d", a.Info.ID, b.Info.ID)
			}
		}},
		{"a generated password must be changed at first sign-in", func(t *testing.T, e *env) {
			var created UserCreated
			json.Unmarshal(e.mustDo("rssi", "POST", "/api/v1/users", UserRequest{Login: "nouveau", Role: "technicien"}, 201), &created)
			c := e.session(t, "nouveau", created.Password)
			if code, b := c.do("GET", "/api/v1/edges", nil); code != 403 || !strings.Contains(string(b), "password-change-required") {
				t.Fatalf("with a generated password: %d %s, want 403", code, b)
			}
			if code, b := c.do("POST", "/api/v1/me/password", PasswordChange{Current: created.Password, New: "une phrase de passe à moi"}); code != 200 {
				t.Fatalf("change: %d %s", code, b)
			}
			if code, b := c.do("GET", "/api/v1/edges", nil); code != 200 {
				t.Fatalf("after the change: %d %s", code, b)
			}
		}},
		{"changing one's password ends the other sessions and the tokens", func(t *testing.T, e *env) {
			c1, c2 := e.session(t, "chef", e.passwd["chef"]), e.session(t, "chef", e.passwd["chef"])
			if code, b := c1.do("POST", "/api/v1/me/password", PasswordChange{Current: "pas le bon mot de passe", New: "une phrase de passe à moi"}); code != 401 {
				t.Fatalf("wrong current password: %d %s", code, b)
			}
			if code, b := c1.do("POST", "/api/v1/me/password", PasswordChange{Current: e.passwd["chef"], New: "une phrase de passe à moi"}); code != 200 {
				t.Fatalf("change: %d %s", code, b)
			}
			if code, _ := c1.do("GET", "/api/v1/me", nil); code != 200 {
				t.Fatalf("the session that changed it: %d", code)
			}
			if code, _ := c2.do("GET", "/api/v1/me", nil); code != 401 {
				t.Fatalf("another session: %d, want 401", code)
			}
			if code, _, _ := e.do("chef_etablissement", "GET", "/api/v1/me", nil); code != 401 {
				t.Fatalf("the account's token: %d, want 401", code)
			}
		}},
		{"an edge cannot report a version that was never published", func(t *testing.T, e *env) {
			h := e.srv.Publisher().Head()
			for _, rep := range []EdgeReport{{Serial: 999, Hash: h.Hash}, {Serial: h.Serial, Hash: strings.Repeat("0", 64)}} {
				e.mustDo("edge", "POST", "/api/v1/edge/status", rep, 204)
				var ed EdgeHealth
				json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/edges/monnet-1", nil, 200), &ed)
				if ed.AppliedSerial != 0 || ed.AppliedHash != "" || !strings.Contains(ed.LastError, "version inconnue") {
					t.Fatalf("report %+v stored as %+v", rep, ed.EdgeStatus)
				}
			}
			e.mustDo("edge", "POST", "/api/v1/edge/status", EdgeReport{Serial: h.Serial, Hash: h.Hash}, 204)
			var ed EdgeHealth
			json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/edges/monnet-1", nil, 200), &ed)
			if ed.AppliedSerial != h.Serial || ed.LastError != "" {
				t.Fatalf("a true report stored as %+v", ed.EdgeStatus)
			}
		}},
		{"an edge's error text is bounded and printable", func(t *testing.T, e *env) {
			h := e.srv.Publisher().Head()
			e.mustDo("edge", "POST", "/api/v1/edge/status", EdgeReport{Serial: h.Serial, Hash: h.Hash, Error: "\x1b[31mrouge\x1b[0m " + strings.Repeat("é", 20000)}, 204)
			var ed EdgeHealth
			json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/edges/monnet-1", nil, 200), &ed)
			if n := utf8.RuneCountInString(ed.LastError); n > 501 || strings.ContainsRune(ed.LastError, 0x1b) {
				t.Fatalf("stored error of %d characters: %.60q", n, ed.LastError)
			}
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) { row.run(t, newEnv(t)) })
	}
}

// sessionClient is a browser-like client: a cookie jar and the session's
// CSRF token.
type sessionClient struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) session(t *testing.T, login, password string) *sessionClient {
	jar, _ := cookiejar.New(nil)
	sc := &sessionClient{e: e, c: &http.Client{Jar: jar}}
	code, b := sc.do("POST", "/api/v1/session", LoginRequest{Login: login, Password: password})
	if code != 201 {
		t.Fatalf("login %s: %d %s", login, code, b)
	}
	var si SessionInfo
	json.Unmarshal(b, &si)
	sc.csrf = si.CSRFToken
	return sc
}

func (sc *sessionClient) do(method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, sc.e.http.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", sc.csrf)
	resp, err := sc.c.Do(req)
	if err != nil {
		sc.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && strings.HasSuffix(path, "/me/password") {
		var si SessionInfo
		json.Unmarshal(b, &si)
		sc.csrf = si.CSRFToken
	}
	return resp.StatusCode, b
}

// trustLoopback puts the test client behind a trusted reverse proxy: its
// X-Forwarded-For names the client.
func (e *env) trustLoopback() {
	e.srv.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// loginAs posts a login on a new connection, from xff when not empty.
func (e *env) loginAs(login, password, xff string) (int, []byte) {
	e.t.Helper()
	body, _ := json.Marshal(LoginRequest{Login: login, Password: password})
	req, _ := http.NewRequest("POST", e.http.URL+"/api/v1/session", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// loginFlood sends n failed logins one after the other and counts the
// statuses; who(i) names the login and the X-Forwarded-For of the i-th.
func (e *env) loginFlood(t *testing.T, n int, who func(i int) (string, string)) map[int]int {
	codes := map[int]int{}
	for i := range n {
		login, xff := who(i)
		code, _ := e.loginAs(login, "mauvais mot de passe", xff)
		codes[code]++
	}
	return codes
}

func (e *env) auditCount(t *testing.T) uint64 {
	es, err := e.st.AuditEntries(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(len(es))
}

func (e *env) auditSince(t *testing.T, seq uint64) []audit.Entry {
	es, err := e.st.AuditEntries(context.Background(), seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func (e *env) flushFailedLogins(t *testing.T) {
	if err := e.srv.Auth().FlushFailedLogins(context.Background()); err != nil {
		t.Fatal(err)
	}
}
