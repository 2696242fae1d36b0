package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestCategoriesFollowNext: Categories (vigie admin categories) reads
// every page the server names, not only the first thousand items.
func TestCategoriesFollowNext(t *testing.T) {
	const total = 2345
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 || limit > 1000 {
			limit = 1000
		}
		from := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			from, _ = strconv.Atoi(c)
		}
		w.Write([]byte(`{"items":[`))
		to := min(total, from+limit)
		for i := from; i < to; i++ {
			if i > from {
				w.Write([]byte(","))
			}
			fmt.Fprintf(w, `{"id":"c%04d","name_fr":"Catégorie %d","usage":"filtrage"}`, i, i)
		}
		next := ""
		if to < total {
			next = strconv.Itoa(to)
		}
		fmt.Fprintf(w, `],"next":%q}`, next)
	}))
	defer srv.Close()
	c, err := New(Options{Server: srv.URL, Token: "jeton"})
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := c.Categories(context.Background(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != total || page.Items[total-1].ID != fmt.Sprintf("c%04d", total-1) {
		t.Fatalf("%d categories, want %d", len(page.Items), total)
	}
}
