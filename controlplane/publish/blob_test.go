package publish

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestBlobCodings checks content negotiation: zstd when accepted (edges),
// gzip otherwise, nothing when refused or when compressing does not pay;
// every coded body decodes to the blob's bytes.
func TestBlobCodings(t *testing.T) {
	text := []byte(strings.Repeat("lycee.example\ncollege.example\n", 2000))
	random := make([]byte, 64<<10)
	rand.Read(random)
	tests := []struct {
		name, accept string
		raw          []byte
		want         string
	}{
		{"edge", "zstd, gzip", text, "zstd"},
		{"zstd only", "zstd", text, "zstd"},
		{"browser", "gzip, deflate, br", text, "gzip"},
		{"zstd refused", "zstd;q=0, gzip", text, "gzip"},
		{"nothing", "", text, ""},
		{"incompressible", "zstd, gzip", random, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBlob(tt.raw, "t")
			r := httptest.NewRequest("GET", "/", nil)
			if tt.accept != "" {
				r.Header.Set("Accept-Encoding", tt.accept)
			}
			w := httptest.NewRecorder()
			b.ServeHTTP(w, r)
			if got := w.Header().Get("Content-Encoding"); got != tt.want {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.want)
			}
			var body []byte
			var err error
			switch tt.want {
			case "zstd":
				var d *zstd.Decoder
				if d, err = zstd.NewReader(nil); err == nil {
					body, err = d.DecodeAll(w.Body.Bytes(), nil)
					d.Close()
				}
			case "gzip":
				var zr *gzip.Reader
				if zr, err = gzip.NewReader(w.Body); err == nil {
					body, err = io.ReadAll(zr)
				}
			default:
				body = w.Body.Bytes()
			}
			if err != nil || !bytes.Equal(body, tt.raw) {
				t.Fatalf("decoded body differs (%v)", err)
			}
		})
	}
}
