package publish

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Blob is an immutable piece served to edges (a manifest, a section, a
// whole bundle) with its strong ETag and, computed once on first demand, its
// compressed forms: a thousand edges fetching the same changed section cost
// one compression, not a thousand.
//
// Edges ask for zstd first: after a publication a thousand of them each
// decompress the same answer, and zstd decodes it several times faster
// than gzip (and smaller). gzip stays for every other client.
type Blob struct {
	Raw  []byte
	ETag string

	once sync.Once
	gz   []byte

	zonce sync.Once
	zs    []byte
}

// MaxZstd is the largest blob offered in zstd. A single-segment frame's
// window is its whole content, and edges bound the window they accept
// (64 MiB): larger blobs (none today: a full UT1 bundle is 5 MiB) go gzip.
const MaxZstd = 32 << 20

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

// Zstd returns the zstd form, or nil when compressing does not pay or the
// blob is larger than MaxZstd.
func (b *Blob) Zstd() []byte {
	b.zonce.Do(func() {
		if len(b.Raw) > MaxZstd {
			return
		}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return
		}
		out := enc.EncodeAll(b.Raw, make([]byte, 0, len(b.Raw)/2))
		enc.Close()
		if len(out) < len(b.Raw)*9/10 {
			b.zs = out
		}
	})
	return b.zs
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
	body, coding := b.Raw, ""
	if accepts(r, "zstd") {
		if zs := b.Zstd(); zs != nil {
			body, coding = zs, "zstd"
		}
	}
	if coding == "" && accepts(r, "gzip") {
		if gz := b.Gzip(); gz != nil {
			body, coding = gz, "gzip"
		}
	}
	if coding != "" {
		h.Set("Content-Encoding", coding)
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

// accepts reports whether the request accepts a content coding (not
// refused with q=0).
func accepts(r *http.Request, coding string) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), coding) {
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
