package api

import (
	"context"
	"errors"
	gosync "sync"

	"vigie/controlplane/store"
)

// maxReported is the highest serial any edge reported applied, or claimed
// to have applied when this control plane never published it, in the
// reports not yet written as well as in the store: the publisher's serial
// floor (see publish.SetSerialFloor). Claims are stored with the edge's
// status, so a replica restored from an older backup, or another one,
// still publishes past them.
func (t *edgeTracker) maxReported(ctx context.Context) (uint64, error) {
	var max uint64
	t.mu.Lock()
	for _, st := range t.known {
		max = maxU(max, maxU(st.AppliedSerial, st.ClaimedSerial))
	}
	t.mu.Unlock()
	p := store.Page{Limit: store.MaxPage}
	for {
		es, err := t.st.Edges(ctx, "", p)
		if err != nil {
			return 0, err
		}
		for _, e := range es {
			max = maxU(max, maxU(e.AppliedSerial, e.ClaimedSerial))
		}
		if len(es) < p.Limit {
			return max, nil
		}
		p.After = es[len(es)-1].ID
	}
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
