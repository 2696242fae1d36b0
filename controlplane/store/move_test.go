package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"vigie/controlplane/audit"
	"vigie/controlplane/store/pgtest"
	"vigie/rules/policy"
)

// fill gives a store one row or more in every table, each change audited.
func fill(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	data := []byte("section")
	err := s.Update(ctx, func(tx Tx) error {
		if _, err := tx.PutDraft(ctx, Draft{Policy: policy.Policy{Version: 1, Academie: "Strasbourg"}, UpdatedBy: "rssi", UpdatedAt: t0}, 0); err != nil {
			return err
		}
		if err := tx.CreateList(ctx, List{ID: "bloque", Category: "academie_bloque", CreatedBy: "rssi", CreatedAt: t0}); err != nil {
			return err
		}
		if _, err := tx.AddEntries(ctx, []Entry{{List: "bloque", Kind: KindDomain, Value: "exemple.org", Author: "rssi", Added: t0},
			{List: "bloque", Kind: KindURL, Value: "exemple.net/x", Author: "rssi", Added: t0, Comment: "é’"}}); err != nil {
			return err
		}
		if err := tx.PutSections(ctx, []Section{{Hash: sha256.Sum256(data), Data: data}}); err != nil {
			return err
		}
		if err := tx.InsertVersion(ctx, Version{Serial: 1, Hash: "h1", Author: "rssi", Comment: "première", Created: t0,
			Diff: json.RawMessage(`{"n":1}`), Size: 7, Domains: 1, Manifest: []byte{1, 2, 3}, Policy: json.RawMessage(`{"p":1}`)}); err != nil {
			return err
		}
		if err := tx.CreateEdge(ctx, Edge{ID: "e1", UAI: "0671234X", Name: "Collège", CreatedAt: t0, TokenHash: "th"}); err != nil {
			return err
		}
		for i, login := range []string{"rssi", "chef", "ancien"} {
			id, err := tx.CreateUser(ctx, User{Login: login, Role: "rssi", PasswordHash: "$argon2id$x", Disabled: i == 2, CreatedAt: t0})
			if err != nil {
				return err
			}
			if err := tx.CreateSession(ctx, Session{IDHash: fmt.Sprint("s", id), UserID: id, CSRF: "c", CreatedAt: t0, ExpiresAt: t0}); err != nil {
				return err
			}
			if _, err := tx.CreateAPIToken(ctx, APIToken{UserID: id, Name: "script", TokenHash: fmt.Sprint("t", id), CreatedAt: t0}); err != nil {
				return err
			}
		}
		for i := 0; i < 30; i++ {
			e := entry(fmt.Sprintf("test.%d", i))
			e.Before, e.After = json.RawMessage(`{"a":1}`), json.RawMessage(`{"b":"é"}`)
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot reads everything a store answers, for comparing two stores.
func snapshot(t *testing.T, s Store) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	must := func(name string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = v
	}
	d, err := s.Draft(ctx)
	must("draft", d, err)
	l, err := s.Lists(ctx)
	must("lists", l, err)
	e, err := s.AllEntries(ctx)
	must("entries", e, err)
	v, err := s.Versions(ctx, Page{})
	must("versions", v, err)
	lv, err := s.LatestVersion(ctx)
	must("latest", lv, err)
	ed, err := s.Edges(ctx, "", Page{})
	must("edges", ed, err)
	u, err := s.Users(ctx)
	must("users", u, err)
	for _, user := range u {
		ts, err := s.APITokens(ctx, user.ID)
		must("tokens "+user.Login, ts, err)
		se, err := s.Session(ctx, fmt.Sprint("s", user.ID))
		must("session "+user.Login, se, err)
	}
	a, err := s.AuditEntries(ctx, 0, 0)
	must("audit", a, err)
	return out
}

func TestMoveSQLiteToPostgres(t *testing.T) {
	ctx := context.Background()
	src, _ := open(t)
	fill(t, src)
	url := pgtest.Shared(t).Database(t)
	dst := openPostgres(t, url, "ac_strasbourg")
	rep, err := Move(ctx, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows["audit"] != 30 || rep.Rows["users"] != 3 || rep.Rows["list_entries"] != 2 {
		t.Fatalf("rows moved: %v", rep.Rows)
	}
	want, got := snapshot(t, src), snapshot(t, dst)
	for k := range want {
		if !reflect.DeepEqual(want[k], got[k]) {
			t.Errorf("%s differs after the move:\n sqlite   %+v\n postgres %+v", k, want[k], got[k])
		}
	}
	es, _ := dst.AuditEntries(ctx, 0, 0)
	if res := audit.Verify(es); !res.OK() || res.Entries != 30 || res.Head != rep.Source.Head {
		t.Fatalf("moved chain: %+v", res)
	}
	// The moved store goes on: new ids after the copied ones, the chain
	// continues from the moved head.
	err = dst.Update(ctx, func(tx Tx) error {
		id, err := tx.CreateUser(ctx, User{Login: "nouveau", Role: "rssi", CreatedAt: t0})
		if err != nil || id != 4 {
			return fmt.Errorf("new user id %d: %v", id, err)
		}
		return tx.AppendAudit(ctx, entry("after.move"))
	})
	if err != nil {
		t.Fatal(err)
	}
	es, _ = dst.AuditEntries(ctx, 0, 0)
	if res := audit.Verify(es); !res.OK() || res.Entries != 31 {
		t.Fatalf("chain after the move: %+v", res)
	}

	t.Run("target not empty", func(t *testing.T) {
		_, err := Move(ctx, src, dst)
		if err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("move into a used schema: %v", err)
		}
	})
	t.Run("broken source chain", func(t *testing.T) {
		if _, err := src.w.Exec(`UPDATE audit SET actor = 'autre' WHERE seq = 7`); err != nil {
			t.Fatal(err)
		}
		other := openPostgres(t, url, "ac_autre")
		_, err := Move(ctx, src, other)
		if err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("move of a broken chain: %v", err)
		}
		if n, _ := other.AuditEntries(ctx, 0, 0); len(n) != 0 {
			t.Fatalf("a refused move left %d entries", len(n))
		}
	})
}

func TestCheckAddress(t *testing.T) {
	for _, c := range []struct {
		addr, err string
	}{
		{"", ""},
		{"sqlite:/var/lib/vigie/vigie.db", ""},
		{"sqlite:", "file path"},
		{"postgres://vigie@db.ac.fr/vigie?sslmode=verify-full", ""},
		{"postgresql:///vigie?host=/run/postgresql", ""},
		{"postgres://vigie:secret@db.ac.fr/vigie", "password"},
		{"postgres://vigie@db.ac.fr/vigie?password=secret", "password"},
		{"mysql://x", "want sqlite:PATH or a postgres:// URL"},
	} {
		err := CheckAddress(c.addr)
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %v, want %q", c.addr, err, c.err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error repeats the password: %v", c.addr, err)
		}
	}
}

// FuzzCheckAddress: any database address from a configuration file gets
// an answer, and a refusal never repeats a password it saw.
func FuzzCheckAddress(f *testing.F) {
	for _, s := range []string{"", "sqlite:/x", "postgres://u:pw@h/db", "postgresql:///db?host=/run&password=pw", "postgres://[::1", "mysql://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		err := CheckAddress(addr)
		if err == nil || Backend(addr) != "postgres" {
			return
		}
		if strings.Contains(addr, "pw") && strings.Contains(err.Error(), "pw") {
			t.Fatalf("%q: the refusal repeats the password: %v", addr, err)
		}
	})
}
