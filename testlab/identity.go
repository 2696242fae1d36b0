package testlab

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"

	"vigie/journal"
	"vigie/journal/segment"
	"vigie/keyfile"
)

// RADIUSSecret is the shared secret of the lab's NAS (radclient, run in
// the edge namespace, plays the school's Wi-Fi controller).
const (
	RADIUSSecret = "s3cret-wifi-labo"
	RADIUSAddr   = "127.0.0.1:1813"
)

// LeaseFile is the lab's dnsmasq lease file, read by the edge.
func (l *Lab) LeaseFile() string { return filepath.Join(l.Dir, "dnsmasq.leases") }

// FlowSections are the edge configuration sections that journal every
// flow from conntrack and learn identities from RADIUS accounting, the
// lab's dnsmasq lease file and the neighbour table. rate bounds the flow
// records per second (0: the edge's default).
func (l *Lab) FlowSections(rate float64) map[string]any {
	flows := map[string]any{"enabled": true, "reap_interval": "1s"}
	if rate > 0 {
		flows["rate"] = rate
		flows["burst"] = int(rate)
	}
	return map[string]any{
		"flows": flows,
		"identity": map[string]any{
			"radius": map[string]any{
				"listen":  RADIUSAddr,
				"clients": []map[string]any{{"address": "127.0.0.1", "secret": RADIUSSecret}},
			},
			"leases":        []map[string]any{{"path": l.LeaseFile(), "format": "dnsmasq"}},
			"neighbours":    true,
			"poll_interval": "200ms",
		},
	}
}

// EdgeJournal reads the stopped edge's journal: every record of both
// streams, the sealed batches (what the edge ships to the archive) and
// the public half of the edge's sealing key. The live segments are sealed
// first, as the edge does on rotation.
func (l *Lab) EdgeJournal(ctx context.Context) (map[journal.Stream][]journal.Record, [][]byte, ed25519.PublicKey, error) {
	if l.EdgeRunning() {
		return nil, nil, nil, fmt.Errorf("testlab: stop the edge before reading its journal")
	}
	state := filepath.Join(l.Dir, "edge-state")
	key, err := keyfile.LoadPrivate(filepath.Join(state, "journal.key"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("testlab: journal key: %w", err)
	}
	j, err := segment.OpenJournal(segment.Options{Dir: filepath.Join(state, "journal"), UAI: UAI, Key: key, MinFreeBytes: -1})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("testlab: journal: %w", err)
	}
	defer j.Close()
	recs := map[journal.Stream][]journal.Record{}
	var batches [][]byte
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		lg := j.Log(s)
		if err := lg.Rotate(ctx); err != nil {
			return nil, nil, nil, fmt.Errorf("testlab: journal %s: %w", s, err)
		}
		if err := lg.WaitSealed(ctx); err != nil {
			return nil, nil, nil, err
		}
		if _, err := lg.Verify(func(r *journal.Record) error { recs[s] = append(recs[s], *r); return nil }); err != nil {
			return nil, nil, nil, fmt.Errorf("testlab: journal %s: %w", s, err)
		}
		sealed, err := lg.Sealed()
		if err != nil {
			return nil, nil, nil, err
		}
		for _, sg := range sealed {
			b, err := os.ReadFile(sg.Path)
			if err != nil {
				return nil, nil, nil, err
			}
			batches = append(batches, b)
		}
	}
	return recs, batches, key.Public().(ed25519.PublicKey), nil
}
