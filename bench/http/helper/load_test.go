package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestRunLoad drives a real origin straight and through a minimal
// forward proxy: every scheduled request after the warm-up is answered
// and counted once, and the percentiles are ordered.
func TestRunLoad(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/1k" {
			http.NotFound(w, r)
			return
		}
		w.Write(make([]byte, 1024))
	}))
	defer origin.Close()
	// A forward proxy that insists on absolute-form request lines.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "absolute form expected", http.StatusBadRequest)
			return
		}
		resp, err := http.Get(r.URL.String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	ou, _ := url.Parse(origin.URL)
	pu, _ := url.Parse(proxy.URL)

	tests := []struct {
		name    string
		target  string
		proxied bool
		path    string
		wantOK  bool
	}{
		{"direct", ou.Host, false, "/1k", true},
		{"through a proxy", pu.Host, true, "/1k", true},
		{"errors are counted", ou.Host, false, "/absent", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := loadOptions{target: tc.target, url: origin.URL + tc.path, proxied: tc.proxied,
				rate: 200, dur: 1500 * time.Millisecond, warm: 500 * time.Millisecond, conns: 8}
			res, err := runLoad(o)
			if err != nil {
				t.Fatal(err)
			}
			// 300 requests scheduled, the first 100 are the warm-up.
			if res.Sent != 200 {
				t.Errorf("sent %d, want 200", res.Sent)
			}
			if !tc.wantOK {
				if res.OK != 0 || res.Errors == 0 {
					t.Errorf("ok %d, errors %d: a 404 must count as an error", res.OK, res.Errors)
				}
				return
			}
			if res.OK != 200 || res.Errors != 0 {
				t.Fatalf("ok %d, errors %d", res.OK, res.Errors)
			}
			if !(0 < res.P50 && res.P50 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) {
				t.Errorf("percentiles out of order: %+v", res)
			}
		})
	}
}
