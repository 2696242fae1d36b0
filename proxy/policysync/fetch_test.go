package policysync

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestFetchCodings checks that every content coding the control plane
// may use decodes to the same bytes, that an unknown one is refused, and
// that a small answer decompressing to more than allowed is refused
// (the bound holds under compression).
func TestFetchCodings(t *testing.T) {
	payload := bytes.Repeat([]byte("section de politique "), 5000)
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(payload)
	zw.Close()
	enc, _ := zstd.NewWriter(&zs)
	enc.Write(payload)
	enc.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "zstd") {
			t.Errorf("Accept-Encoding %q does not offer zstd", r.Header.Get("Accept-Encoding"))
		}
		coding := r.URL.Query().Get("c")
		if coding != "" {
			w.Header().Set("Content-Encoding", coding)
		}
		switch coding {
		case "gzip":
			w.Write(gz.Bytes())
		case "zstd":
			w.Write(zs.Bytes())
		default:
			w.Write(payload)
		}
	}))
	defer srv.Close()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	a, err := New(Config{URL: srv.URL, Token: "vge_t", PublicKey: pub, Client: srv.Client(),
		Apply: func([]byte) error { return nil }, Current: func() (uint64, string, bool) { return 0, "", true }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		coding string
		max    int64
		ok     bool
	}{
		{"", -1, true},
		{"gzip", -1, true},
		{"zstd", -1, true},
		// Twice, to reuse the pooled decoders.
		{"gzip", -1, true},
		{"zstd", -1, true},
		{"br", -1, false},
		{"zstd", int64(len(payload)) - 1, false},
		{"gzip", int64(len(payload)) - 1, false},
	}
	for _, tt := range tests {
		r, err := a.fetch(context.Background(), "/x?c="+tt.coding, tt.max, 10*time.Second, "")
		if tt.ok != (err == nil) {
			t.Fatalf("coding %q, max %d: error %v, want ok=%v", tt.coding, tt.max, err, tt.ok)
		}
		if tt.ok && !bytes.Equal(r.body, payload) {
			t.Fatalf("coding %q: %d bytes decoded, want the %d-byte payload", tt.coding, len(r.body), len(payload))
		}
	}
}
