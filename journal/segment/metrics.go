package segment

import (
	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
)

// Metrics are the journal writer's metrics. Labels are bounded: stream and
// a fixed set of reasons.
type Metrics struct {
	Records      *prometheus.CounterVec
	Dropped      *prometheus.CounterVec
	Commits      *prometheus.CounterVec
	FsyncSeconds *prometheus.HistogramVec
	TornBytes    *prometheus.CounterVec
	Corrupt      *prometheus.CounterVec
	DiskPressure *prometheus.GaugeVec
	Sealed       *prometheus.CounterVec
	SealedBytes  *prometheus.CounterVec
	Crashes      *prometheus.CounterVec
}

// Drop reasons (label values of vigie_journal_dropped_records_total).
const (
	DropOverload = "overload" // the disk did not keep up, the buffer is full
	DropDisk     = "disk"     // free space under the configured floor
	DropClosed   = "closed"   // appended after Close
	DropInvalid  = "invalid"  // unknown stream or oversized record
)

// dropReasons are all the drop reasons: the bounded label set.
var dropReasons = []string{DropOverload, DropDisk, DropClosed, DropInvalid}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigie_journal_records_total", Help: "Journal records made durable (fsync'd).",
		}, []string{"stream"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigie_journal_dropped_records_total", Help: "Journal records that could not be written; each run is recorded in the chain as a gap marker.",
		}, []string{"stream", "reason"}),
		Commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigie_journal_commits_total", Help: "Group commits (write and fsync).",
		}, []string{"stream"}),
		FsyncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigie_journal_fsync_seconds", Help: "Time of one group commit's write and fsync.",
			Buckets:                     []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1},
			NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100,
		}, []string{"stream"}),
		TornBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigie_journal_torn_tail_bytes_total", Help: "Bytes of torn tail truncated when opening the journal after a crash.",
		}, []string{"stream"}),
		Corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigie_journal_corrupt_segments_total", Help: "Segments found damaged (quarantined, valid records salvaged).",
		}, []string{"stream"}),
		DiskPressure: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigie_journal_disk_pressure", Help: "1 while free space is under the floor and records are being dropped (and counted as a gap).",
		}, []string{"stream"}),
		Sealed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigie_journal_sealed_segments_total", Help: "Segments sealed (compressed and signed).",
		}, []string{"stream"}),
		SealedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigie_journal_sealed_bytes_total", Help: "Bytes of sealed segments written.",
		}, []string{"stream"}),
		Crashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigie_journal_unclean_stops_total", Help: "Opens after an unclean stop; each declared a loss interval in the chain.",
		}, []string{"stream"}),
	}
	// Every known series exists from the start at zero: an alert on
	// increase(...corrupt...) or a dashboard panel must see the first
	// event, which it cannot when the series is born with it.
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		stream := s.String()
		for _, v := range []*prometheus.CounterVec{m.Records, m.Commits, m.TornBytes, m.Corrupt, m.Sealed, m.SealedBytes, m.Crashes} {
			v.WithLabelValues(stream)
		}
		for _, reason := range dropReasons {
			m.Dropped.WithLabelValues(stream, reason)
		}
		m.FsyncSeconds.WithLabelValues(stream)
		m.DiskPressure.WithLabelValues(stream)
	}
	if reg != nil {
		reg.MustRegister(m.Records, m.Dropped, m.Commits, m.FsyncSeconds, m.TornBytes, m.Corrupt, m.DiskPressure, m.Sealed, m.SealedBytes, m.Crashes)
	}
	return m
}
