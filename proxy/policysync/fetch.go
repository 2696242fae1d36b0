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
	// reportInPoll says the control plane takes the report of an applied
	// version in the next poll's query.
	reportInPoll bool
}

// reportInPollHeader is the header by which the control plane's poll
// answers say it takes reports in the poll's query (controlplane/api's
// ReportInPoll).
const reportInPollHeader = "X-Vigie-Report-In-Poll"

// gzipReaders keeps gzip decompressors between answers: each holds a
// window and tables that would otherwise be allocated and cleared for
// every update.
var gzipReaders sync.Pool

// maxZstdWindow bounds the memory a zstd answer may make the agent
// reserve, its window and its decoded size (the control plane offers zstd
// only for blobs of 32 MiB or less, whose window is at most their size).
const maxZstdWindow = 64 << 20

// zstdDecoder decodes every zstd answer of the process, whole
// (DecodeAll): it keeps its block decoders itself, so a garbage
// collection does not throw them away as it would empty a sync.Pool of
// streaming decoders, and the output is allocated once at the size the
// frame declares. DecodeAll is safe for concurrent use.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxZstdWindow))
})

// compressed holds zstd answers as they arrive, before they are decoded:
// a scratch buffer per answer would be allocated and cleared each time.
var compressed = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeZstd reads a zstd body whole and decodes it, refusing more than
// limit bytes of output (and a compressed body that claims more: the
// control plane compresses only what shrinks).
func decodeZstd(r io.Reader, contentLength, limit int64) ([]byte, error) {
	dec, err := zstdDecoder()
	if err != nil {
		return nil, err
	}
	buf := compressed.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= preSize {
			buf.Reset()
			compressed.Put(buf)
		}
	}()
	buf.Reset()
	if contentLength > 0 {
		buf.Grow(int(min(contentLength+bytes.MinRead, preSize, limit+1)))
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	var h zstd.Header
	if err := h.Decode(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if h.HasFCS && h.FrameContentSize > uint64(limit) {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	out, err := dec.DecodeAll(buf.Bytes(), nil)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return out, nil
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
	out := response{code: resp.StatusCode, etag: resp.Header.Get("ETag"), reportInPoll: resp.Header.Get(reportInPollHeader) != ""}
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
	// max is a section's exact size when known (-1 otherwise): worth
	// allocating up front, and nothing larger is accepted. Otherwise the
	// announced length (a few times it, compressed) saves regrowing.
	limit, exact := max, max >= 0 && max < a.cfg.MaxBundle
	if !exact {
		limit = a.cfg.MaxBundle
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
		body, err := decodeZstd(counted, resp.ContentLength, limit)
		if err != nil {
			return out, fmt.Errorf("sync: GET %s: %w", path, err)
		}
		out.body, out.ctype = body, resp.Header.Get("Content-Type")
		return out, nil
	default:
		return out, fmt.Errorf("sync: GET %s: unexpected Content-Encoding %q", path, coding)
	}
	var buf bytes.Buffer
	if !exact {
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
