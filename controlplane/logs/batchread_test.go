package logs_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"vigie/journal/segment"
)

// junk yields n bytes of garbage, without holding them.
type junk struct{ n int64 }

func (j *junk) Read(p []byte) (int, error) {
	if j.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), j.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	j.n -= k
	return int(k), nil
}

// TestBatchUploadAbuse: a journal upload's size is checked before its
// body is read. A 200 MB post used to be read whole into memory.
func TestBatchUploadAbuse(t *testing.T) {
	e := newEnv(t)
	const size = 200 << 20
	// A head claiming a 200 MB body, then junk.
	head := make([]byte, segment.BatchPrefixLen)
	copy(head, "VGJBAT01")
	head[8], head[10] = 1, byte(len(monnet))
	hl, err := segment.BatchHeadLen(head)
	if err != nil {
		t.Fatal(err)
	}
	head = append(head, make([]byte, hl-len(head))...)
	copy(head[segment.BatchPrefixLen:], monnet)
	binary.LittleEndian.PutUint32(head[hl-64-32-4:], size)
	tests := []struct {
		name   string
		body   func() io.Reader
		length int64
		want   int
	}{
		{"announced 200 MB", func() io.Reader { return &junk{n: size} }, size, http.StatusRequestEntityTooLarge},
		{"chunked junk", func() io.Reader { return &junk{n: size} }, -1, http.StatusBadRequest},
		{"chunked, head claims 200 MB", func() io.Reader { return io.MultiReader(bytes.NewReader(head), &junk{n: size}) }, -1, http.StatusRequestEntityTooLarge},
		{"small Content-Length, head claims 200 MB", func() io.Reader { return io.MultiReader(bytes.NewReader(head), &junk{n: 1000}) }, int64(len(head)) + 1000, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.http.URL+"/api/v1/logs/batches", tt.body())
			req.ContentLength = tt.length
			req.Header.Set("Authorization", "Bearer "+e.edgeTok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
				t.Errorf("the control plane allocated %d MiB for a refused upload", got>>20)
			}
		})
	}
}
