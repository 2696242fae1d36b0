package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"vigie/controlplane/store/pgtest"
	"vigie/rules/policy"
	"vigie/tstest"
)

func putDraft(t *testing.T, s Store, academie string) {
	t.Helper()
	ctx := context.Background()
	err := s.Update(ctx, func(tx Tx) error {
		_, err := tx.PutDraft(ctx, Draft{Policy: policy.Policy{Version: 1, Academie: academie}, UpdatedBy: "rssi", UpdatedAt: t0}, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Two académies in one database: each schema its own tables, its own
// audit chain and its own write lock.
func TestPostgresSchemasShareACluster(t *testing.T) {
	url := pgtest.Shared(t).Database(t)
	a := openPostgres(t, url, "ac_strasbourg")
	b := openPostgres(t, url, "ac_nancy_metz")
	putDraft(t, a, "Strasbourg")
	putDraft(t, b, "Nancy-Metz")
	ctx := context.Background()
	for s, want := range map[Store]string{a: "Strasbourg", b: "Nancy-Metz"} {
		d, err := s.Draft(ctx)
		if err != nil || d.Policy.Academie != want || d.Revision != 1 {
			t.Fatalf("draft: %+v %v, want %s at revision 1", d.Policy.Academie, err, want)
		}
	}
	if a.lockKey("write") == b.lockKey("write") {
		t.Fatal("two schemas share their write lock")
	}
	// Reopening migrates nothing and keeps the data.
	a2 := openPostgres(t, url, "ac_strasbourg")
	if d, err := a2.Draft(ctx); err != nil || d.Policy.Academie != "Strasbourg" {
		t.Fatalf("reopened: %+v %v", d, err)
	}
	if _, err := a.db.Exec(`UPDATE schema_version SET version = 999`); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPostgres(ctx, url, PostgresConfig{Schema: "ac_strasbourg"}); err == nil {
		t.Fatal("a schema from a newer program was opened")
	}
	if _, err := OpenPostgres(ctx, url, PostgresConfig{Schema: "Bad-Name"}); err == nil {
		t.Fatal("a schema name needing quotes was accepted")
	}
}

// Watch delivers committed changes only, to every process.
func TestPostgresWatch(t *testing.T) {
	url := pgtest.Shared(t).Database(t)
	a := openPostgres(t, url, "vigie")
	b := openPostgres(t, url, "vigie")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan Event, 16)
	go b.Watch(ctx, func(e Event) { events <- e })
	if e := <-events; e.Kind != EventResync {
		t.Fatalf("first event %+v, want resync", e)
	}
	err := a.Update(ctx, func(tx Tx) error {
		if err := tx.CreateEdge(ctx, Edge{ID: "e1", UAI: "0671234X", CreatedAt: t0, TokenHash: "h1"}); err != nil {
			return err
		}
		return tx.DeleteEdge(ctx, "e1")
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Update(ctx, func(tx Tx) error {
		tx.InsertVersion(ctx, Version{Serial: 9, Manifest: []byte{1}, Policy: []byte(`{}`)})
		return errors.New("rolled back")
	})
	a.Update(ctx, func(tx Tx) error {
		return tx.InsertVersion(ctx, Version{Serial: 1, Manifest: []byte{1}, Policy: []byte(`{}`)})
	})
	want := []Event{{EventEdge, "e1"}, {EventVersion, "1"}}
	for _, w := range want {
		select {
		case e := <-events:
			if e != w {
				t.Fatalf("event %+v, want %+v (a rolled-back change was announced?)", e, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %+v", w)
		}
	}
}

// Exactly one process leads; when its connection dies, another takes over.
func TestPostgresLeadMoves(t *testing.T) {
	url := pgtest.Shared(t).Database(t)
	var mu sync.Mutex
	running := map[int]bool{}
	var maxTogether, starts int
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stops := make([]context.CancelFunc, 3)
	var wg sync.WaitGroup
	for i := range stops {
		p := openPostgres(t, url, "vigie")
		pctx, stop := context.WithCancel(ctx)
		stops[i] = stop
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p.lead(pctx, "purge", 50*time.Millisecond, func(lctx context.Context) {
				mu.Lock()
				running[i] = true
				starts++
				maxTogether = max(maxTogether, len(running))
				mu.Unlock()
				<-lctx.Done()
				mu.Lock()
				delete(running, i)
				mu.Unlock()
			})
		}(i)
	}
	leader := func() int {
		who := -1
		tstest.Eventually(t, 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for i := range running {
				who = i
				return true
			}
			return false
		}, "nobody leads")
		return who
	}
	first := leader()
	// The server ends the leader's session (as when the network to it
	// breaks): its work is stopped and somebody leads again.
	admin := openPostgres(t, url, "vigie")
	if _, err := admin.db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted`); err != nil {
		t.Fatal(err)
	}
	tstest.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if starts >= 2 && len(running) == 1 {
			// The old holder learns of its lost session at its next
			// check (one interval); only from then on is leadership
			// exclusive again.
			maxTogether = 1
			return true
		}
		return false
	}, "leadership not taken again after the leader's session ended")
	// The leading process goes away: another one leads.
	cur := leader()
	stops[cur]()
	tstest.Eventually(t, 10*time.Second, func() bool { return leader() != cur }, "leadership did not move")
	cancel()
	wg.Wait()
	if maxTogether != 1 {
		t.Fatalf("%d processes led at once", maxTogether)
	}
	_ = first
}
