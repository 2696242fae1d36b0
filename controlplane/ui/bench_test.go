package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"vigie/controlplane/auth"
)

// BenchmarkPages measures what a page costs on top of the API calls it is
// built from: each page is served in process next to the API request
// that carries most of its data (the baseline), as the same person, so
// that the ratio page/API is the interface's own cost (template, in-process
// calls, JSON decoding).
//
//	go test ./controlplane/ui -run '^$' -bench Pages -benchmem
func BenchmarkPages(b *testing.B) {
	e := newEnv(b, envOptions{})
	c := e.login("rssi")
	var cookie *http.Cookie
	for _, k := range c.hc.Jar.Cookies(mustURL(e.srv.URL)) {
		if k.Name == auth.CookieName {
			cookie = k
		}
	}
	for _, pg := range []struct{ name, page, api string }{
		{"dashboard", "/", "/api/v1/edges"},
		{"categories", "/categories", "/api/v1/categories?limit=1000"},
		{"profiles", "/profils", "/api/v1/profiles"},
		{"tester", "/tester?adresse=https%3A%2F%2Fwww.pornhub.com%2F&lieu=0671234X%7Cpedagogique", "/api/v1/schools"},
		{"list", "/listes/academie-bloque", "/api/v1/lists/academie-bloque/entries"},
	} {
		for _, kind := range []string{"page", "api"} {
			path := pg.page
			if kind == "api" {
				path = pg.api
			}
			b.Run(pg.name+"/"+kind, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r := httptest.NewRequest("GET", path, nil)
					r.AddCookie(cookie)
					w := httptest.NewRecorder()
					e.ui.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("%s: %d", path, w.Code)
					}
				}
			})
		}
	}
}

// BenchmarkBlockedActivity measures the dashboard chart's scan of the
// journal archive, per record read (without the cache).
func BenchmarkBlockedActivity(b *testing.B) {
	e := newEnv(b, envOptions{})
	ctx := context.Background()
	records := 9000 // what newEnv seeds: 6000 + 3000
	b.ReportAllocs()
	for b.Loop() {
		a, err := e.ui.countBlocked(ctx, []string{monnet, hugo}, e.clock.now())
		if err != nil || a.Total == 0 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(records), "ns/record")
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
