package publish

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store"
	"vigie/demo"
	"vigie/rules"
	"vigie/rules/bundle"
	"vigie/tstest"
)

type fixture struct {
	st  *store.SQLite
	p   *Publisher
	key ed25519.PrivateKey
	dir string
	now time.Time
}

var rssi = Actor{Name: "rssi", Role: "rssi", Remote: "127.0.0.1"}

// newFixture seeds a store with the demo policy reading the embedded sample
// lists copied under the data directory, as an imported tree would be.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	if _, err := demo.WriteSample(filepath.Join(dir, "lists")); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(filepath.Join(dir, "vigie.db"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	f := &fixture{st: st, key: key, dir: dir, now: time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)}
	pol, err := demo.Policy("")
	if err != nil {
		t.Fatal(err)
	}
	for i := range pol.Sources {
		pol.Sources[i].Path = filepath.Join("lists", pol.Sources[i].Path)
	}
	ctx := context.Background()
	if err := ReplaceDraft(ctx, st, pol, rssi, f.now); err != nil {
		t.Fatal(err)
	}
	f.p = f.open(t)
	return f
}

func (f *fixture) open(t *testing.T) *Publisher {
	p, err := New(context.Background(), f.st, Config{DataDir: f.dir, Key: f.key, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) addDomain(t *testing.T, list, domain string) {
	t.Helper()
	ctx := context.Background()
	err := f.st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AddEntries(ctx, []store.Entry{{List: list, Kind: store.KindDomain, Value: domain, Author: "rssi", Added: f.now}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPublishWakeDiffRollback(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if h := f.p.Head(); h.Serial != 0 {
		t.Fatalf("head before publishing: %d", h.Serial)
	}
	v1, err := f.p.Publish(ctx, rssi, "première version", false)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Serial != 1 || f.p.Head().Serial != 1 {
		t.Fatalf("serial %d, head %d", v1.Serial, f.p.Head().Serial)
	}
	if _, err := f.p.Publish(ctx, rssi, "rien", false); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("unchanged draft: %v, want ErrUnchanged", err)
	}

	// A waiter on serial 1 wakes when serial 2 is published.
	woke := make(chan *Head, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		woke <- f.p.Wait(ctx, 1)
	}()
	tstest.Eventually(t, 10*time.Second, func() bool { return f.p.Waiting() != 0 }, "the long-poll never waited")
	f.addDomain(t, "academie-bloque", "nouveau-site.example")
	f.now = f.now.Add(time.Minute)
	v2, err := f.p.Publish(ctx, rssi, "bloque un site", false)
	if err != nil {
		t.Fatal(err)
	}
	if h := <-woke; h == nil || h.Serial != 2 {
		t.Fatalf("waiter woke with %+v", h)
	}
	if !strings.Contains(string(v2.Diff), `"added":["domain:nouveau-site.example"]`) {
		t.Fatalf("diff does not name the added domain: %s", v2.Diff)
	}
	var d Diff
	mustJSON(t, v2.Diff, &d)
	if d.Sections == nil || d.Sections.Changed > 3 || d.Sections.Bytes*10 > d.Sections.BundleBytes {
		t.Fatalf("a one-domain change moves %+v", d.Sections)
	}

	// The published bundle verifies and blocks the new domain.
	b, err := f.p.Bundle(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	rs, h, err := rules.DecodeBundle(b.Raw, f.p.PublicKey())
	if err != nil || h.Serial != 2 {
		t.Fatalf("bundle 2: %v", err)
	}
	id, _ := rs.Profile("eleves")
	if v := rs.Decide(id, rules.Query{Host: "www.nouveau-site.example", Time: f.now}); v.Action != rules.Block {
		t.Fatalf("new domain not blocked: %+v", v)
	}

	// Rollback republishes serial 1's sections under serial 3.
	v3, err := f.p.Rollback(ctx, rssi, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if v3.Serial != 3 || v3.RollbackOf != 1 {
		t.Fatalf("rollback version %+v", v3)
	}
	m1, _ := f.st.Version(ctx, 1)
	m3, _ := f.st.Version(ctx, 3)
	_, s1, _ := bundle.ReadHeader(m1.Manifest, nil)
	_, s3, _ := bundle.ReadHeader(m3.Manifest, nil)
	for i := range s1 {
		if s1[i].Hash != s3[i].Hash {
			t.Fatalf("rollback section %s differs from serial 1", s1[i].Name)
		}
	}
	entries, _ := f.st.AllEntries(ctx)
	for _, e := range entries {
		if e.Value == "nouveau-site.example" {
			t.Fatal("rollback left the rolled-back entry in the draft")
		}
	}

	// A restarted publisher serves the latest version.
	p2 := f.open(t)
	if h := p2.Head(); h.Serial != 3 || h.Hash != v3.Hash {
		t.Fatalf("restarted head %d %s", h.Serial, h.Hash)
	}

	// Every publication is in the audit chain.
	es, _ := f.st.AuditEntries(ctx, 0, 0)
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); got != "draft.replace,publish,publish,rollback" {
		t.Fatalf("audit actions %s", got)
	}
	if !audit.Verify(es).OK() {
		t.Fatal("audit chain broken")
	}
}

func TestPublishInvalidDraft(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addDomain(t, "academie-bloque", "pas un domaine")
	err := f.st.Update(ctx, func(tx store.Tx) error {
		return tx.CreateList(ctx, store.List{ID: "orpheline", Category: "categorie_inconnue", CreatedBy: "rssi", CreatedAt: f.now})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.p.Publish(ctx, rssi, "", false)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("invalid draft published: %v", err)
	}
	joined := strings.Join(ve.Problems, "\n")
	for _, want := range []string{"(academie-bloque).domains", "pas un domaine", "(orpheline).category", "categorie_inconnue"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems do not mention %q:\n%s", want, joined)
		}
	}
	if f.p.Head().Serial != 0 {
		t.Fatal("a failed publication moved the head")
	}
	if _, err := f.st.LatestVersion(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a failed publication stored a version")
	}
}

func TestBlobServe(t *testing.T) {
	raw := []byte(strings.Repeat("vigie ", 1000))
	b := newBlob(raw, "abc")
	tests := []struct {
		name, accept, inm string
		status            int
		gzip              bool
	}{
		{"plain", "", "", 200, false},
		{"gzip", "gzip, deflate", "", 200, true},
		{"gzip refused", "gzip;q=0", "", 200, false},
		{"not modified", "gzip", `"abc"`, 304, false},
		{"other etag", "", `"def"`, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.accept != "" {
				r.Header.Set("Accept-Encoding", tt.accept)
			}
			if tt.inm != "" {
				r.Header.Set("If-None-Match", tt.inm)
			}
			w := httptest.NewRecorder()
			b.ServeHTTP(w, r)
			if w.Code != tt.status || (w.Header().Get("Content-Encoding") == "gzip") != tt.gzip {
				t.Fatalf("status %d encoding %q", w.Code, w.Header().Get("Content-Encoding"))
			}
			if tt.status == http.StatusOK && !tt.gzip && w.Body.Len() != len(raw) {
				t.Fatalf("body %d bytes", w.Body.Len())
			}
		})
	}
}

// TestKeyRotation: the control plane restarted with a new académie key
// still starts on the version signed by the old one (edges pinning both
// keys keep taking it), serves it, rolls back to it by signing it anew, and
// signs its next publications with the new key only.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.p.Publish(ctx, rssi, "sous l'ancienne clé", false); err != nil {
		t.Fatal(err)
	}
	oldPub := f.key.Public().(ed25519.PublicKey)
	_, f.key, _ = ed25519.GenerateKey(rand.Reader)
	newPub := f.key.Public().(ed25519.PublicKey)
	p := f.open(t)
	if h := p.Head(); h.Serial != 1 {
		t.Fatalf("after the key switch, head %d, want 1", h.Serial)
	}
	b, err := p.Bundle(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rules.DecodeBundle(b.Raw, oldPub); err != nil {
		t.Errorf("version 1 no longer verifies with the key that signed it: %v", err)
	}
	f.addDomain(t, "academie-bloque", "apres-rotation.example")
	f.now = f.now.Add(time.Minute)
	if _, err := p.Publish(ctx, rssi, "sous la nouvelle clé", false); err != nil {
		t.Fatal(err)
	}
	v3, err := p.Rollback(ctx, rssi, 1, "")
	if err != nil {
		t.Fatalf("rollback to a version of the old key: %v", err)
	}
	for serial := uint64(2); serial <= v3.Serial; serial++ {
		b, err := p.Bundle(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := rules.DecodeBundle(b.Raw, newPub); err != nil {
			t.Errorf("version %d does not verify with the new key: %v", serial, err)
		}
		if _, _, err := rules.DecodeBundle(b.Raw, oldPub); err == nil {
			t.Errorf("version %d verifies with the old key", serial)
		}
	}
}
