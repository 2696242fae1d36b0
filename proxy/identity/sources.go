package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"vigie/journal"
)

// LeaseFile is a DHCP server's lease file to follow.
type LeaseFile struct {
	Path   string
	Format string // isc, kea, dnsmasq
}

// LeaseWatcher re-reads lease files when they change (size or
// modification time) and puts their leases in the table. A file that
// fails to parse keeps what it gave before; the error names the line.
type LeaseWatcher struct {
	table *Table
	files []LeaseFile
	log   *slog.Logger
	now   func() time.Time
	seen  map[string]fileState
}

type fileState struct {
	mod  time.Time
	size int64
}

// NewLeaseWatcher prepares a watcher; it reads nothing yet.
func NewLeaseWatcher(table *Table, files []LeaseFile, log *slog.Logger, now func() time.Time) *LeaseWatcher {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &LeaseWatcher{table: table, files: files, log: log, now: now, seen: map[string]fileState{}}
}

// Poll reads the files that changed since the last poll.
func (w *LeaseWatcher) Poll() error {
	var errs []error
	for _, lf := range w.files {
		st, err := os.Stat(lf.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("identity: lease file: %w", err))
			continue
		}
		fs := fileState{mod: st.ModTime(), size: st.Size()}
		if w.seen[lf.Path] == fs {
			continue
		}
		if err := w.read(lf); err != nil {
			errs = append(errs, err)
			continue
		}
		w.seen[lf.Path] = fs
	}
	return errors.Join(errs...)
}

func (w *LeaseWatcher) read(lf LeaseFile) error {
	f, err := os.Open(lf.Path)
	if err != nil {
		return fmt.Errorf("identity: lease file: %w", err)
	}
	defer f.Close()
	leases, err := ParseLeases(lf.Format, lf.Path, f)
	if err != nil {
		return err
	}
	now := w.now()
	for _, l := range leases {
		from := l.Start
		if from.IsZero() {
			// dnsmasq does not say when a lease began: from when it is seen.
			from = now
		}
		if !l.End.IsZero() && l.End.Before(now.Add(-w.table.Keep)) {
			continue
		}
		w.table.Put(Binding{Addr: l.Addr, MAC: l.MAC, From: from, To: l.End, Source: FromDHCP, Key: lf.Path})
	}
	w.log.Debug("identity: lease file read", "file", lf.Path, "leases", len(leases))
	return nil
}

// Run polls every interval until ctx ends, logging errors.
func (w *LeaseWatcher) Run(ctx context.Context, interval time.Duration) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		if err := w.Poll(); err != nil {
			w.log.Warn("identity: lease files", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// Sink writes into every record the MAC and user the table knows for
// its client at the record's time, when the record does not say them
// already, then passes it on. This is the only place identity enters the
// journal: at the moment the record is made.
type Sink struct {
	Next  journal.Sink
	Table *Table
}

// Append fills and forwards a copy of r.
func (s *Sink) Append(r *journal.Record) {
	if r.Lost != 0 || (r.MAC != "" && r.User != "") || !r.Client.Addr().IsValid() {
		s.Next.Append(r)
		return
	}
	mac, user := s.Table.Lookup(r.Client.Addr(), r.Time)
	if mac == "" && user == "" {
		s.Next.Append(r)
		return
	}
	rr := *r
	if rr.MAC == "" {
		rr.MAC = mac
	}
	if rr.User == "" {
		rr.User = user
	}
	s.Next.Append(&rr)
}
