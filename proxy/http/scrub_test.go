package httpproxy

import (
	"net/http"
	"reflect"
	"testing"
)

func TestScrub(t *testing.T) {
	tests := []struct {
		name     string
		in, want http.Header
		response bool
	}{
		{name: "request: connection tokens, hop-by-hop, client addresses",
			in: http.Header{"Connection": {"X-Secret, keep-alive"}, "X-Secret": {"1"}, "Keep-Alive": {"300"}, "Te": {"trailers"},
				"X-Forwarded-For": {"10.10.0.5"}, "Forwarded": {"for=10.10.0.5"}, "X-Real-Ip": {"10.10.0.5"}, "Upgrade": {"h2c"}, "Accept": {"*/*"}},
			want: http.Header{"Connection": {"X-Secret, keep-alive"}, "Accept": {"*/*"}}},
		{name: "request: websocket keeps its upgrade",
			in:   http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}},
			want: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}}},
		{name: "response: connection tokens and hop-by-hop", response: true,
			in:   http.Header{"Connection": {"X-Hop"}, "X-Hop": {"secret"}, "Keep-Alive": {"timeout=5"}, "Proxy-Authenticate": {"Basic"}, "X-End": {"kept"}},
			want: http.Header{"X-End": {"kept"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			if tc.response {
				scrubResponse(h)
			} else {
				scrubRequest(h)
			}
			if !reflect.DeepEqual(h, tc.want) {
				t.Errorf("got %v, want %v", h, tc.want)
			}
		})
	}
}

func TestReference(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		r := newReference()
		if len(r) != 9 || r[4] != '-' {
			t.Fatalf("reference %q", r)
		}
		for i, c := range r {
			if i != 4 && !containsRune(refAlphabet, c) {
				t.Fatalf("reference %q has %q", r, c)
			}
		}
		seen[r] = true
	}
	if len(seen) < 999 {
		t.Errorf("%d distinct references out of 1000", len(seen))
	}
}

func containsRune(s string, r rune) bool {
	for _, c := range s {
		if c == r {
			return true
		}
	}
	return false
}
