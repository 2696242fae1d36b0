package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/demo"
	"vigie/rules/bundle"
	"vigie/rules/policy"
)

// env is a control plane on a real loopback HTTP server with a real SQLite
// file, seeded with the demo policy on the embedded sample lists, one
// account per role and one edge.
type env struct {
	t       testing.TB
	dir     string
	st      *store.SQLite
	srv     *Server
	http    *httptest.Server
	ut1     *httptest.Server // serves a UT1 tarball over TLS
	tokens  map[string]string
	passwd  map[string]string
	edgeTok string
	metaHex string
	cancel  context.CancelFunc
}

const (
	monnet = "0671234X"
	autre  = "0680001A"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	if _, err := demo.WriteSample(filepath.Join(dir, "lists")); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(filepath.Join(dir, "vigie.db"), 4)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	pol, err := demo.Policy("")
	if err != nil {
		t.Fatal(err)
	}
	for i := range pol.Sources {
		pol.Sources[i].Path = filepath.Join("lists", pol.Sources[i].Path)
	}
	pol.Schools = append(pol.Schools,
		policy.School{UAI: autre, Name: "Collège Victor Hugo", Zones: []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.50.0.0/24"}, Profile: "eleves"}}},
		policy.School{UAI: "0679999Z", Name: "Collège à fermer", Zones: []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.60.0.0/24"}, Profile: "eleves"}}})
	pol.Profiles = append(pol.Profiles, policy.Profile{ID: "jetable", Name: "À supprimer"})
	pol.Lists = append(pol.Lists, policy.List{ID: "jetable", Category: "academie_bloque", Domains: []string{"jetable.example"}})
	who := publish.Actor{Name: "setup"}
	if err := publish.ReplaceDraft(ctx, st, pol, who, time.Now()); err != nil {
		t.Fatal(err)
	}
	pub, err := publish.New(ctx, st, publish.Config{DataDir: dir, Key: key, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, who, "version initiale", false); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, st: st, tokens: map[string]string{}, passwd: map[string]string{}}
	e.ut1 = ut1Server(t)
	au := auth.New(st, nil, auth.Config{}, nil)
	e.srv = New(st, au, pub, Config{DataDir: dir, Log: quiet, HTTPClient: e.ut1.Client(), StatusFlush: 20 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	ran := make(chan struct{})
	srv := e.srv // a test may replace e.srv: this goroutine runs the first
	go func() {
		srv.Run(runCtx)
		close(ran)
	}()
	e.http = httptest.NewServer(e.srv)
	t.Cleanup(func() {
		e.http.Close()
		cancel()
		<-ran // its last flush writes to the store
		st.Close()
	})
	// Principals are keyed by role, and the scoped technicians (Bas-Rhin,
	// Haut-Rhin) by login.
	for _, a := range []struct {
		login string
		role  auth.Role
		uai   string
		scope string
	}{{"rssi", auth.RSSI, "", ""}, {"chef", auth.Chef, monnet, ""}, {"tech", auth.Technicien, "", ""}, {"audit", auth.Auditeur, "", ""},
		{"aqssi", auth.AQSSI, "", ""}, {"tech67", auth.Technicien, "", "067"}, {"tech68", auth.Technicien, "", "068"}} {
		pw := "mot de passe de " + a.login
		h, _ := auth.HashPassword(pw, auth.Params{Memory: 64, Time: 1, Threads: 1})
		var id int64
		err := st.Update(ctx, func(tx store.Tx) error {
			var err error
			id, err = tx.CreateUser(ctx, store.User{Login: a.login, Role: string(a.role), UAI: a.uai, Scope: a.scope, PasswordHash: h, CreatedAt: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := au.CreateAPIToken(ctx, &auth.Identity{UserID: id, Login: a.login, Role: a.role, UAI: a.uai}, "test", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		key := string(a.role)
		if a.scope != "" {
			key = a.login
		}
		e.tokens[key], e.passwd[a.login] = tok, pw
	}
	for _, id := range []string{"monnet-1", "monnet-2", "jetable-edge"} {
		tok, hash := auth.NewToken(auth.EdgeTokenPrefix)
		st.Update(ctx, func(tx store.Tx) error {
			return tx.CreateEdge(ctx, store.Edge{ID: id, UAI: monnet, TokenHash: hash, CreatedAt: time.Now()})
		})
		if id == "monnet-1" {
			e.edgeTok = tok
			e.tokens[string(auth.Edge)] = tok
		}
	}
	_, secs, _ := bundle.ReadHeader(pub.Head().Manifest.Raw, nil)
	for _, s := range secs {
		if s.Name == "meta" {
			e.metaHex = hex.EncodeToString(s.Hash[:])
		}
	}
	return e
}

// ut1Server serves the sample UT1 tree as a tarball with its MD5SUM.LST.
func ut1Server(t testing.TB) *httptest.Server {
	dir, err := demo.WriteSample(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "ut1")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, p)
		name := "blacklists/" + filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target})
		default:
			b, _ := os.ReadFile(p)
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
			tw.Write(b)
		}
		return nil
	})
	tw.Close()
	zw.Close()
	tgz := buf.Bytes()
	sum := md5.Sum(tgz)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/blacklists.tar.gz":
			w.Write(tgz)
		case "/MD5SUM.LST":
			io.WriteString(w, hex.EncodeToString(sum[:])+"  blacklists.tar.gz\n")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request as role ("" for anonymous) and returns status and body.
func (e *env) do(role, method, path string, body any) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[role])
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (e *env) mustDo(role, method, path string, body any, want int) []byte {
	e.t.Helper()
	code, b, _ := e.do(role, method, path, body)
	if code != want {
		e.t.Fatalf("%s %s as %q: status %d, want %d: %s", method, path, role, code, want, b)
	}
	return b
}
