// Package archive is the control plane's side of the journal. Its ingest
// handler receives the batches edges ship (sealed segments and open tails),
// verifies each one completely (the edge's signature, every record, the
// hash chain, and continuity with what is already stored), stores it in one
// transaction, and only then acknowledges, so an edge deletes nothing the
// archive does not durably hold. Missing sequence numbers become gaps,
// counted in a metric and written to the audit log. A purge job applies
// each stream's retention, except where a legal hold covers the records.
package archive

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
	"vigie/journal/segment"
)

// Event is one audit entry the archive asks for. The control plane maps it
// onto its audit log.
type Event struct {
	Actor  string
	Role   string
	Action string
	Target string
	Detail any
	Remote string
}

// Auditor records audit entries.
type Auditor interface {
	Audit(ctx context.Context, e Event) error
}

// Retention is how long each stream is kept. The académie sets it; the
// law asks one year for connexions, navigation may be shorter.
type Retention struct {
	Connexions time.Duration `json:"connexions"`
	Navigation time.Duration `json:"navigation"`
}

// DefaultRetention is one year for connexions, six months for navigation.
var DefaultRetention = Retention{Connexions: journal.DefaultConnexionsRetention, Navigation: journal.DefaultNavigationRetention}

// For returns the retention of stream s.
func (r Retention) For(s journal.Stream) time.Duration {
	if s == journal.Connexions {
		return r.Connexions
	}
	return r.Navigation
}

// Options configure an Archive.
type Options struct {
	Store Store
	// EdgeKey returns the public key an edge of school uai seals with
	// (registered in the control plane); an error refuses the batch.
	EdgeKey   func(ctx context.Context, uai string) (ed25519.PublicKey, error)
	Audit     Auditor
	Registry  prometheus.Registerer
	Log       *slog.Logger
	Now       func() time.Time
	Retention Retention
	// MaxBatchBytes bounds one request body (256 MiB).
	MaxBatchBytes int64
}

// Archive verifies, stores and serves journal records.
type Archive struct {
	opt Options
	// mu serializes ingests: continuity checks and the insert must see
	// the same state, and SQLite has one writer anyway.
	mu sync.Mutex
	m  metrics
	// flights are the batches being verified, by chain: batches received
	// at once are verified in parallel (decoding is most of an ingest's
	// CPU), then stored in sequence order so that a batch never opens a
	// gap its predecessor, still being verified, is about to fill.
	fmu     sync.Mutex
	flights map[ChainKey][]*flight
}

// flight is one batch between its header and the end of its ingest.
type flight struct {
	first, last uint64
	done        chan struct{}
}

// board registers a batch of chain k being verified and returns its
// flight; land must be called when the ingest ends.
func (a *Archive) board(k ChainKey, first, last uint64) *flight {
	f := &flight{first: first, last: last, done: make(chan struct{})}
	a.fmu.Lock()
	defer a.fmu.Unlock()
	if a.flights == nil {
		a.flights = map[ChainKey][]*flight{}
	}
	a.flights[k] = append(a.flights[k], f)
	return f
}

func (a *Archive) land(k ChainKey, f *flight) {
	a.fmu.Lock()
	defer a.fmu.Unlock()
	fs := a.flights[k]
	for i, g := range fs {
		if g == f {
			fs = append(fs[:i], fs[i+1:]...)
			break
		}
	}
	if len(fs) == 0 {
		delete(a.flights, k)
	} else {
		a.flights[k] = fs
	}
	close(f.done)
}

// waitEarlier waits until no batch of chain k that ends before f starts
// is still in flight. A batch waits only for batches strictly before it,
// so waits never form a cycle.
func (a *Archive) waitEarlier(ctx context.Context, k ChainKey, f *flight) error {
	for {
		var wait chan struct{}
		a.fmu.Lock()
		for _, g := range a.flights[k] {
			if g != f && g.last < f.first {
				wait = g.done
				break
			}
		}
		a.fmu.Unlock()
		if wait == nil {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type metrics struct {
	batches   *prometheus.CounterVec
	records   *prometheus.CounterVec
	gapRecs   *prometheus.CounterVec
	seconds   prometheus.Histogram
	purged    *prometheus.CounterVec
	purgeRuns prometheus.Counter
}

// New returns an Archive.
func New(opt Options) (*Archive, error) {
	if opt.Store == nil || opt.EdgeKey == nil {
		return nil, errors.New("archive: a store and an edge key lookup are required")
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Retention.Connexions <= 0 {
		opt.Retention.Connexions = DefaultRetention.Connexions
	}
	if opt.Retention.Navigation <= 0 {
		opt.Retention.Navigation = DefaultRetention.Navigation
	}
	if opt.Retention.Connexions > journal.MaxRetention || opt.Retention.Navigation > journal.MaxRetention {
		return nil, fmt.Errorf("archive: retention %v/%v is more than the legal maximum of one year", opt.Retention.Connexions, opt.Retention.Navigation)
	}
	if opt.MaxBatchBytes <= 0 {
		opt.MaxBatchBytes = 256 << 20
	}
	a := &Archive{opt: opt}
	a.m = metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_archive_batches_total",
			Help: "Journal batches received, by result (stored, duplicate, rejected, conflict, unknown_edge, error)."}, []string{"result"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_archive_records_total",
			Help: "Journal records stored in the archive."}, []string{"stream"}),
		gapRecs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_archive_gap_records_total",
			Help: "Sequence numbers found missing in a chain (an alert: records an edge did not deliver), by stream and school."}, []string{"stream", "uai"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigie_archive_ingest_seconds",
			Help: "Time to verify and store one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
			NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigie_archive_purged_records_total",
			Help: "Records deleted by the retention purge."}, []string{"stream"}),
		purgeRuns: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigie_archive_purge_runs_total",
			Help: "Retention purge runs completed."}),
	}
	// Series that exist from the start read 0 instead of being absent,
	// so that rate() and alerts see the first increment. The schools
	// (gap label) are not known up front: a school's gap series appears
	// with its first stored batch, whose edge key verified it, which
	// bounds the label to the académie's schools.
	for _, r := range []string{"stored", "duplicate", "rejected", "conflict", "unknown_edge", "error"} {
		a.m.batches.WithLabelValues(r)
	}
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		a.m.records.WithLabelValues(s.String())
		a.m.purged.WithLabelValues(s.String())
	}
	if opt.Registry != nil {
		for _, c := range []prometheus.Collector{a.m.batches, a.m.records, a.m.gapRecs, a.m.seconds, a.m.purged, a.m.purgeRuns} {
			if err := opt.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("archive: metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Store returns the archive's store (exports read it).
func (a *Archive) Store() Store { return a.opt.Store }

// Ack is the archive's answer to a batch: everything in [First, Last] is
// durably stored (or was already, or had expired), so the edge may forget
// it once its local retention allows.
type Ack struct {
	UAI    string `json:"uai"`
	Stream string `json:"stream"`
	Chain  string `json:"chain"`
	First  uint64 `json:"first"`
	Last   uint64 `json:"last"`
	// Stored counts new records, Duplicates records already held,
	// Expired records older than retention (not kept).
	Stored     int   `json:"stored"`
	Duplicates int   `json:"duplicates"`
	Expired    int   `json:"expired"`
	Gaps       []Gap `json:"gaps,omitempty"`
	// Missing lists every open gap of the chain, old ones included: the
	// archive asks the edge to ship those records again if it still holds
	// them (a control plane restored from a backup lost records it had
	// acknowledged; the edge kept them for its local retention).
	Missing []Gap `json:"missing,omitempty"`
}

// Error kinds of Ingest, each with its HTTP status.
var (
	// ErrBadBatch: the batch does not verify (signature, body, chain).
	ErrBadBatch = errors.New("batch does not verify")
	// ErrConflict: the batch verifies but contradicts stored records.
	ErrConflict = errors.New("batch contradicts the archived chain")
	// ErrUnknownEdge: no key is registered for the school.
	ErrUnknownEdge = errors.New("unknown edge")
)

// Ingest verifies and stores one batch.
func (a *Archive) Ingest(ctx context.Context, data []byte) (Ack, error) {
	start := time.Now()
	ack, result, err := a.ingest(ctx, data)
	a.m.batches.WithLabelValues(result).Inc()
	a.m.seconds.Observe(time.Since(start).Seconds())
	if err != nil && result != "error" {
		a.audit(ctx, Event{Actor: "edge:" + ack.UAI, Action: "journal.batch." + result, Target: fmt.Sprintf("%s/%s/%d-%d", ack.UAI, ack.Stream, ack.First, ack.Last),
			Detail: map[string]any{"error": err.Error(), "chain": ack.Chain}})
	}
	return ack, err
}

func (a *Archive) ingest(ctx context.Context, data []byte) (Ack, string, error) {
	var ack Ack
	claimed, _, err := segment.ParseBatchHeader(data, nil)
	if err != nil {
		return ack, "rejected", fmt.Errorf("archive: %w: %w", ErrBadBatch, err)
	}
	ack = Ack{UAI: claimed.UAI, Stream: claimed.Stream.String(), Chain: claimed.Chain.String(), First: claimed.FirstSeq, Last: claimed.LastSeq()}
	fk := ChainKey{UAI: claimed.UAI, Stream: claimed.Stream, ID: claimed.Chain}
	fl := a.board(fk, claimed.FirstSeq, claimed.LastSeq())
	defer a.land(fk, fl)
	pub, err := a.opt.EdgeKey(ctx, claimed.UAI)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return ack, "unknown_edge", fmt.Errorf("archive: %w %s: %v", ErrUnknownEdge, claimed.UAI, err)
	}
	now := a.opt.Now()
	cutoff := now.Add(-a.opt.Retention.For(claimed.Stream))
	var holds []Hold
	if hs, err := a.opt.Store.Holds(ctx, true); err == nil {
		for _, h := range hs {
			if h.UAI == claimed.UAI {
				holds = append(holds, h)
			}
		}
	} else {
		return ack, "error", err
	}
	// The records themselves are not kept, only their links: a batch is
	// stored whole, as the edge signed it. Its records are decoded again
	// (batchRecords) only when it cannot be: some expired, or a stored
	// block straddles its bounds.
	var links []journal.Hash
	var expired int
	var fb filterBuilder
	marks := make([]byte, 0, segment.MarkCount(int(claimed.Count))*len(journal.Hash{}))
	tmin, tmax, tend := int64(math.MaxInt64), int64(math.MinInt64), int64(math.MinInt64)
	b, err := segment.DecodeBatch(data, pub, func(r *journal.Record, _ []byte, link journal.Hash) error {
		if r.UAI != claimed.UAI && r.Lost == 0 {
			return &segment.BatchError{Reason: fmt.Sprintf("record %d names school %q in a batch of %s", r.Seq, r.UAI, claimed.UAI)}
		}
		if links == nil {
			// The signature is checked: the count is the edge's.
			links = make([]journal.Hash, 0, claimed.Count)
		}
		links = append(links, link)
		if r.Time.Before(cutoff) && !held(holds, claimed.UAI, r.Client.Addr(), r.Time) {
			expired++
		}
		t := micros(r.Time)
		tmin, tmax, tend = min(tmin, t), max(tmax, t), max(tend, recordEnd(r))
		fb.add(r)
		if segment.IsMark(int(r.Seq-claimed.FirstSeq), int(claimed.Count)) {
			marks = append(marks, link[:]...)
		}
		return nil
	})
	if err != nil {
		return ack, "rejected", fmt.Errorf("archive: %w: %w", ErrBadBatch, err)
	}
	key := ChainKey{UAI: b.UAI, Stream: b.Stream, ID: b.Chain}
	if key == fk {
		if err := a.waitEarlier(ctx, fk, fl); err != nil {
			return ack, "error", fmt.Errorf("archive: waiting for the batches before %d-%d: %w", b.FirstSeq, b.LastSeq(), err)
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	c, _, err := a.opt.Store.Chain(ctx, key, true)
	if err != nil {
		return ack, "error", err
	}
	if b.FirstSeq == 1 && b.Prev != journal.Genesis(b.UAI, b.Stream, b.Chain) {
		return ack, "conflict", fmt.Errorf("archive: %w: the first batch of chain %s does not start from its genesis", ErrConflict, b.Chain)
	}
	lo := b.FirstSeq
	if lo > 1 {
		lo--
	}
	have, err := a.opt.Store.Links(ctx, c.Ref, lo, b.LastSeq()+1)
	if err != nil {
		return ack, "error", err
	}
	if l, ok := have[b.FirstSeq-1]; ok && b.FirstSeq > 1 && l != b.Prev {
		return ack, "conflict", fmt.Errorf("archive: %w: batch %d-%d does not follow stored record %d", ErrConflict, b.FirstSeq, b.LastSeq(), b.FirstSeq-1)
	}
	// Records already stored (an open tail shipped before its segment
	// was sealed, a batch sent again) must be the same records.
	for seq := range have {
		if seq < b.FirstSeq || seq > b.LastSeq() {
			continue
		}
		for i, l := range links {
			if s, ok := have[b.FirstSeq+uint64(i)]; ok {
				if s != l {
					return ack, "conflict", fmt.Errorf("archive: %w: record %d differs from the stored one", ErrConflict, b.FirstSeq+uint64(i))
				}
				ack.Duplicates++
			}
		}
		break
	}
	// fresh are the records to store one by one, when the batch cannot
	// be stored whole: decoded again, without those already stored or
	// expired.
	var fresh []Stored
	freshRecords := func() error {
		if fresh != nil {
			return nil
		}
		recs, err := batchRecords(data, b.Count)
		if err != nil {
			return err
		}
		fresh, ack.Expired = recs[:0], 0
		for _, r := range recs {
			if _, ok := have[r.Seq]; ok {
				continue
			}
			if r.Time.Before(cutoff) && !held(holds, b.UAI, r.Client, r.Time) {
				ack.Expired++
				continue
			}
			fresh = append(fresh, r)
		}
		return nil
	}
	if expired > 0 {
		if err := freshRecords(); err != nil {
			return ack, "error", err
		}
	}
	nFresh := int(b.Count) - ack.Duplicates - ack.Expired
	if _, ok := have[b.LastSeq()+1]; ok {
		next, ok, err := a.opt.Store.Get(ctx, c.Ref, b.LastSeq()+1)
		if err != nil {
			return ack, "error", err
		}
		if ok && journal.Link(b.Last, next.Seq, next.Payload) != next.Link {
			return ack, "conflict", fmt.Errorf("archive: %w: stored record %d does not follow batch %d-%d", ErrConflict, next.Seq, b.FirstSeq, b.LastSeq())
		}
	}
	covered := Gap{First: b.FirstSeq, Last: b.LastSeq()}
	var gaps []Gap
	if (nFresh > 0 || b.Final) && ack.Expired == 0 {
		// The batch is stored whole, as the edge signed it; blocks it
		// covers (open tails shipped before their segment was sealed,
		// even when they hold all its records) give way to it.
		blk := Block{First: b.FirstSeq, Last: b.LastSeq(), Count: int(b.Count), TMin: fromMicros(tmin), TMax: fromMicros(tmax), TEnd: fromMicros(tend),
			LastLink: b.Last, Filter: fb.build(), Marks: marks, Batch: data}
		gaps, err = a.opt.Store.PutBlock(ctx, c, blk, covered)
		if errors.Is(err, ErrOverlap) {
			if err = freshRecords(); err == nil {
				gaps, err = a.opt.Store.Put(ctx, c, fresh, covered)
			}
		}
	} else {
		gaps, err = a.opt.Store.Put(ctx, c, fresh, covered)
	}
	if err != nil {
		return ack, "error", err
	}
	ack.Stored = nFresh
	ack.Gaps = gaps
	if open, err := a.opt.Store.Gaps(ctx, b.UAI); err == nil {
		for _, g := range open {
			if g.Chain == c.Ref {
				ack.Missing = append(ack.Missing, Gap{First: g.First, Last: g.Last})
			}
		}
	}
	a.m.records.WithLabelValues(b.Stream.String()).Add(float64(nFresh))
	// The school's gap series exists from its first stored batch, at
	// zero, so that increase() sees the first gap that follows.
	gapRecs := a.m.gapRecs.WithLabelValues(b.Stream.String(), b.UAI)
	for _, g := range gaps {
		gapRecs.Add(float64(g.Last - g.First + 1))
		a.opt.Log.Error("journal gap: records missing from a chain", "uai", b.UAI, "stream", b.Stream, "first", g.First, "last", g.Last)
		a.audit(ctx, Event{Actor: "edge:" + b.UAI, Action: "journal.gap", Target: fmt.Sprintf("%s/%s", b.UAI, b.Stream),
			Detail: map[string]any{"chain": b.Chain.String(), "first": g.First, "last": g.Last}})
	}
	result := "stored"
	if nFresh == 0 {
		result = "duplicate"
	}
	return ack, result, nil
}

func held(holds []Hold, uai string, client netip.Addr, t time.Time) bool {
	for _, h := range holds {
		if h.Covers(uai, client, t) {
			return true
		}
	}
	return false
}

// batchRecords decodes a batch Ingest has verified into its records, with
// their payloads and links: what Put stores when the batch cannot be
// stored whole. The payloads are kept in a few large buffers rather than
// one allocation each.
func batchRecords(data []byte, count uint32) ([]Stored, error) {
	recs := make([]Stored, 0, count)
	var arena []byte
	_, err := segment.DecodeBatch(data, nil, func(r *journal.Record, payload []byte, link journal.Hash) error {
		if len(arena)+len(payload) > cap(arena) {
			arena = make([]byte, 0, max(1<<20, len(payload)))
		}
		start := len(arena)
		arena = append(arena, payload...)
		recs = append(recs, Stored{Seq: r.Seq, Time: r.Time, Client: r.Client.Addr(), Host: r.Host, Link: link, Payload: arena[start:len(arena):len(arena)]})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive: decode a verified batch again: %w", err)
	}
	return recs, nil
}

func (a *Archive) audit(ctx context.Context, e Event) {
	if a.opt.Audit == nil {
		return
	}
	if err := a.opt.Audit.Audit(ctx, e); err != nil {
		a.opt.Log.Error("archive: audit entry not written", "action", e.Action, "err", err)
	}
}

// IngestPath is the route edges post batches to.
const IngestPath = "/api/v1/logs/batches"

// EdgeKeyHeader carries the edge's public key (standard base64) with each
// batch: the control plane pins it to the edge on first use.
const EdgeKeyHeader = "X-Vigie-Edge-Key"

// BatchContentType is the media type of a batch body.
const BatchContentType = "application/vnd.vigie.journal-batch"

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// WriteProblem answers a problem document.
func WriteProblem(w http.ResponseWriter, status int, typ, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{Type: typ, Title: title, Status: status, Detail: detail})
}

// IngestHandler serves POST IngestPath. The batch's signature is its
// authentication: no token is needed, and a replayed batch is a duplicate.
func (a *Archive) IngestHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			WriteProblem(w, http.StatusMethodNotAllowed, "urn:vigie:problem:method", "Méthode non autorisée", "POST a journal batch")
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opt.MaxBatchBytes))
		if err != nil {
			WriteProblem(w, http.StatusRequestEntityTooLarge, "urn:vigie:problem:journal-batch-too-large", "Lot trop volumineux", err.Error())
			return
		}
		ack, err := a.Ingest(r.Context(), data)
		switch {
		case err == nil:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(ack)
		case errors.Is(err, ErrBadBatch):
			WriteProblem(w, http.StatusBadRequest, "urn:vigie:problem:journal-batch-invalid", "Lot de journal invalide", err.Error())
		case errors.Is(err, ErrConflict):
			WriteProblem(w, http.StatusConflict, "urn:vigie:problem:journal-chain-conflict", "Lot en contradiction avec l'archive", err.Error())
		case errors.Is(err, ErrUnknownEdge):
			WriteProblem(w, http.StatusForbidden, "urn:vigie:problem:journal-unknown-edge", "Équipement inconnu", err.Error())
		default:
			a.opt.Log.Error("archive: ingest", "err", err)
			WriteProblem(w, http.StatusServiceUnavailable, "urn:vigie:problem:journal-store", "Archive indisponible", "the archive could not store the batch; retry later")
		}
	})
}

// PurgeReport says what one purge run deleted.
type PurgeReport struct {
	Time    time.Time                   `json:"time"`
	Cutoffs map[string]time.Time        `json:"cutoffs"`
	Deleted map[string]map[string]int64 `json:"deleted"` // stream -> school -> records
	Holds   int                         `json:"holds"`
	// Retention and Totals report per stream: the retention applied (in
	// days) and the records deleted, all schools together.
	Retention map[string]int64 `json:"retention_days"`
	Totals    map[string]int64 `json:"totals"`
}

// Purge deletes what retention no longer allows, sparing held records,
// and records what it did in the audit log.
func (a *Archive) Purge(ctx context.Context) (PurgeReport, error) {
	now := a.opt.Now()
	rep := PurgeReport{Time: now, Cutoffs: map[string]time.Time{}, Deleted: map[string]map[string]int64{},
		Retention: map[string]int64{}, Totals: map[string]int64{}}
	holds, err := a.opt.Store.Holds(ctx, true)
	if err != nil {
		return rep, err
	}
	rep.Holds = len(holds)
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		cutoff := now.Add(-a.opt.Retention.For(s))
		rep.Cutoffs[s.String()] = cutoff
		rep.Retention[s.String()] = int64(a.opt.Retention.For(s) / (24 * time.Hour))
		n, err := a.opt.Store.Purge(ctx, s, cutoff, holds)
		rep.Deleted[s.String()] = n
		for _, v := range n {
			a.m.purged.WithLabelValues(s.String()).Add(float64(v))
			rep.Totals[s.String()] += v
		}
		if err != nil {
			a.audit(ctx, Event{Actor: "system", Action: "journal.purge.failed", Detail: rep})
			return rep, err
		}
	}
	a.m.purgeRuns.Inc()
	a.audit(ctx, Event{Actor: "system", Action: "journal.purge", Detail: rep})
	return rep, nil
}

// RunPurge purges every interval until ctx ends.
func (a *Archive) RunPurge(ctx context.Context, every time.Duration) {
	// An archive of the per-record layout is converted (OpenSQLite
	// already does it; a store opened otherwise may not have).
	if m, ok := a.opt.Store.(interface {
		MigrateBlocks(context.Context) (int, error)
	}); ok {
		if n, err := m.MigrateBlocks(ctx); err != nil {
			a.opt.Log.Error("archive: block migration", "err", err, "migrated", n)
		} else if n > 0 {
			a.opt.Log.Info("archive: converted chains of per-record rows into blocks", "chains", n)
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := a.Purge(ctx); err != nil && ctx.Err() == nil {
			a.opt.Log.Error("archive: purge", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PlaceHold places a legal hold (an RSSI action: the caller checks the
// role) and audits it.
func (a *Archive) PlaceHold(ctx context.Context, actor, role, remote string, h Hold) (Hold, error) {
	switch {
	case h.UAI == "":
		return h, errors.New("archive: a hold needs a school (uai)")
	case h.From.IsZero() || h.To.IsZero() || !h.From.Before(h.To):
		return h, errors.New("archive: a hold needs a time range with from before to")
	case h.Reference == "":
		return h, errors.New("archive: a hold needs a requisition reference")
	}
	h.PlacedBy, h.PlacedAt = actor, a.opt.Now()
	h, err := a.opt.Store.PlaceHold(ctx, h)
	if err != nil {
		return h, err
	}
	a.audit(ctx, Event{Actor: actor, Role: role, Remote: remote, Action: "journal.hold.place", Target: fmt.Sprintf("hold/%d", h.ID), Detail: h})
	return h, nil
}

// ReleaseHold releases a hold and audits it.
func (a *Archive) ReleaseHold(ctx context.Context, actor, role, remote string, id int64) (Hold, error) {
	h, err := a.opt.Store.ReleaseHold(ctx, id, actor, a.opt.Now())
	if err != nil {
		return h, err
	}
	a.audit(ctx, Event{Actor: actor, Role: role, Remote: remote, Action: "journal.hold.release", Target: fmt.Sprintf("hold/%d", h.ID), Detail: h})
	return h, nil
}
