package logs

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"vigie/controlplane/api"
	"vigie/journal/segment"
)

// readBatch reads one journal batch from an edge's request without
// trusting its size: a Content-Length over max is refused before anything
// is read, then the head (a few hundred bytes) says how long the batch
// is, and only a batch within max and matching Content-Length is read,
// into a buffer of exactly that size. A 200 MB junk post costs a few
// hundred bytes, not 200 MB.
func readBatch(r *http.Request, max int64) ([]byte, error) {
	tooLarge := func(n int64) error {
		return api.Errorf("payload-too-large", "lot de %d octets : au plus %d", n, max)
	}
	if r.ContentLength > max {
		return nil, tooLarge(r.ContentLength)
	}
	body := io.LimitReader(r.Body, max+1)
	prefix := make([]byte, segment.BatchPrefixLen)
	if _, err := io.ReadFull(body, prefix); err != nil {
		return nil, api.Errorf("bad-request", "lot tronqué : %v", err)
	}
	hl, err := segment.BatchHeadLen(prefix)
	if err != nil {
		return nil, api.Errorf("bad-request", "%v", err)
	}
	head := make([]byte, hl)
	copy(head, prefix)
	if _, err := io.ReadFull(body, head[len(prefix):]); err != nil {
		return nil, api.Errorf("bad-request", "en-tête de lot tronqué : %v", err)
	}
	total, err := segment.BatchLen(head)
	if err != nil {
		return nil, api.Errorf("bad-request", "%v", err)
	}
	switch {
	case total > max:
		return nil, tooLarge(total)
	case r.ContentLength >= 0 && r.ContentLength != total:
		return nil, api.Errorf("bad-request", "le lot annonce %d octets, la requête en porte %d", total, r.ContentLength)
	}
	data := make([]byte, total)
	copy(data, head)
	if _, err := io.ReadFull(body, data[hl:]); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, api.Errorf("bad-request", "corps de lot tronqué : %v", err)
	}
	if n, _ := body.Read(make([]byte, 1)); n > 0 {
		return nil, api.Errorf("bad-request", "%s", fmt.Sprintf("octets en trop après le lot de %d octets", total))
	}
	return data, nil
}
