package sso_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/auth/sso"
	"vigie/controlplane/auth/sso/ssotest"
	"vigie/controlplane/store"
)

// People of the académie's directory, as the tests' provider serves them.
var people = []ssotest.User{
	{ID: "u1", Username: "claire.martin", Password: "mot de passe 1", First: "Claire", Last: "Martin", Claims: map[string]any{"groups": []string{"personnels", "vigie-rssi"}}},
	{ID: "u2", Username: "paul.durand", Password: "mot de passe 2", First: "Paul", Last: "Durand", Claims: map[string]any{"FrEduFonctAdm": "DIR", "FrEduRneResp": []string{"0671234X$UAJ$PU$N$T3$CLG$340"}}},
	{ID: "u3", Username: "eleve.curieux", Password: "mot de passe 3", First: "Élève", Last: "Curieux", Claims: map[string]any{"groups": []string{"eleves"}}},
}

var rules = sso.Mapping{UAIClaim: "FrEduRneResp", Roles: []sso.RoleRule{
	{Claim: "groups", Value: "vigie-rssi", Role: "rssi"},
	{Claim: "FrEduFonctAdm", Value: "DIR", Role: "chef_etablissement"},
}}

// TestFlowWithRealProvider signs people in through a real OpenID provider
// (code flow, PKCE, state, nonce) with an ordinary HTTP client.
func TestFlowWithRealProvider(t *testing.T) {
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "vigie.db"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := auth.New(st, nil, auth.Config{}, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	base := "http://" + ln.Addr().String()
	idp := ssotest.Start(t, base+"/connexion/academique/retour", people...)
	flow, err := sso.New(sso.Config{Issuer: idp.Issuer, ClientID: idp.ClientID, ClientSecretFile: idp.SecretFile,
		RedirectURL: base + "/connexion/academique/retour", Mapping: rules}, svc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/connexion/academique", func(w http.ResponseWriter, r *http.Request) {
		if err := flow.Start(w, r, "/tableau"); err != nil {
			http.Error(w, err.Error(), 502)
		}
	})
	mux.HandleFunc("/connexion/academique/retour", func(w http.ResponseWriter, r *http.Request) {
		sess, next, err := flow.Finish(w, r, r.RemoteAddr)
		var refusal *sso.Refusal
		switch {
		case errors.As(err, &refusal):
			http.Error(w, "refus : "+refusal.Reason, 403)
		case errors.Is(err, sso.ErrState):
			http.Error(w, "state", 400)
		case err != nil:
			http.Error(w, err.Error(), 500)
		default:
			svc.SetSessionCookie(w, sess)
			io.WriteString(w, "session ouverte, suite "+next)
		}
	})
	mux.HandleFunc("/moi", func(w http.ResponseWriter, r *http.Request) {
		id, err := svc.Authenticate(r)
		if err != nil || id == nil {
			http.Error(w, "anonyme", 401)
			return
		}
		io.WriteString(w, id.Login+" "+string(id.Role)+" "+id.UAI)
	})
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)

	signIn := func(t *testing.T, user, password string) (*http.Client, int, string) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
		resp, err := c.Get(base + "/connexion/academique")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("the provider's login form: %d %s", resp.StatusCode, page)
		}
		resp, err = c.PostForm(idp.Issuer+"/login/username", url.Values{"id": {string(m[1])}, "username": {user}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return c, resp.StatusCode, string(b)
	}
	who := func(c *http.Client) string {
		resp, err := c.Get(base + "/moi")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	t.Run("rssi", func(t *testing.T) {
		c, code, body := signIn(t, "claire.martin", "mot de passe 1")
		if code != 200 || !strings.Contains(body, "suite /tableau") {
			t.Fatalf("%d %s", code, body)
		}
		if got := who(c); got != "claire.martin rssi " {
			t.Fatalf("identity %q", got)
		}
	})
	t.Run("chef with a UAI from a claim", func(t *testing.T) {
		c, code, body := signIn(t, "paul.durand", "mot de passe 2")
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		if got := who(c); got != "paul.durand chef_etablissement 0671234X" {
			t.Fatalf("identity %q", got)
		}
		u, err := st.User(context.Background(), "paul.durand")
		if err != nil || u.SSOSubject != idp.Issuer+" u2" || u.PasswordHash != "" || u.Name != "Paul Durand" {
			t.Fatalf("account %+v %v", u, err)
		}
	})
	t.Run("unmapped user refused", func(t *testing.T) {
		c, code, body := signIn(t, "eleve.curieux", "mot de passe 3")
		if code != 403 || !strings.Contains(body, "aucun des attributs") {
			t.Fatalf("%d %s", code, body)
		}
		if got := who(c); got != "anonyme\n" {
			t.Fatalf("identity %q", got)
		}
		if _, err := st.User(context.Background(), "eleve.curieux"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an account was created: %v", err)
		}
	})
	t.Run("a forged return is refused", func(t *testing.T) {
		resp, err := http.Get(base + "/connexion/academique/retour?code=x&state=y")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("forged state: %d", resp.StatusCode)
		}
	})
	t.Run("a password attack cannot keep an SSO user out", func(t *testing.T) {
		for range 30 {
			svc.Login(context.Background(), "claire.martin", "mauvais mot de passe", "198.51.100.7")
		}
		if _, code, body := signIn(t, "claire.martin", "mot de passe 1"); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	})
}
