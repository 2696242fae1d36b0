package policysync

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"vigie/rules/bundle"
)

// Version is a new policy version as ApplyParts receives it: verified,
// not laid out as one bundle.
type Version struct {
	Header bundle.Header
	// Manifest is the signed head (header, section table, signature),
	// checked against the pinned keys.
	Manifest []byte
	// Sections are the sections' bytes in table order. Sections fetched
	// one by one were checked against the hash the signed table gives;
	// those of a bundle received whole were not (a receiver that loads
	// it verifies it whole, as the edge's Apply does). The agent keeps
	// them, the slice included, for the next update: read them, never
	// write.
	Sections [][]byte
}

// version is a verified version on its way to Apply: its manifest and
// table, and either its sections or the whole bundle as received.
type version struct {
	h        bundle.Header
	manifest []byte
	ents     []entry
	// parts are the sections in table order (nil when whole is set).
	parts [][]byte
	// whole is the bundle as received, when it came whole.
	whole []byte
	// end is where the last section ends: the bundle's length.
	end int64
}

// size is the bundle's length in bytes.
func (v *version) size() int64 {
	if v.whole != nil {
		return int64(len(v.whole))
	}
	return v.end
}

// sections returns the sections in table order: parts, or the spans of
// the whole bundle.
func (v *version) sections() ([][]byte, error) {
	if v.whole == nil {
		return v.parts, nil
	}
	out := make([][]byte, len(v.ents))
	for i, e := range v.ents {
		if e.off+e.size > int64(len(v.whole)) {
			return nil, fmt.Errorf("sync: section %q beyond the %d-byte bundle: %w", e.name(v.manifest), len(v.whole), bundle.ErrTruncated)
		}
		out[i] = v.whole[e.off : e.off+e.size : e.off+e.size]
	}
	return out, nil
}

// layout places the sections at the offsets the signed table gives,
// after the manifest: the bundle as the control plane encoded it.
func (v *version) layout() []byte {
	if v.whole != nil {
		return v.whole
	}
	out := make([]byte, v.end)
	copy(out, v.manifest)
	for i, e := range v.ents {
		copy(out[e.off:], v.parts[i])
	}
	return out
}

// apply hands v to Apply (laid out) or ApplyParts (in pieces) and, once
// it is in force, holds its sections for the next delta.
func (a *Agent) apply(v *version) error {
	if a.cfg.ApplyParts != nil {
		secs, err := v.sections()
		if err == nil {
			err = a.cfg.ApplyParts(Version{Header: v.h, Manifest: v.manifest, Sections: secs})
		}
		if err != nil {
			return err
		}
		a.hold(v.manifest, v.ents, secs)
		return nil
	}
	data := v.layout()
	if err := a.cfg.Apply(data); err != nil {
		return err
	}
	a.holdLaidOut(data, v.ents)
	return nil
}

// whole reads a bundle received whole: its signature checked against the
// pinned keys; its sections are verified by Apply, which loads it.
func (a *Agent) whole(data []byte) (*version, bundle.Header, error) {
	h, ents, err := table(data, a.keys)
	if err != nil {
		return nil, h, err
	}
	head := bundle.ManifestSize(len(ents))
	return &version{h: h, manifest: data[:head:head], ents: ents, whole: data}, h, nil
}

// holdBundle indexes the sections of a bundle in force whose table is
// not parsed yet (the one in force at start).
func (a *Agent) holdBundle(data []byte) {
	_, ents, err := table(data, nil)
	if err != nil {
		return
	}
	a.holdLaidOut(data, ents)
}

// holdLaidOut holds the sections of the bundle now in force. Its bytes
// were verified when they were applied, so they are not hashed again
// here; they are views of data, which the edge keeps alive anyway (its
// Ruleset views them).
func (a *Agent) holdLaidOut(data []byte, ents []entry) {
	secs := make([][]byte, len(ents))
	for i, e := range ents {
		if e.off+e.size <= int64(len(data)) {
			secs[i] = data[e.off : e.off+e.size : e.off+e.size]
		}
	}
	var manifest []byte
	if head := bundle.ManifestSize(len(ents)); len(data) >= head {
		manifest = data[:head:head]
	}
	a.hold(manifest, ents, secs)
}

// hold makes secs, the sections of the version in force in the order of
// its table ents, what the next update reuses, and manifest what a patch
// applies to (all nil after a failed apply: nothing is reused).
func (a *Agent) hold(manifest []byte, ents []entry, secs [][]byte) {
	a.manifest, a.heldEnts, a.held, a.heldByHash = manifest, ents, secs, nil
}

// heldAt returns the section in force at row i when row i of the new
// table (e) names the same one: every row a patch did not change.
func (a *Agent) heldAt(i int, e entry) ([]byte, bool) {
	if i < len(a.heldEnts) && a.heldEnts[i].hash == e.hash && int64(len(a.held[i])) == e.size {
		return a.held[i], true
	}
	return nil, false
}

// heldAnywhere returns the section in force with e's hash wherever its row
// (a table reordered, a section moved): the index is built on first use.
func (a *Agent) heldAnywhere(e entry) ([]byte, bool) {
	if a.heldByHash == nil {
		a.heldByHash = make(map[[32]byte]int, len(a.heldEnts))
		for j, h := range a.heldEnts {
			if a.held[j] != nil {
				a.heldByHash[h.hash] = j
			}
		}
	}
	if j, ok := a.heldByHash[e.hash]; ok && int64(len(a.held[j])) == e.size {
		return a.held[j], true
	}
	return nil, false
}

// entry is one line of a bundle's section table: its row, read in place
// (no pointer: ten thousand agents in one process hold a table each, and
// the collector need not scan them). The name is only ever read for an
// error message: bundle.SectionName of the manifest, at row.
type entry struct {
	hash      [32]byte
	off, size int64
	row       int
}

// name is the section's name as the manifest's table gives it.
func (e entry) name(manifest []byte) string { return bundle.SectionName(manifest, e.row) }

// table reads the header and section table of a bundle or manifest,
// checking the signature against keys unless keys is nil. It is the one
// place a table is parsed: callers keep what it returns rather than parse
// again, since a thousand-section table costs a hash of the table.
func table(data []byte, keys []ed25519.PublicKey) (bundle.Header, []entry, error) {
	var (
		h   bundle.Header
		n   int
		err error
	)
	if keys == nil {
		h, n, err = bundle.ReadTable(data)
	} else {
		h, n, _, err = bundle.ReadTableKeys(data, keys)
	}
	if err != nil {
		return h, nil, err
	}
	out := make([]entry, n)
	for i := range out {
		off, size := bundle.SectionSpan(data, i)
		if off > 1<<40 || size > 1<<40 {
			return h, nil, fmt.Errorf("sync: section %q out of bounds: %w", bundle.SectionName(data, i), bundle.ErrCorrupt)
		}
		out[i] = entry{hash: bundle.SectionHash(data, i), off: int64(off), size: int64(size), row: i}
	}
	return h, out, nil
}

// assemble gathers the version a verified manifest describes (h and
// ents, from table or patched) from the sections held, cached or fetched.
// Fetched and cached sections are checked against their hash; the edge's
// Apply verifies the whole bundle again before using it. When most of it
// is missing (a first sync from the built-in policy), one request for the
// whole bundle is cheaper than hundreds. On failure, the header returned
// names what was refused.
func (a *Agent) assemble(ctx context.Context, manifest []byte, h bundle.Header, ents []entry, extra map[[32]byte][]byte) (*version, bundle.Header, error) {
	head := int64(bundle.ManifestSize(len(ents)))
	if int64(len(manifest)) != head {
		return nil, h, fmt.Errorf("sync: manifest of %d bytes, its table says %d: %w", len(manifest), head, bundle.ErrCorrupt)
	}
	var missing, total, end int64
	parts := make([][]byte, len(ents))
	for i, e := range ents {
		total += e.size
		end = max(end, e.off+e.size)
		if e.off < head || e.off+e.size > a.cfg.MaxBundle {
			return nil, h, fmt.Errorf("sync: manifest places section %q outside the bundle: %w", e.name(manifest), bundle.ErrCorrupt)
		}
		// The same row first (every row a patch did not change), then
		// what the answer carried, and only then the rest of what is held.
		if d, ok := a.heldAt(i, e); ok {
			parts[i] = d
		} else if d, ok := extra[e.hash]; ok && int64(len(d)) == e.size {
			parts[i] = d // keyed by its own hash: verified
		} else if d, ok := a.heldAnywhere(e); ok {
			parts[i] = d
		} else if !a.cached(e.hash) {
			missing += e.size
		}
	}
	if missing > total/2 {
		q := url.Values{"after": {fmt.Sprint(h.Serial - 1)}, "part": {"full"}, "wait": {"0"}}
		data, code, err := a.get(ctx, "/api/v1/edge/bundle?"+q.Encode(), -1, time.Minute)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("sync: whole bundle: status %d", code)
		}
		if err != nil {
			return nil, h, err
		}
		// The head may have moved on since the manifest: what counts is
		// the version actually received, verified.
		v, wh, err := a.whole(data)
		if err != nil {
			return nil, wh, fmt.Errorf("sync: whole bundle: %w", err)
		}
		return v, wh, nil
	}
	for i, e := range ents {
		if parts[i] != nil {
			continue
		}
		if d, ok := a.readCache(e.hash); ok && int64(len(d)) == e.size {
			parts[i] = d
			continue
		}
		d, code, err := a.get(ctx, "/api/v1/edge/sections/"+hex.EncodeToString(e.hash[:]), e.size, time.Minute)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		if err != nil {
			return nil, h, fmt.Errorf("sync: section %s: %w", e.name(manifest), err)
		}
		if int64(len(d)) != e.size || sha256.Sum256(d) != e.hash {
			return nil, h, fmt.Errorf("sync: section %s: %w", e.name(manifest), errMismatch)
		}
		a.writeCache(e.hash, d)
		parts[i] = d
	}
	return &version{h: h, manifest: manifest, ents: ents, parts: parts, end: end}, h, nil
}

// patched rebuilds the new manifest from the one in force and a patch:
// the new header and signature, the table rows that changed (length and
// hash), every offset recomputed from the lengths as the bundle layout
// places them. The signature is checked here, so a patch can only yield
// the manifest the académie signed; the table read while checking it is
// returned so that nobody parses it again.
func (a *Agent) patched(patch []byte) ([]byte, bundle.Header, []entry, error) {
	out, err := bundle.ApplyPatch(a.manifest, patch)
	var (
		h    bundle.Header
		ents []entry
	)
	if err == nil {
		h, ents, err = table(out, a.keys)
	}
	if err != nil {
		return nil, h, nil, fmt.Errorf("sync: manifest patch: %w (asking for the whole manifest next)", err)
	}
	return out, h, ents, nil
}
