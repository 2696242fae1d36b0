package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"vigie/controlplane/store"
)

// TestFullPagesNameTheirNext: with more items than one page, every full
// page carries a next cursor and walking the cursors yields every item
// once. A store that caps at the page size (while the API asks for one
// more) used to end the walk silently at 1,000.
func TestFullPagesNameTheirNext(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// nEdges sort after the demo's 3 edges of monnet; nFirst sort
	// before them: more than a store page of another school's edges in
	// front of a scoped technician's own.
	const nEntries, nEdges, nFirst = 2345, 1003, 1100
	var list string
	var lists Page[store.List]
	json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/lists?limit=1000", nil, 200), &lists)
	if len(lists.Items) == 0 {
		t.Fatal("no list in the demo policy")
	}
	list = lists.Items[0].ID
	es := make([]store.Entry, nEntries)
	for i := range es {
		es[i] = store.Entry{List: list, Kind: store.KindDomain, Value: fmt.Sprintf("d%05d.example", i), Author: "test", Added: time.Now()}
	}
	if err := e.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.AddEntries(ctx, es); err != nil {
			return err
		}
		for i := 0; i < nEdges; i++ {
			if err := tx.CreateEdge(ctx, store.Edge{ID: fmt.Sprintf("zz-%04d", i), UAI: autre, TokenHash: fmt.Sprint(i), CreatedAt: time.Now()}); err != nil {
				return err
			}
		}
		for i := 0; i < nFirst; i++ {
			if err := tx.CreateEdge(ctx, store.Edge{ID: fmt.Sprintf("aa-%04d", i), UAI: autre, TokenHash: fmt.Sprint("aa", i), CreatedAt: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	walk := func(t *testing.T, who, path string, limit int) (items int, pages int) {
		cursor := ""
		for {
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var p Page[json.RawMessage]
			if err := json.Unmarshal(e.mustDo(who, "GET", path+"?"+q.Encode(), nil, 200), &p); err != nil {
				t.Fatal(err)
			}
			items += len(p.Items)
			pages++
			if p.Next == "" {
				return
			}
			if len(p.Items) != limit {
				t.Fatalf("page %d of %s: %d items with a next cursor", pages, path, len(p.Items))
			}
			cursor = p.Next
		}
	}
	var before int
	{
		var l store.List
		json.Unmarshal(e.mustDo("rssi", "GET", "/api/v1/lists/"+list, nil, 200), &l)
		before = l.Entries
	}
	for _, tc := range []struct {
		who   string
		path  string
		limit int
		want  int
	}{
		{"rssi", "/api/v1/lists/" + url.PathEscape(list) + "/entries", 1000, before},
		{"rssi", "/api/v1/lists/" + url.PathEscape(list) + "/entries", 999, before},
		{"rssi", "/api/v1/edges", 1000, nFirst + nEdges + 3},
		{"rssi", "/api/v1/edges", 7, nFirst + nEdges + 3},
		// Scoped: tech67 sees only monnet's 3 edges, behind 1,100 of
		// autre's; tech68 sees autre's, more than a store page.
		{"tech67", "/api/v1/edges", 1000, 3},
		{"tech67", "/api/v1/edges", 2, 3},
		{"tech68", "/api/v1/edges", 1000, nFirst + nEdges},
		{"tech68", "/api/v1/edges", 999, nFirst + nEdges},
	} {
		t.Run(fmt.Sprintf("%s %s limit %d", tc.who, tc.path, tc.limit), func(t *testing.T) {
			if n, _ := walk(t, tc.who, tc.path, tc.limit); n != tc.want {
				t.Fatalf("walked %d items, want %d", n, tc.want)
			}
		})
	}
	if before < nEntries {
		t.Fatalf("list %s holds %d entries, want at least %d", list, before, nEntries)
	}
}
