package api

import (
	"context"
	"errors"
	gosync "sync"

	"vigie/controlplane/store"
)

// maxReported is the highest serial any edge reported applied, in the
// reports not yet written as well as in the store: the publisher's serial
// floor (see publish.SetSerialFloor).
func (t *edgeTracker) maxReported(ctx context.Context) (uint64, error) {
	var max uint64
	t.mu.Lock()
	for _, st := range t.known {
		max = maxU(max, st.AppliedSerial)
	}
	for _, serial := range t.claims {
		max = maxU(max, serial)
	}
	t.mu.Unlock()
	p := store.Page{Limit: store.MaxPage}
	for {
		es, err := t.st.Edges(ctx, "", p)
		if err != nil {
			return 0, err
		}
		for _, e := range es {
			max = maxU(max, e.AppliedSerial)
		}
		if len(es) < p.Limit {
			return max, nil
		}
		p.After = es[len(es)-1].ID
	}
}

// claim remembers the serial edge id claims to have applied when this
// control plane never published it (0 forgets it: the edge reported a
// version it knows). Claims live in memory: an edge reports at every
// poll, so a restarted replica learns them again within a poll.
func (t *edgeTracker) claim(id string, serial uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if serial == 0 {
		delete(t.claims, id)
		return
	}
	t.claims[id] = serial
}

// claimed is the serial edge id claims and this control plane does not
// know, or 0.
func (t *edgeTracker) claimed(id string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.claims[id]
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// versionHashes remembers the hash of each published serial: versions are
// immutable, so a serial's hash is read from the store once.
type versionHashes struct {
	st store.Store
	m  gosync.Map // uint64 -> string
}

// known reports whether serial exists here with this hash. An edge that
// applied a version this control plane does not know (published by a
// control plane since restored from an older backup, or by another
// académie) runs a policy nobody here can show: it is flagged "version
// inconnue" rather than counted as up to date.
func (v *versionHashes) known(serial uint64, hash string) bool {
	if serial == 0 || hash == "" {
		return true // nothing applied yet, or an edge too old to say
	}
	if h, ok := v.m.Load(serial); ok {
		return h.(string) == hash
	}
	ver, err := v.st.Version(context.Background(), serial)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		return true // cannot tell now: do not raise a false alarm
	}
	v.m.Store(serial, ver.Hash)
	return ver.Hash == hash
}
