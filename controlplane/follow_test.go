package controlplane

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/publish"
	"vigie/controlplane/store"
	"vigie/demo"
	"vigie/keyfile"
	"vigie/rules"
)

// After its change feed was lost, a replica forgets the edge tokens it
// cached: a revocation made meanwhile elsewhere was not announced to it.
func TestResyncForgetsCachedEdgeTokens(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyfile.Generate(filepath.Join(dir, "academie.key")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cp, err := Open(ctx, Config{DataDir: dir}, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	const token = "vge_essai"
	err = cp.Store.Update(ctx, func(tx store.Tx) error {
		return tx.CreateEdge(ctx, store.Edge{ID: "e1", UAI: "0671234X", CreatedAt: time.Now(), TokenHash: auth.HashToken(token)})
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cp.Handler())
	defer srv.Close()
	poll := func() int {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/edge/bundle?after=1000000&wait=0", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := poll(); code == http.StatusUnauthorized {
		t.Fatalf("a registered edge refused: %d", code)
	}
	// Deleted behind this process's back (another replica, whose
	// announcement this one missed): the cached token still works...
	if err := cp.Store.Update(ctx, func(tx store.Tx) error { return tx.DeleteEdge(ctx, "e1") }); err != nil {
		t.Fatal(err)
	}
	if code := poll(); code == http.StatusUnauthorized {
		t.Fatal("the token was not cached: this test tests nothing")
	}
	// ...until the feed comes back and says it may have missed changes.
	cp.follow(ctx)(store.Event{Kind: store.EventResync})
	if code := poll(); code != http.StatusUnauthorized {
		t.Fatalf("after a resync, the deleted edge's token: %d", code)
	}
}

// A replica that was never told of another's publication (no change feed
// at all here: SQLite) still serves it within its catch-up period, reading
// only the manifest and the changed sections.
func TestCatchUpWithoutAnnouncement(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyfile.Generate(filepath.Join(dir, "academie.key")); err != nil {
		t.Fatal(err)
	}
	key, err := keyfile.LoadPrivate(filepath.Join(dir, "academie.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demo.WriteSample(filepath.Join(dir, "lists")); err != nil {
		t.Fatal(err)
	}
	pol, err := demo.Policy("")
	if err != nil {
		t.Fatal(err)
	}
	for i := range pol.Sources {
		pol.Sources[i].Path = filepath.Join("lists", pol.Sources[i].Path)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := Open(ctx, Config{DataDir: dir}, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	who := publish.Actor{Name: "rssi", Role: "rssi"}
	if err := publish.ReplaceDraft(ctx, cp.Store, pol, who, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The other replica: its own publisher on the same database.
	other, err := publish.New(ctx, cp.Store, publish.Config{DataDir: dir, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	v, err := other.Publish(ctx, who, "publiée ailleurs", false)
	if err != nil {
		t.Fatal(err)
	}
	if s := cp.Publisher.Head().Serial; s != 0 {
		t.Fatalf("this replica already serves %d: this test tests nothing", s)
	}
	go cp.catchUp(ctx, 20*time.Millisecond)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	h := cp.Publisher.Wait(wctx, 0)
	if h == nil || h.Serial != v.Serial || h.Hash != v.Hash {
		t.Fatalf("the missed publication was not caught up: %+v", h)
	}
	b, err := cp.Publisher.Bundle(ctx, v.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if _, hdr, err := rules.DecodeBundle(b.Raw, cp.PublicKey()); err != nil || hdr.Serial != v.Serial {
		t.Fatalf("the caught-up bundle does not verify: %v", err)
	}
}
