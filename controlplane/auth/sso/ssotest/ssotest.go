// Package ssotest runs a real OpenID Connect provider on loopback for
// tests: zitadel's op package with its example in-memory storage and
// login form, serving each user's own claims (groups, FrEduRne-style
// attributes) in the ID token and at the userinfo endpoint.
package ssotest

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a person of the provider's directory.
type User struct {
	ID, Username, Password string
	First, Last            string
	// Claims are added to the ID token and the userinfo answer.
	Claims map[string]any
}

// IdP is a running provider with Vigie registered as client "vigie".
type IdP struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// SecretFile holds ClientSecret, as the control plane reads it.
	SecretFile string
}

// Start serves a provider on loopback (as http://localhost:PORT) that
// sends users back to redirectURL.
func Start(t testing.TB, redirectURL string, users ...User) *IdP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	idp := &IdP{Issuer: "http://localhost:" + port, ClientID: "vigie", ClientSecret: rand.Text()}
	idp.SecretFile = filepath.Join(t.TempDir(), "sso-secret")
	if err := os.WriteFile(idp.SecretFile, []byte(idp.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	us := directory{byID: map[string]*storage.User{}, claims: map[string]map[string]any{}}
	for _, u := range users {
		su := &storage.User{ID: u.ID, Username: u.Username, Password: u.Password, FirstName: u.First, LastName: u.Last,
			Email: u.Username + "@ac-exemple.fr", EmailVerified: true, PreferredLanguage: language.French}
		us.byID[u.ID] = su
		us.claims[u.ID] = u.Claims
	}
	clients := map[string]*storage.Client{idp.ClientID: storage.WebClient(idp.ClientID, idp.ClientSecret, redirectURL)}
	st := &claimsStorage{Storage: storage.NewStorageWithClients(us, clients), dir: us}
	srv := &http.Server{Handler: exampleop.SetupServer(idp.Issuer, st, nil, false)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return idp
}

// directory implements the example storage's UserStore.
type directory struct {
	byID   map[string]*storage.User
	claims map[string]map[string]any
}

func (d directory) GetUserByID(id string) *storage.User { return d.byID[id] }
func (d directory) GetUserByUsername(name string) *storage.User {
	for _, u := range d.byID {
		if u.Username == name {
			return u
		}
	}
	return nil
}
func (d directory) ExampleClientID() string { return "vigie" }

// claimsStorage adds each user's claims where the provider builds the ID
// token and the userinfo answer.
type claimsStorage struct {
	*storage.Storage
	dir directory
}

func (s *claimsStorage) add(ui *oidc.UserInfo, subject string) {
	u := s.dir.byID[subject]
	if u == nil {
		return
	}
	ui.PreferredUsername = u.Username
	ui.Name = u.FirstName + " " + u.LastName
	for k, v := range s.dir.claims[subject] {
		ui.AppendClaims(k, v)
	}
}

func (s *claimsStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, token, scopes); err != nil {
		return err
	}
	s.add(ui, token.GetSubject())
	return nil
}

func (s *claimsStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.add(ui, ui.Subject)
	return nil
}
