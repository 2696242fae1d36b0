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
	"vigie/controlplane/store"
	"vigie/keyfile"
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
