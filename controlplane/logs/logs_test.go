package logs_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/cli"
	"vigie/controlplane/api"
	"vigie/controlplane/auth"
	"vigie/controlplane/logs"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/controlplane/store/pgtest"
	"vigie/demo"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/export"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
	"vigie/journal/ship"
	"vigie/keyfile"
	"vigie/rules/policy"
)

const (
	monnet = demo.UAI
	autre  = "0680001A"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is a control plane on a real loopback HTTP server, with the demo
// policy, one account per role, a chef of another school, one edge, and
// the logs service mounted on it.
type env struct {
	dir     string
	st      *store.SQLite
	http    *httptest.Server
	tokens  map[string]string
	edgeTok string
	pubPath string
	svc     *logs.Service
}

func newEnv(t *testing.T) *env { return newEnvDB(t, "") }

// newEnvDB is newEnv with the archive in database (a postgres:// URL, or
// "" for DATA/journal.db).
func newEnvDB(t *testing.T, database string) *env {
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
	pol.Schools = append(pol.Schools, policy.School{UAI: autre, Name: "Collège Victor Hugo",
		Zones: []policy.Zone{{Name: "pedagogique", CIDRs: []string{"10.50.0.0/24"}, Profile: "eleves"}}})
	who := publish.Actor{Name: "setup"}
	if err := publish.ReplaceDraft(ctx, st, pol, who, time.Now()); err != nil {
		t.Fatal(err)
	}
	pub, err := publish.New(ctx, st, publish.Config{DataDir: dir, Key: key, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	au := auth.New(st, nil, auth.Config{}, nil)
	srv := api.New(st, au, pub, api.Config{DataDir: dir, Log: quiet})
	e := &env{dir: dir, st: st, tokens: map[string]string{}}
	e.svc, err = logs.Open(srv, key, logs.Config{DataDir: dir, Academie: "Académie de Strasbourg", Database: database, DatabaseSchema: "ac_logs"}, logs.Deps{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(srv)
	t.Cleanup(func() {
		e.http.Close()
		e.svc.Close()
		st.Close()
	})
	for _, a := range []struct {
		login string
		role  auth.Role
		uai   string
	}{{"rssi", auth.RSSI, ""}, {"chef", auth.Chef, monnet}, {"chef-autre", auth.Chef, autre}, {"tech", auth.Technicien, ""}, {"audit", auth.Auditeur, ""}} {
		h, _ := auth.HashPassword("x", auth.Params{Memory: 64, Time: 1, Threads: 1})
		var id int64
		if err := st.Update(ctx, func(tx store.Tx) error {
			var err error
			id, err = tx.CreateUser(ctx, store.User{Login: a.login, Role: string(a.role), UAI: a.uai, PasswordHash: h, CreatedAt: time.Now()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		tok, _, err := au.CreateAPIToken(ctx, &auth.Identity{UserID: id, Login: a.login, Role: a.role, UAI: a.uai}, "test", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[a.login] = tok
	}
	tok, hash := auth.NewToken(auth.EdgeTokenPrefix)
	if err := st.Update(ctx, func(tx store.Tx) error {
		return tx.CreateEdge(ctx, store.Edge{ID: "monnet-1", UAI: monnet, TokenHash: hash, CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	e.edgeTok = tok
	e.pubPath = filepath.Join(dir, "academie.pub")
	if err := keyfile.WritePublic(e.pubPath, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	return e
}

// edge runs a real edge journal for the demo school, writes demo traffic
// into it and ships it to the control plane.
func (e *env) edge(t *testing.T, key ed25519.PrivateKey, n int, start time.Time) *ship.Shipper {
	t.Helper()
	j, err := segment.OpenJournal(segment.Options{Dir: filepath.Join(t.TempDir(), "journal"), UAI: monnet, Key: key, CommitInterval: time.Millisecond, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	g := journaltest.New(11, monnet, start)
	for i := 0; i < n; i++ {
		for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
			r := g.Next(s)
			j.Append(&r)
		}
		if i == n/2 {
			j.Sync(context.Background())
			j.Log(journal.Connexions).Rotate(context.Background())
		}
	}
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	j.Log(journal.Connexions).WaitSealed(context.Background())
	sh, err := ship.New(ship.Options{Logs: []*segment.Log{j.Log(journal.Connexions), j.Log(journal.Navigation)}, URL: e.http.URL, Token: e.edgeTok})
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

func (e *env) auditActions(t *testing.T) []string {
	entries, err := e.st.AuditEntries(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Action+" "+en.Actor)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestChefExportsDemoTrafficThroughCLI is the acceptance: the
// demo school's edge ships its journal, and its chef d'établissement gets
// a verifiable ZIP through the API with the CLI.
func TestChefExportsDemoTrafficThroughCLI(t *testing.T) {
	e := newEnv(t)
	_, edgeKey, _ := ed25519.GenerateKey(rand.Reader)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	sh := e.edge(t, edgeKey, 1500, start)
	if err := sh.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export.zip")
	var stdout, stderr bytes.Buffer
	code := cli.Main([]string{"logs", "export", "--server", e.http.URL, "--token", e.tokens["chef"], "--uai", monnet,
		"--from", start.Format(time.RFC3339), "--to", time.Now().Format(time.RFC3339), "--reference", "PV 2026/00042",
		"-o", out, "--pubkey", e.pubPath}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("vigie logs export: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "Vérification réussie") || !strings.Contains(stdout.String(), "connexions 1500, navigation 1500") {
		t.Fatalf("export output:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := cli.Main([]string{"logs", "verify", out, "--pubkey", e.pubPath}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "suite complète") {
		t.Fatalf("vigie logs verify: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	// One changed byte and verify fails, naming the problem.
	data, _ := os.ReadFile(out)
	data[len(data)/2] ^= 0x20
	bad := filepath.Join(t.TempDir(), "altered.zip")
	os.WriteFile(bad, data, 0o600)
	stderr.Reset()
	if code := cli.Main([]string{"logs", "verify", bad, "--pubkey", e.pubPath}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "ÉCHEC") {
		t.Fatalf("altered export: exit %d, %s", code, stderr.String())
	}
	if acts := e.auditActions(t); !contains(acts, "export chef") || !contains(acts, "logs.edge_key.pin edge:monnet-1") {
		t.Fatalf("audit log: %v", acts)
	}
}

// TestArchiveInPostgres: with a postgres:// database, the edges' batches
// go to PostgreSQL (where every replica reads them), not to a file of the
// replica's data directory, and exports read them there.
func TestArchiveInPostgres(t *testing.T) {
	url := pgtest.Start(t).Database(t)
	e := newEnvDB(t, url)
	_, edgeKey, _ := ed25519.GenerateKey(rand.Reader)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if err := e.edge(t, edgeKey, 300, start).Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "journal.db")); err == nil {
		t.Fatal("the archive went to DATA/journal.db")
	}
	// Another replica's view: the same database, opened apart.
	st, err := archive.OpenPostgres(context.Background(), url, archive.PostgresConfig{Schema: "ac_logs"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	err = st.Scan(context.Background(), archive.Query{UAI: monnet, From: start.Add(-time.Hour), To: time.Now().Add(time.Hour)}, func(archive.Chain, *archive.Stored) error { n++; return nil })
	if err != nil || n != 600 {
		t.Fatalf("the other replica sees %d records (%v), want 600", n, err)
	}
	var stdout, stderr bytes.Buffer
	out := filepath.Join(t.TempDir(), "export.zip")
	code := cli.Main([]string{"logs", "export", "--server", e.http.URL, "--token", e.tokens["chef"], "--uai", monnet,
		"--from", start.Format(time.RFC3339), "--to", time.Now().Format(time.RFC3339), "--reference", "PV 2026/00043",
		"-o", out, "--pubkey", e.pubPath}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "connexions 300, navigation 300") {
		t.Fatalf("vigie logs export: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

func post(t *testing.T, url, token string, body any) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func TestExportAccessIsCheckedAndAudited(t *testing.T) {
	e := newEnv(t)
	_, edgeKey, _ := ed25519.GenerateKey(rand.Reader)
	start := time.Now().Add(-time.Hour)
	e.edge(t, edgeKey, 50, start).Round(context.Background())
	req := export.APIRequest{UAI: monnet, From: start.Format(time.RFC3339), To: time.Now().Format(time.RFC3339), Reference: "PV 1", Motive: "test"}
	for _, tc := range []struct {
		who    string
		uai    string
		status int
		action string
	}{
		{"tech", monnet, 403, "export.denied tech"},
		{"audit", monnet, 403, "export.denied audit"},
		{"chef-autre", monnet, 403, "export.denied chef-autre"},
		{"chef", autre, 403, "export.denied chef"},
		{"rssi", monnet, 200, "export rssi"},
		{"chef", monnet, 200, "export chef"},
	} {
		t.Run(tc.who+" "+tc.uai, func(t *testing.T) {
			r := req
			r.UAI = tc.uai
			resp, body := post(t, e.http.URL+export.Path, e.tokens[tc.who], r)
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 && (resp.Header.Get("Content-Type") != "application/zip" || resp.Trailer.Get(export.HashTrailer) == "") {
				t.Fatalf("answer %v", resp.Header)
			}
			if !contains(e.auditActions(t), tc.action) {
				t.Fatalf("%q not in the audit log", tc.action)
			}
		})
	}
	t.Run("no reference", func(t *testing.T) {
		r := req
		r.Reference = ""
		if resp, body := post(t, e.http.URL+export.Path, e.tokens["rssi"], r); resp.StatusCode != 422 {
			t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
		}
	})
}

func TestEdgeIngestScope(t *testing.T) {
	e := newEnv(t)
	_, k1, _ := ed25519.GenerateKey(rand.Reader)
	if err := e.edge(t, k1, 20, time.Now().Add(-time.Hour)).Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The same edge with another key is refused: the first key is pinned.
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	err := e.edge(t, k2, 20, time.Now().Add(-time.Hour)).Round(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("second key: %v", err)
	}
	// A person cannot post batches.
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/api/v1/logs/batches", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+e.tokens["rssi"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("rssi posting a batch: HTTP %d", resp.StatusCode)
	}
	// After the RSSI unpins, the reinstalled edge's key is accepted.
	dreq, _ := http.NewRequest(http.MethodDelete, e.http.URL+"/api/v1/logs/keys/monnet-1", nil)
	dreq.Header.Set("Authorization", "Bearer "+e.tokens["rssi"])
	if resp, err := http.DefaultClient.Do(dreq); err != nil || resp.StatusCode != 204 {
		t.Fatalf("unpin: %v %v", resp, err)
	}
	if err := e.edge(t, k2, 20, time.Now().Add(-time.Hour)).Round(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestHoldsRoutes(t *testing.T) {
	e := newEnv(t)
	body := map[string]string{"uai": monnet, "from": "2026-03-02", "to": "2026-03-03", "client": "10.10.0.14", "reference": "PV 7"}
	if resp, b := post(t, e.http.URL+"/api/v1/holds", e.tokens["chef"], body); resp.StatusCode != 403 {
		t.Fatalf("chef placing a hold: HTTP %d %s", resp.StatusCode, b)
	}
	resp, b := post(t, e.http.URL+"/api/v1/holds", e.tokens["rssi"], body)
	if resp.StatusCode != 201 {
		t.Fatalf("HTTP %d %s", resp.StatusCode, b)
	}
	var h struct{ ID int64 }
	json.Unmarshal(b, &h)
	if resp, b := post(t, e.http.URL+"/api/v1/holds/"+itoa(h.ID)+"/release", e.tokens["rssi"], nil); resp.StatusCode != 200 {
		t.Fatalf("release: HTTP %d %s", resp.StatusCode, b)
	}
	acts := e.auditActions(t)
	if !contains(acts, "journal.hold.place rssi") || !contains(acts, "journal.hold.release rssi") {
		t.Fatalf("audit: %v", acts)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
