// Package ship is the edge's side of journal shipping: it posts sealed
// segments, in order, and periodically a signed batch of the open tail, to
// the control plane's archive, and remembers what the archive acknowledged.
// It deletes local segments only when they are acknowledged and older than
// the local retention, or, under disk pressure, as soon as they are
// acknowledged: never anything the archive does not hold.
//
// A batch the archive refuses is never skipped over in the acknowledged
// position: later batches still ship (the archive records the hole as a
// gap), but nothing from the refused one on is deleted locally, and the
// refusal shows in vigie_journal_ship_batches_total.
package ship

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/atomicfile"
	"vigie/journal"
	"vigie/journal/segment"
)

// IngestPath is the archive's route for batches (archive.IngestPath).
const IngestPath = "/api/v1/logs/batches"

// EdgeKeyHeader carries the edge's public key (archive.EdgeKeyHeader).
const EdgeKeyHeader = "X-Vigie-Edge-Key"

// Options configure a Shipper.
type Options struct {
	Logs []*segment.Log
	// URL is the control plane's base URL ("https://vigie.ac-strasbourg.fr").
	URL string
	// Token, when set, is sent as a bearer token.
	Token string
	// TokenFile, when set, is read again after a 401: the next attempt
	// uses a rotated token without a restart.
	TokenFile string
	Client    *http.Client
	// Interval between rounds (30 s); the open tail ships every round.
	Interval time.Duration
	// LocalRetention keeps acknowledged segments this long (7 days) for
	// an on-site look without the control plane.
	LocalRetention time.Duration
	// PressureFree: under this many free bytes (1 GiB), acknowledged
	// segments are deleted without waiting for LocalRetention.
	PressureFree int64
	Registry     prometheus.Registerer
	Log          *slog.Logger
	Now          func() time.Time
}

// Shipper ships the journal of one edge.
type Shipper struct {
	opt   Options
	state map[*segment.Log]*state
	m     metrics
	token atomic.Pointer[string]
}

type metrics struct {
	batches *prometheus.CounterVec
	acked   *prometheus.GaugeVec
	lag     *prometheus.GaugeVec
	pruned  *prometheus.CounterVec
	last    *prometheus.GaugeVec
	free    prometheus.Gauge
}

// state is what the archive acknowledged for one log's chain, persisted in
// the log's directory as shipped.json.
type state struct {
	Chain string `json:"chain"`
	// Acked is the end of the acknowledged prefix of the chain.
	Acked uint64 `json:"acked_through"`
	// missing is what the archive last said it lacks of this chain
	// (not saved: the next acknowledgement says it again).
	missing []gap
}

// New prepares a Shipper and loads what was acknowledged before.
func New(opt Options) (*Shipper, error) {
	if opt.URL == "" {
		return nil, errors.New("ship: no control plane URL")
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: 2 * time.Minute}
	}
	if opt.Interval <= 0 {
		opt.Interval = 30 * time.Second
	}
	if opt.LocalRetention <= 0 {
		opt.LocalRetention = 7 * 24 * time.Hour
	}
	if opt.LocalRetention > journal.MaxRetention {
		return nil, fmt.Errorf("ship: local retention %s is more than the legal maximum of one year", opt.LocalRetention)
	}
	if opt.PressureFree == 0 {
		opt.PressureFree = 1 << 30
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Shipper{opt: opt, state: map[*segment.Log]*state{}}
	s.m = metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_journal_ship_batches_total",
			Help: "Journal batches posted to the archive, by result (acked, rejected, conflict, error)."}, []string{"stream", "result"}),
		acked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigie_journal_ship_acked_seq",
			Help: "End of the chain prefix the archive acknowledged."}, []string{"stream"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigie_journal_ship_lag_records",
			Help: "Durable records not yet acknowledged by the archive."}, []string{"stream"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_journal_ship_pruned_segments_total",
			Help: "Acknowledged segments deleted locally, by reason (retention, pressure)."}, []string{"stream", "reason"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigie_journal_ship_last_ack_timestamp_seconds",
			Help: "When the archive last acknowledged a batch."}, []string{"stream"}),
		free: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigie_journal_disk_free_bytes",
			Help: "Free bytes where the journal lives."}),
	}
	if opt.Registry != nil {
		for _, c := range []prometheus.Collector{s.m.batches, s.m.acked, s.m.lag, s.m.pruned, s.m.last, s.m.free} {
			if err := opt.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("ship: metrics: %w", err)
			}
		}
	}
	for _, l := range opt.Logs {
		st := &state{Chain: l.Chain().String()}
		// The last acknowledgement's time survives a restart: an edge
		// restarted while the archive is down must still raise the
		// shipping-lag alert. shipped.json is rewritten at each advancing
		// acknowledgement, so its modification time is that time; with no
		// acknowledgement on record, the start of this process is the
		// earliest time the lag can be said to run from.
		lastAck := opt.Now()
		path := filepath.Join(l.Dir(), "shipped.json")
		data, err := os.ReadFile(path)
		if err == nil {
			var saved state
			if json.Unmarshal(data, &saved) == nil && saved.Chain == st.Chain {
				st.Acked = saved.Acked
				if fi, err := os.Stat(path); err == nil {
					lastAck = fi.ModTime()
				}
			}
		}
		s.state[l] = st
		stream := l.Stream().String()
		s.m.acked.WithLabelValues(stream).Set(float64(st.Acked))
		s.m.last.WithLabelValues(stream).Set(float64(lastAck.Unix()))
		// Every series a stream can have exists from the first scrape, at
		// zero: rate() and increase() then see the first refused batch or
		// the first pruning under pressure, instead of a series appearing
		// with its first value already counted.
		for _, result := range []string{"acked", "rejected", "conflict", "error"} {
			s.m.batches.WithLabelValues(stream, result)
		}
		for _, reason := range []string{"retention", "pressure"} {
			s.m.pruned.WithLabelValues(stream, reason)
		}
	}
	return s, nil
}

// Acked returns the acknowledged prefix of a log's chain.
func (s *Shipper) Acked(l *segment.Log) uint64 { return s.state[l].Acked }

// Run ships every Interval until ctx ends.
func (s *Shipper) Run(ctx context.Context) {
	t := time.NewTicker(s.opt.Interval)
	defer t.Stop()
	for {
		if err := s.Round(ctx); err != nil && ctx.Err() == nil {
			s.opt.Log.Warn("journal shipping incomplete, will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round ships what is pending for every log, then prunes.
func (s *Shipper) Round(ctx context.Context) error {
	var errs []error
	for _, l := range s.opt.Logs {
		if err := s.shipLog(ctx, l); err != nil {
			errs = append(errs, err)
		}
		if err := s.prune(l); err != nil {
			errs = append(errs, err)
		}
		st := s.state[l]
		s.m.lag.WithLabelValues(l.Stream().String()).Set(float64(l.Durable() - min(st.Acked, l.Durable())))
	}
	return errors.Join(errs...)
}

func (s *Shipper) shipLog(ctx context.Context, l *segment.Log) error {
	st := s.state[l]
	segs, err := l.Sealed()
	if err != nil {
		return err
	}
	var errs []error
	if err := s.refill(ctx, l, segs); err != nil {
		errs = append(errs, err)
		if ctx.Err() != nil || isTransport(err) {
			return errors.Join(errs...)
		}
	}
	for _, sg := range segs {
		if sg.LastSeq <= st.Acked {
			continue
		}
		data, err := os.ReadFile(sg.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("ship: %w", err))
			continue
		}
		if err := s.post(ctx, l, data, sg.FirstSeq, sg.LastSeq); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil || isTransport(err) {
				return errors.Join(errs...) // the archive is unreachable: next round
			}
		}
	}
	// The open tail, when the sealed segments before it are acknowledged
	// (a segment being sealed right now ships next round).
	if first := l.LiveFirst(); st.Acked+1 >= first && l.Durable() > st.Acked {
		data, b, err := l.Tail(st.Acked + 1)
		if err != nil {
			errs = append(errs, err)
		} else if b != nil {
			if err := s.post(ctx, l, data, b.FirstSeq, b.LastSeq()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

type transportError struct{ error }

func isTransport(err error) bool {
	var te transportError
	return errors.As(err, &te)
}

func (s *Shipper) bearerToken() string {
	if t := s.token.Load(); t != nil {
		return *t
	}
	return s.opt.Token
}

// reloadToken reads TokenFile again after a 401 and reports whether it
// holds another token.
func (s *Shipper) reloadToken() bool {
	if s.opt.TokenFile == "" {
		return false
	}
	b, err := os.ReadFile(s.opt.TokenFile)
	if err != nil {
		s.opt.Log.Warn("cannot read the token file again after a 401", "file", s.opt.TokenFile, "err", err)
		return false
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || tok == s.bearerToken() {
		return false
	}
	s.token.Store(&tok)
	return true
}

// post sends one batch and records the acknowledgement.
func (s *Shipper) post(ctx context.Context, l *segment.Log, data []byte, first, last uint64) error {
	stream := l.Stream().String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.opt.URL, "/")+IngestPath, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("ship: %w", err)
	}
	req.Header.Set("Content-Type", "application/vnd.vigie.journal-batch")
	if tok := s.bearerToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set(EdgeKeyHeader, base64.StdEncoding.EncodeToString(l.PublicKey()))
	resp, err := s.opt.Client.Do(req)
	if err != nil {
		s.m.batches.WithLabelValues(stream, "error").Inc()
		return transportError{fmt.Errorf("ship: %s %d-%d: %w", stream, first, last, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized && s.reloadToken():
		s.m.batches.WithLabelValues(stream, "error").Inc()
		return transportError{fmt.Errorf("ship: %s %d-%d: token refused; the token file holds a new one for the next attempt", stream, first, last)}
	case resp.StatusCode == http.StatusBadRequest:
		s.m.batches.WithLabelValues(stream, "rejected").Inc()
		s.opt.Log.Error("journal batch refused by the archive (kept locally)", "stream", stream, "first", first, "last", last, "answer", string(body))
		return fmt.Errorf("ship: %s %d-%d refused: %s", stream, first, last, body)
	case resp.StatusCode == http.StatusConflict:
		s.m.batches.WithLabelValues(stream, "conflict").Inc()
		s.opt.Log.Error("journal batch contradicts the archive (kept locally)", "stream", stream, "first", first, "last", last, "answer", string(body))
		return fmt.Errorf("ship: %s %d-%d conflict: %s", stream, first, last, body)
	default:
		s.m.batches.WithLabelValues(stream, "error").Inc()
		return transportError{fmt.Errorf("ship: %s %d-%d: HTTP %d: %s", stream, first, last, resp.StatusCode, body)}
	}
	var ack struct {
		Chain   string `json:"chain"`
		First   uint64 `json:"first"`
		Last    uint64 `json:"last"`
		Missing []gap  `json:"missing"`
	}
	if err := json.Unmarshal(body, &ack); err != nil || ack.Chain != l.Chain().String() || ack.First != first || ack.Last != last {
		s.m.batches.WithLabelValues(stream, "error").Inc()
		return fmt.Errorf("ship: %s %d-%d: unexpected acknowledgement %q", stream, first, last, body)
	}
	s.m.batches.WithLabelValues(stream, "acked").Inc()
	st := s.state[l]
	st.missing = ack.Missing
	if first <= st.Acked+1 && last > st.Acked {
		st.Acked = last
		data, _ := json.Marshal(st)
		if err := atomicfile.Write(filepath.Join(l.Dir(), "shipped.json"), data, 0o600); err != nil {
			return fmt.Errorf("ship: save acknowledgement: %w", err)
		}
		s.m.acked.WithLabelValues(stream).Set(float64(st.Acked))
	}
	s.m.last.WithLabelValues(stream).Set(float64(s.opt.Now().Unix()))
	return nil
}

// prune deletes acknowledged segments past local retention, or all
// acknowledged ones when free space is short.
func (s *Shipper) prune(l *segment.Log) error {
	st := s.state[l]
	stream := l.Stream().String()
	free, err := l.Free()
	if err != nil {
		return err
	}
	s.m.free.Set(float64(free))
	n, _, err := l.Prune(st.Acked, s.opt.Now().Add(-s.opt.LocalRetention))
	if n > 0 {
		s.m.pruned.WithLabelValues(stream, "retention").Add(float64(n))
	}
	if err != nil {
		return err
	}
	if free < s.opt.PressureFree {
		n, freed, err := l.Prune(st.Acked, s.opt.Now().Add(time.Hour))
		if n > 0 {
			s.m.pruned.WithLabelValues(stream, "pressure").Add(float64(n))
			s.opt.Log.Warn("journal: disk pressure, acknowledged segments deleted before local retention", "stream", stream, "segments", n, "bytes", freed)
		}
		return err
	}
	return nil
}
