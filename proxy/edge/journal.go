package edge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"vigie/journal"
	"vigie/journal/segment"
	"vigie/journal/ship"
	"vigie/keyfile"
)

// JournalConfig is the journal section of the edge configuration. The
// journal always runs: French law asks a connection provider to keep
// connection data, so there is no switch to turn it off. Every field has a
// working default.
type JournalConfig struct {
	// Dir holds the segments (default state_dir/journal).
	Dir string `yaml:"dir,omitempty"`
	// Key is the edge's Ed25519 sealing key (PEM, private). Default
	// state_dir/journal.key, created on first start; the control plane
	// pins its public half to this edge on the first batch it receives.
	Key string `yaml:"key,omitempty"`
	// CommitInterval is the longest a record waits for its fsync (5ms).
	CommitInterval time.Duration `yaml:"commit_interval,omitempty"`
	// SegmentRecords and SegmentAge bound a segment before it is sealed
	// and shipped (262144 records, 10m).
	SegmentRecords int           `yaml:"segment_records,omitempty"`
	SegmentAge     time.Duration `yaml:"segment_age,omitempty"`
	// MinFreeMB is the free-space floor under which records are counted
	// as a gap instead of written (256).
	MinFreeMB int64 `yaml:"min_free_mb,omitempty"`
	// ShipInterval is how often the open tail ships (30s).
	ShipInterval time.Duration `yaml:"ship_interval,omitempty"`
	// LocalRetention keeps acknowledged segments on the edge (168h).
	LocalRetention time.Duration `yaml:"local_retention,omitempty"`
	// PressureFreeMB: under it, acknowledged segments go at once (1024).
	PressureFreeMB int64 `yaml:"pressure_free_mb,omitempty"`
}

// startJournalWith opens the durable journal (recovering it after a
// crash), makes it the sink the DNS filter and the proxy write through, and
// ships it to the control plane when one is configured. It must run before
// startDNS and startHTTP, which hand e.journal to their components.
//
// The edge's Start calls it through startJournal, which passes the
// configuration's journal section:
//
//	func (e *Edge) startJournal(ctx context.Context) error { return e.startJournalWith(ctx, e.cfg.Journal) }
func (e *Edge) startJournalWith(ctx context.Context, c JournalConfig) error {
	dir := c.Dir
	if dir == "" {
		dir = filepath.Join(e.cfg.StateDir, "journal")
	}
	keyPath := c.Key
	if keyPath == "" {
		keyPath = filepath.Join(e.cfg.StateDir, "journal.key")
		if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
			if _, err := keyfile.Generate(keyPath); err != nil {
				return fmt.Errorf("journal: sealing key: %w", err)
			}
			e.log.Info("journal sealing key created", "key", keyPath, "public", keyPath+".pub")
		}
	}
	key, err := keyfile.LoadPrivate(keyPath)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	minFree := c.MinFreeMB << 20
	if c.MinFreeMB == 0 {
		minFree = 0 // the segment default
	}
	j, err := segment.OpenJournal(segment.Options{
		Dir: dir, UAI: e.cfg.UAI, Key: key,
		Log: e.log.With("component", "journal"), Now: e.now,
		Metrics:        segment.NewMetrics(e.reg),
		CommitInterval: c.CommitInterval,
		SegmentRecords: uint64(max(c.SegmentRecords, 0)),
		SegmentAge:     c.SegmentAge,
		MinFreeBytes:   minFree,
	})
	if err != nil {
		return err
	}
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		r := j.Log(s).Recovery()
		if r.TornBytes > 0 || len(r.Quarantined) > 0 || len(r.Problems) > 0 || r.Resealed > 0 {
			e.log.Warn("journal recovered after an unclean stop", "stream", s, "torn_bytes", r.TornBytes,
				"quarantined", r.Quarantined, "resealed", r.Resealed, "problems", r.Problems, "last_seq", r.LastSeq)
		}
	}
	// A sink given by the caller (tests, the demo's live view) keeps
	// receiving records beside the durable journal.
	if _, discard := e.journal.(journal.Discard); discard || e.journal == nil {
		e.journal = j
	} else {
		e.journal = journal.Tee{j, e.journal}
	}

	stops := []func(context.Context) error{}
	if cp := e.cfg.ControlPlane; cp.URL != "" {
		if err := cp.checkURL(); err != nil {
			j.Close()
			return err
		}
		token, err := cp.syncToken()
		if err != nil {
			j.Close()
			return err
		}
		client, err := cp.client()
		if err != nil {
			j.Close()
			return err
		}
		client.Timeout = 5 * time.Minute
		sh, err := ship.New(ship.Options{
			Logs: []*segment.Log{j.Log(journal.Connexions), j.Log(journal.Navigation)},
			URL:  cp.URL, Token: token, TokenFile: cp.TokenFile, Client: client,
			Interval: c.ShipInterval, LocalRetention: c.LocalRetention, PressureFree: c.PressureFreeMB << 20,
			Registry: e.reg, Log: e.log.With("component", "journal-ship"), Now: e.now,
		})
		if err != nil {
			j.Close()
			return err
		}
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			sh.Run(runCtx)
		}()
		stops = append(stops, func(context.Context) error {
			cancel()
			<-done
			return nil
		})
	} else {
		e.log.Warn("no control plane configured: the journal stays on this edge only")
	}
	e.stops = append(e.stops, func(ctx context.Context) error {
		for _, s := range stops {
			s(ctx)
		}
		// Last: everything appended before shutdown is made durable.
		return j.Close()
	})
	return nil
}
