package publish

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Blob is an immutable piece served to edges (a manifest, a section, a
// whole bundle) with its strong ETag and, computed once on first demand, its
// gzip form: a thousand edges fetching the same changed section cost one
// compression, not a thousand.
type Blob struct {
	Raw  []byte
	ETag string

	once sync.Once
	gz   []byte
}

func newBlob(raw []byte, tag string) *Blob {
	return &Blob{Raw: raw, ETag: `"` + tag + `"`}
}

// Gzip returns the compressed form, or nil when compressing does not pay
// (random fingerprints barely shrink).
func (b *Blob) Gzip() []byte {
	b.once.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b.Raw)
		zw.Close()
		if buf.Len() < len(b.Raw)*9/10 {
			b.gz = buf.Bytes()
		}
	})
	return b.gz
}

// ServeHTTP answers with the blob: 304 when the client already holds it,
// gzip when accepted and worth it.
func (b *Blob) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.ServeHTTPAs(w, r, "application/octet-stream")
}

// ServeHTTPAs is ServeHTTP with a content type.
func (b *Blob) ServeHTTPAs(w http.ResponseWriter, r *http.Request, contentType string) {
	h := w.Header()
	h.Set("ETag", b.ETag)
	h.Set("Content-Type", contentType)
	h.Set("Vary", "Accept-Encoding")
	// Content-addressed: the bytes behind an ETag never change.
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, b.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := b.Raw
	if acceptsGzip(r) {
		if gz := b.Gzip(); gz != nil {
			h.Set("Content-Encoding", "gzip")
			body = gz
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(params), "=")
		if !ok || strings.TrimSpace(k) != "q" {
			return true
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err != nil || q > 0
	}
	return false
}
