package policysync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// problem is the part of an RFC 9457 document worth logging.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// get fetches a path of the control plane. Compression is handled here
// rather than by the transport so that Bytes counts what crossed the
// network, and so that a decompressed body is bounded by max.
func (a *Agent) get(ctx context.Context, path string, max int64, timeout time.Duration) ([]byte, int, error) {
	r, err := a.fetch(ctx, path, max, timeout, "")
	return r.body, r.code, err
}

// response is what fetch keeps of an answer.
type response struct {
	body  []byte
	code  int
	ctype string
	etag  string
	// serial is the X-Vigie-Serial header of a bundle answer (0 if none).
	serial uint64
}

// gzipReaders and zstdReaders keep decompressors between answers: each
// holds a window and tables that would otherwise be allocated and cleared
// for every update.
var gzipReaders, zstdReaders sync.Pool

// maxZstdWindow bounds the memory a zstd answer may make the agent
// reserve (the control plane offers zstd only for blobs of 32 MiB or less,
// whose window is at most their size).
const maxZstdWindow = 64 << 20

// newZstd returns a pooled streaming zstd decoder: one goroutine (no
// background decoding), bounded window.
func newZstd() (*zstd.Decoder, error) {
	if d, ok := zstdReaders.Get().(*zstd.Decoder); ok {
		return d, nil
	}
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxZstdWindow))
}

// preSize bounds the buffer allocated up front from a Content-Length,
// which is only a claim: larger bodies grow as they really arrive.
const preSize = 4 << 20

// fetch is get with the answer's type, ETag and serial; ifNoneMatch, when
// set, is sent as If-None-Match (a 304 comes back with no body).
func (a *Agent) fetch(ctx context.Context, path string, max int64, timeout time.Duration, ifNoneMatch string) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := a.send(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.root()+path, nil)
		if err != nil {
			return nil, err
		}
		a.fetchHeaders(req, ifNoneMatch)
		return req, nil
	})
	if err != nil {
		return response{}, fmt.Errorf("sync: %w", err)
	}
	defer resp.Body.Close()
	counted := &countReader{r: resp.Body}
	defer func() {
		a.bytes.Add(counted.n)
		a.m.bytes.Add(float64(counted.n))
	}()
	out := response{code: resp.StatusCode, etag: resp.Header.Get("ETag")}
	out.serial, _ = strconv.ParseUint(resp.Header.Get("X-Vigie-Serial"), 10, 64)
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		io.Copy(io.Discard, io.LimitReader(counted, 4096))
		return out, nil
	}
	if resp.StatusCode != http.StatusOK {
		var p problem
		json.NewDecoder(io.LimitReader(counted, 64<<10)).Decode(&p)
		if p.Detail != "" {
			return out, fmt.Errorf("sync: GET %s: %s: %s (%s): %w", path, resp.Status, p.Detail, p.Type, errAnswered)
		}
		return out, fmt.Errorf("sync: GET %s: %s: %w", path, resp.Status, errAnswered)
	}
	var r io.Reader = counted
	coding := resp.Header.Get("Content-Encoding")
	switch coding {
	case "":
	case "gzip":
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		if err := zr.Reset(counted); err != nil {
			return out, fmt.Errorf("sync: GET %s: %w", path, err)
		}
		defer gzipReaders.Put(zr)
		r = zr
	case "zstd":
		zr, err := newZstd()
		if err == nil {
			err = zr.Reset(counted)
		}
		if err != nil {
			return out, fmt.Errorf("sync: GET %s: zstd: %w", path, err)
		}
		defer func() { zr.Reset(nil); zstdReaders.Put(zr) }()
		r = zr
	default:
		return out, fmt.Errorf("sync: GET %s: unexpected Content-Encoding %q", path, coding)
	}
	// max is a section's exact size when known (-1 otherwise): worth
	// allocating up front, and nothing larger is accepted. Otherwise the
	// announced length (a few times it, compressed) saves regrowing.
	limit := max
	var buf bytes.Buffer
	if limit < 0 || limit >= a.cfg.MaxBundle {
		limit = a.cfg.MaxBundle
		if n := resp.ContentLength; n > 0 {
			if coding != "" {
				n *= 3
			}
			buf.Grow(int(min(n+bytes.MinRead, preSize, limit+1)))
		}
	} else {
		// ReadFrom wants MinRead bytes free before each read: room for
		// them too, or the last read would double the buffer.
		buf.Grow(int(limit + bytes.MinRead))
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return out, fmt.Errorf("sync: GET %s: %w", path, err)
	}
	if n > limit {
		return out, fmt.Errorf("sync: GET %s: larger than %d bytes", path, limit)
	}
	out.body, out.ctype = buf.Bytes(), resp.Header.Get("Content-Type")
	return out, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (a *Agent) fetchHeaders(req *http.Request, ifNoneMatch string) {
	// zstd first: after a publication every edge decodes the same answer,
	// and zstd does it several times faster than gzip.
	req.Header.Set("Accept-Encoding", "zstd, gzip")
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	if a.cfg.Software != "" {
		req.Header.Set("User-Agent", "vigie-edge/"+a.cfg.Software)
	}
}

// send makes the request build() returns with the edge token; on a 401 it
// reads the token file again and, when it holds a new token, sends the
// request once more with it.
func (a *Agent) send(ctx context.Context, build func() (*http.Request, error)) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", a.bearer())
		resp, err := a.cfg.Client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 || !a.reloadToken() {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}

// bearer is the Authorization header of the token in use.
func (a *Agent) bearer() string { return "Bearer " + *a.token.Load() }

// reloadToken reads TokenFile again after a 401 and reports whether it
// now holds another token (then worth retrying at once).
func (a *Agent) reloadToken() bool {
	if a.cfg.TokenFile == "" {
		return false
	}
	b, err := os.ReadFile(a.cfg.TokenFile)
	if err != nil {
		a.log.Warn("sync: cannot read the token file again after a 401", "file", a.cfg.TokenFile, "err", err)
		return false
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || tok == *a.token.Load() {
		return false
	}
	a.token.Store(&tok)
	a.log.Info("sync: the control plane refused the edge token; using the new one from the token file", "file", a.cfg.TokenFile)
	return true
}
