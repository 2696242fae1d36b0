package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"vigie/controlplane/audit"
	"vigie/controlplane/store/pgtest"
	"vigie/rules/policy"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backend is one Store implementation under test, with a raw statement
// runner for tests that tamper with rows behind the store's back.
type backend struct {
	name string
	open func(t *testing.T) (Store, func(q string) error)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (Store, func(string) error) {
		s, _ := open(t)
		return s, func(q string) error { _, err := s.w.Exec(q); return err }
	}},
	{"postgres", func(t *testing.T) (Store, func(string) error) {
		p := openPostgres(t, pgtest.Shared(t).Database(t), "vigie")
		return p, func(q string) error { _, err := p.db.Exec(q); return err }
	}},
}

// eachBackend runs fn as a subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, s Store, exec func(string) error)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, exec := b.open(t)
			fn(t, s, exec)
		})
	}
}

func openPostgres(t *testing.T, url, schema string) *Postgres {
	t.Helper()
	p, err := OpenPostgres(context.Background(), url, PostgresConfig{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func open(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigie.db")
	s, err := OpenSQLite(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

var t0 = time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)

func entry(action string) *audit.Entry {
	return &audit.Entry{Time: t0, Actor: "rssi", Role: "rssi", Action: action, Target: "x"}
}

func TestMigrateAndReopen(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	err := s.Update(ctx, func(tx Tx) error {
		_, err := tx.PutDraft(ctx, Draft{Policy: policy.Policy{Version: 1, Academie: "A"}, UpdatedBy: "rssi", UpdatedAt: t0}, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := OpenSQLite(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	d, err := s2.Draft(ctx)
	if err != nil || d.Policy.Academie != "A" || d.Revision != 1 || !d.UpdatedAt.Equal(t0) {
		t.Fatalf("draft after reopen: %+v %v", d, err)
	}
	var v int
	s2.w.QueryRow("PRAGMA user_version").Scan(&v)
	if v != SchemaVersion {
		t.Fatalf("schema version %d, want %d", v, SchemaVersion)
	}
	var mode string
	s2.r.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal mode %q, want wal", mode)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	_, path := open(t)
	db, _ := sql.Open("sqlite", path)
	db.Exec("PRAGMA user_version = 999")
	db.Close()
	if _, err := OpenSQLite(path, 1); err == nil {
		t.Fatal("a database from a newer program was opened")
	}
}

func TestDraftRevision(t *testing.T) { eachBackend(t, testDraftRevision) }

func testDraftRevision(t *testing.T, s Store, _ func(string) error) {
	ctx := context.Background()
	put := func(rev int64) error {
		return s.Update(ctx, func(tx Tx) error {
			_, err := tx.PutDraft(ctx, Draft{Policy: policy.Policy{Version: 1}, UpdatedBy: "a", UpdatedAt: t0}, rev)
			return err
		})
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	if err := put(0); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale revision: %v, want ErrConflict", err)
	}
	if err := put(1); err != nil {
		t.Fatal(err)
	}
}

func TestListsAndEntries(t *testing.T) { eachBackend(t, testListsAndEntries) }

func testListsAndEntries(t *testing.T, s Store, _ func(string) error) {
	ctx := context.Background()
	err := s.Update(ctx, func(tx Tx) error {
		if err := tx.CreateList(ctx, List{ID: "bloque", Category: "academie_bloque", CreatedBy: "rssi", CreatedAt: t0}); err != nil {
			return err
		}
		var es []Entry
		for i := 0; i < 25; i++ {
			es = append(es, Entry{List: "bloque", Kind: KindDomain, Value: fmt.Sprintf("d%02d.fr", i), Author: "rssi", Added: t0})
		}
		added, err := tx.AddEntries(ctx, es)
		if err != nil || len(added) != 25 {
			return fmt.Errorf("added %d: %v", len(added), err)
		}
		again, err := tx.AddEntries(ctx, es[:3])
		if err != nil || len(again) != 0 {
			return fmt.Errorf("re-adding added %d: %v", len(again), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.CreateList(ctx, List{ID: "bloque", Category: "x", CreatedBy: "rssi", CreatedAt: t0})
	}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate list: %v", err)
	}
	var all []Entry
	p := Page{Limit: 10}
	for {
		page, err := s.Entries(ctx, "bloque", p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < p.Limit {
			break
		}
		last := page[len(page)-1]
		p.After = string(last.Kind) + "\x00" + last.Value
	}
	if len(all) != 25 || all[24].Value != "d24.fr" {
		t.Fatalf("paged %d entries", len(all))
	}
	l, err := s.List(ctx, "bloque")
	if err != nil || l.Entries != 25 {
		t.Fatalf("list: %+v %v", l, err)
	}
	err = s.Update(ctx, func(tx Tx) error {
		rm, err := tx.RemoveEntries(ctx, "bloque", KindDomain, []string{"d01.fr", "absent.fr"})
		if err != nil || len(rm) != 1 || rm[0].Value != "d01.fr" || rm[0].Author != "rssi" {
			return fmt.Errorf("removed %+v: %v", rm, err)
		}
		return tx.DeleteList(ctx, "bloque")
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.AllEntries(ctx); len(n) != 0 {
		t.Fatalf("entries survive their list: %d", len(n))
	}
	if _, err := s.List(ctx, "bloque"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted list: %v", err)
	}
}

func TestVersionsAndSections(t *testing.T) { eachBackend(t, testVersionsAndSections) }

func testVersionsAndSections(t *testing.T, s Store, _ func(string) error) {
	ctx := context.Background()
	if _, err := s.LatestVersion(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store latest: %v", err)
	}
	data := []byte("section")
	h := sha256.Sum256(data)
	for serial := uint64(1); serial <= 3; serial++ {
		err := s.Update(ctx, func(tx Tx) error {
			if err := tx.PutSections(ctx, []Section{{Hash: h, Data: data}}); err != nil {
				return err
			}
			return tx.InsertVersion(ctx, Version{Serial: serial, Hash: "h", Author: "rssi", Comment: "c", Created: t0,
				Diff: json.RawMessage(`{"n":1}`), Manifest: []byte{1, 2}, Policy: json.RawMessage(`{}`)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.LatestVersion(ctx)
	if err != nil || v.Serial != 3 || len(v.Manifest) != 2 {
		t.Fatalf("latest: %+v %v", v, err)
	}
	vs, err := s.Versions(ctx, Page{Limit: 2})
	if err != nil || len(vs) != 2 || vs[0].Serial != 3 {
		t.Fatalf("versions page 1: %+v %v", vs, err)
	}
	vs, _ = s.Versions(ctx, Page{Limit: 2, After: "2"})
	if len(vs) != 1 || vs[0].Serial != 1 {
		t.Fatalf("versions page 2: %+v", vs)
	}
	got, err := s.Section(ctx, h)
	if err != nil || string(got) != "section" {
		t.Fatalf("section: %q %v", got, err)
	}
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.InsertVersion(ctx, Version{Serial: 3, Manifest: []byte{1}, Policy: json.RawMessage(`{}`)})
	}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate serial: %v", err)
	}
}

func TestEdgesUsersSessions(t *testing.T) { eachBackend(t, testEdgesUsersSessions) }

func testEdgesUsersSessions(t *testing.T, s Store, _ func(string) error) {
	ctx := context.Background()
	var uid int64
	err := s.Update(ctx, func(tx Tx) error {
		for i, uai := range []string{"0671234X", "0671234X", "0680001A"} {
			if err := tx.CreateEdge(ctx, Edge{ID: fmt.Sprintf("e%d", i), UAI: uai, CreatedAt: t0, TokenHash: fmt.Sprint("h", i)}); err != nil {
				return err
			}
		}
		var err error
		uid, err = tx.CreateUser(ctx, User{Login: "chef", Role: "chef_etablissement", UAI: "0671234X", CreatedAt: t0})
		if err != nil {
			return err
		}
		tid, err := tx.CreateUser(ctx, User{Login: "tech67", Role: "technicien", Scope: "067", CreatedAt: t0})
		if err != nil {
			return err
		}
		if err := tx.UpdateUser(ctx, User{ID: tid, Login: "tech67", Role: "technicien", Scope: "067,0681234A"}); err != nil {
			return err
		}
		if _, err := tx.CreateUser(ctx, User{Login: "chef", Role: "rssi", CreatedAt: t0}); !errors.Is(err, ErrConflict) {
			return fmt.Errorf("duplicate login: %v", err)
		}
		if err := tx.CreateSession(ctx, Session{IDHash: "s1", UserID: uid, CSRF: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		_, err = tx.CreateAPIToken(ctx, APIToken{UserID: uid, Name: "script", TokenHash: "t1", CreatedAt: t0})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := s.User(ctx, "tech67"); err != nil || u.Scope != "067,0681234A" {
		t.Fatalf("technicien scope: %+v %v", u, err)
	}
	es, err := s.Edges(ctx, "0671234X", Page{})
	if err != nil || len(es) != 2 {
		t.Fatalf("edges of a school: %d %v", len(es), err)
	}
	err = s.Update(ctx, func(tx Tx) error {
		return tx.RecordEdgeStatus(ctx, map[string]EdgeStatus{"e1": {LastSeen: t0, AppliedSerial: 7, AppliedHash: "ab", Software: "dev"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.EdgeByToken(ctx, "h1")
	if err != nil || e.AppliedSerial != 7 || !e.LastSeen.Equal(t0) || e.ClaimedSerial != 0 {
		t.Fatalf("edge status: %+v %v", e, err)
	}
	// A claimed version nobody published is kept beside the applied one,
	// and cleared by the next status without one.
	claim := EdgeStatus{LastSeen: t0, AppliedSerial: 7, AppliedHash: "ab", ClaimedSerial: 1<<40 + 3, ClaimedHash: "cd"}
	for _, want := range []EdgeStatus{claim, {LastSeen: t0, AppliedSerial: 8, AppliedHash: "ef"}} {
		if err := s.Update(ctx, func(tx Tx) error { return tx.RecordEdgeStatus(ctx, map[string]EdgeStatus{"e1": want}) }); err != nil {
			t.Fatal(err)
		}
		e, err := s.Edge(ctx, "e1")
		got := e.EdgeStatus
		if err != nil || !got.LastSeen.Equal(want.LastSeen) {
			t.Fatalf("edge status %+v (%v), want %+v", got, err, want)
		}
		if got.LastSeen = want.LastSeen; got != want {
			t.Fatalf("edge status %+v, want %+v", got, want)
		}
	}
	if _, err := s.Session(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.APIToken(ctx, "t1"); err != nil || tok.UserID != uid {
		t.Fatalf("token: %+v %v", tok, err)
	}
	err = s.Update(ctx, func(tx Tx) error {
		n, err := tx.DeleteExpiredSessions(ctx, t0.Add(2*time.Hour))
		if n != 1 {
			return fmt.Errorf("expired %d sessions", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
}

func verifyAll(t *testing.T, s Store) audit.Result {
	t.Helper()
	es, err := s.AuditEntries(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Verify(es)
}

func TestAuditChainInStore(t *testing.T) { eachBackend(t, testAuditChainInStore) }

func testAuditChainInStore(t *testing.T, s Store, exec func(string) error) {
	ctx := context.Background()
	// Concurrent writers still produce one unbroken chain: SQLite's writer
	// connection, PostgreSQL's write lock serializes them.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				err := s.Update(ctx, func(tx Tx) error {
					e := entry(fmt.Sprintf("test.%d.%d", i, j))
					e.After = json.RawMessage(`{"i":1}`)
					return tx.AppendAudit(ctx, e)
				})
				if err != nil {
					t.Error(err)
				}
			}
		}(i)
	}
	wg.Wait()
	res := verifyAll(t, s)
	if !res.OK() || res.Entries != 40 {
		t.Fatalf("chain: %+v", res)
	}
	// A failed transaction leaves no entry behind.
	s.Update(ctx, func(tx Tx) error {
		tx.AppendAudit(ctx, entry("rolled.back"))
		return errors.New("abort")
	})
	if res := verifyAll(t, s); res.Entries != 40 {
		t.Fatalf("rolled back entry kept: %+v", res)
	}

	t.Run("edited", func(t *testing.T) {
		if err := exec(`UPDATE audit SET actor = 'autre' WHERE seq = 12`); err != nil {
			t.Fatal(err)
		}
		res := verifyAll(t, s)
		if res.OK() || res.Problem.Seq != 12 {
			t.Fatalf("edit not detected: %+v", res)
		}
		exec(`UPDATE audit SET actor = 'rssi' WHERE seq = 12`)
		if res := verifyAll(t, s); !res.OK() {
			t.Fatalf("restored chain: %+v", res)
		}
	})
	t.Run("removed", func(t *testing.T) {
		if err := exec(`DELETE FROM audit WHERE seq = 20`); err != nil {
			t.Fatal(err)
		}
		res := verifyAll(t, s)
		if res.OK() || res.Problem.Seq != 20 {
			t.Fatalf("removal not detected: %+v", res)
		}
	})
}

func TestAuditTail(t *testing.T) { eachBackend(t, testAuditTail) }

// testAuditTail reads a long chain from its end: newest first, bounded,
// filtered by action, and between two sequence numbers.
func testAuditTail(t *testing.T, s Store, _ func(string) error) {
	ctx := context.Background()
	const n = 6000
	// Every 97th entry is an export, every 1000th an unblock request:
	// the rare actions a page looks for among many page views.
	action := func(seq int) string {
		switch {
		case seq%1000 == 0:
			return "unblock.request"
		case seq%97 == 0:
			return "export"
		}
		return "page.read"
	}
	err := s.Update(ctx, func(tx Tx) error {
		for i := 1; i <= n; i++ {
			if err := tx.AppendAudit(ctx, entry(action(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seqs := func(es []audit.Entry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    AuditQuery
		want []uint64
	}{
		{"last three", AuditQuery{Limit: 3}, []uint64{6000, 5999, 5998}},
		{"before", AuditQuery{Before: 10, Limit: 2}, []uint64{9, 8}},
		{"unblock requests", AuditQuery{Actions: []string{"unblock.request"}}, []uint64{6000, 5000, 4000, 3000, 2000, 1000}},
		{"two actions", AuditQuery{Actions: []string{"export", "unblock.request"}, Limit: 4}, []uint64{6000, 5917, 5820, 5723}},
		{"exports after", AuditQuery{Actions: []string{"export"}, After: 5800}, []uint64{5917, 5820}},
		{"window", AuditQuery{Actions: []string{"unblock.request"}, Before: 5000, After: 2000}, []uint64{4000, 3000}},
		{"absent action", AuditQuery{Actions: []string{"settings.unblock"}}, nil},
		{"past the end", AuditQuery{After: n}, nil},
		{"first", AuditQuery{Before: 2}, []uint64{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := s.AuditTail(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(es); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for _, e := range es {
				if e.Action != action(int(e.Seq)) || e.Hash == ([32]byte{}) {
					t.Fatalf("entry %d read back as %q, hash %x", e.Seq, e.Action, e.Hash)
				}
			}
		})
	}
	// Unbounded limits are bounded.
	es, err := s.AuditTail(ctx, AuditQuery{Limit: 1 << 30})
	if err != nil || len(es) != 5000 || es[0].Seq != n {
		t.Fatalf("limit: %d entries (%v)", len(es), err)
	}
	if _, err := s.AuditTail(ctx, AuditQuery{Actions: make([]string, 51)}); err == nil {
		t.Error("51 actions accepted")
	}
}

func TestLoginFailures(t *testing.T) {
	eachBackend(t, func(t *testing.T, s Store, _ func(string) error) {
		f := s.(LoginFailures)
		ctx := context.Background()
		for i := 0; i < 4; i++ {
			if err := f.AddLoginFailure(ctx, "login:chef", t0.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		f.AddLoginFailure(ctx, "addr:10.0.0.1", t0)
		got, err := f.LoginFailures(ctx, "login:chef", t0.Add(time.Minute), 0)
		if err != nil || len(got) != 3 || !got[0].Equal(t0.Add(time.Minute)) || !got[2].Equal(t0.Add(3*time.Minute)) {
			t.Fatalf("failures in the window: %v %v", got, err)
		}
		if n, err := f.PruneLoginFailures(ctx, t0.Add(time.Minute)); err != nil || n != 2 {
			t.Fatalf("pruned %d: %v", n, err)
		}
		if err := f.ClearLoginFailures(ctx, "login:chef"); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.LoginFailures(ctx, "login:chef", time.Time{}, 0); len(got) != 0 {
			t.Fatalf("after a successful login: %v", got)
		}
	})
}

func TestEdgeStatusInChunks(t *testing.T) { eachBackend(t, testEdgeStatusInChunks) }

// testEdgeStatusInChunks: a flush of more reports than one statement
// writes (statusChunk) stores every one, each with its own fields, and a
// report for an edge removed meanwhile is no error.
func testEdgeStatusInChunks(t *testing.T, s Store, _ func(string) error) {
	ctx := context.Background()
	const n = 2*statusChunk + 7
	err := s.Update(ctx, func(tx Tx) error {
		for i := 0; i < n; i++ {
			if err := tx.CreateEdge(ctx, Edge{ID: fmt.Sprintf("c%04d", i), UAI: "0671234X", CreatedAt: t0, TokenHash: fmt.Sprint("ch", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]EdgeStatus{}
	for i := 0; i < n; i++ {
		want[fmt.Sprintf("c%04d", i)] = EdgeStatus{LastSeen: t0.Add(time.Duration(i) * time.Second), AppliedSerial: uint64(i + 1),
			AppliedHash: fmt.Sprintf("h%d", i), Software: fmt.Sprintf("v%d", i%3), LastError: fmt.Sprintf("e%d", i%5),
			Remote: fmt.Sprintf("10.0.%d.%d:1", i/256, i%256), ClaimedSerial: uint64(i % 2), ClaimedHash: fmt.Sprintf("k%d", i%2)}
	}
	batch := maps.Clone(want)
	batch["gone"] = EdgeStatus{LastSeen: t0, AppliedSerial: 1}
	if err := s.Update(ctx, func(tx Tx) error { return tx.RecordEdgeStatus(ctx, batch) }); err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		e, err := s.Edge(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.EdgeStatus; !got.LastSeen.Equal(w.LastSeen) {
			t.Fatalf("edge %s seen %v, want %v", id, got.LastSeen, w.LastSeen)
		} else if got.LastSeen = w.LastSeen; got != w {
			t.Fatalf("edge %s status %+v, want %+v", id, got, w)
		}
	}
}
