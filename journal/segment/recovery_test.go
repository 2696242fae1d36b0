package segment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/journal"
)

// TestSegmentCutWhileCreated: a writer killed between creating the next
// live segment and finishing its header (what rotation did before segments
// were created under a temporary name, and what an edge upgraded from that
// version can still find on disk) leaves a crash, not damage: the stub is
// dropped as a torn tail, nothing is quarantined and no gap is recorded.
// A header that is whole but wrong, or that does not start like the one
// this log would have written there, is damage and still quarantined.
func TestSegmentCutWhileCreated(t *testing.T) {
	recs := gen(500, journal.Navigation)
	for _, tc := range []struct {
		name string
		// stub returns the next segment's bytes from the header the
		// writer would have written.
		stub       func(hdr []byte) []byte
		quarantine bool
	}{
		{"empty file", func(hdr []byte) []byte { return nil }, false},
		{"magic only", func(hdr []byte) []byte { return hdr[:8] }, false},
		{"cut in the creation time", func(hdr []byte) []byte { return hdr[:createdOff+3] }, false},
		{"cut in the checksum", func(hdr []byte) []byte { return hdr[:len(hdr)-2] }, false},
		{"whole header, bit flipped", func(hdr []byte) []byte {
			b := append([]byte(nil), hdr...)
			b[20] ^= 0x04
			return b
		}, true},
		{"short, not this log's header", func(hdr []byte) []byte {
			b := append([]byte(nil), hdr[:40]...)
			b[30] ^= 0x01 // first sequence number
			return b
		}, true},
		{"short, zeros", func(hdr []byte) []byte { return make([]byte, 40) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sealedFirst := range []bool{false, true} {
				dir := t.TempDir()
				l := openT(t, testOptions(dir))
				appendAll(t, l, recs)
				if sealedFirst {
					// Killed after the previous segment was sealed.
					if err := l.Rotate(t.Context()); err != nil {
						t.Fatal(err)
					}
					if err := l.WaitSealed(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				_, vr := readAll(t, l)
				h := liveHeader{Stream: journal.Navigation, Chain: l.Chain(), FirstSeq: vr.LastSeq + 1, Prev: vr.Last, Created: time.Now(), UAI: uai}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if sealedFirst {
					// Rotate created the next segment whole: replace
					// it with the stub.
					os.Remove(filepath.Join(dir, segName(h.FirstSeq, "live")))
				}
				stub := tc.stub(h.append(nil))
				if err := os.WriteFile(filepath.Join(dir, segName(h.FirstSeq, "live")), stub, 0o640); err != nil {
					t.Fatal(err)
				}

				opt := testOptions(dir)
				opt.Metrics = NewMetrics(prometheus.NewRegistry())
				l = openT(t, opt)
				r := l.Recovery()
				corrupt := testutil.ToFloat64(opt.Metrics.Corrupt.WithLabelValues("navigation"))
				appendAll(t, l, recs[:10])
				got, res := readAll(t, l)
				l.Close()
				var lost int64
				for _, g := range got {
					lost += g.Lost
				}
				if tc.quarantine {
					if len(r.Quarantined) != 1 || !strings.HasSuffix(r.Quarantined[0], ".corrupt") || corrupt != 1 {
						t.Fatalf("sealed first %v: damaged header not quarantined: %+v (corrupt metric %v)", sealedFirst, r, corrupt)
					}
					if lost == 0 {
						t.Fatalf("sealed first %v: quarantine without a gap marker", sealedFirst)
					}
					continue
				}
				if len(r.Quarantined) != 0 || len(r.Problems) != 0 || corrupt != 0 {
					t.Fatalf("sealed first %v: crash taken for damage: %+v (corrupt metric %v)", sealedFirst, r, corrupt)
				}
				if r.TornBytes != int64(len(stub)) || r.LastSeq != 500 {
					t.Fatalf("sealed first %v: recovery %+v, want %d torn bytes and last sequence 500", sealedFirst, r, len(stub))
				}
				if lost != 0 || len(res.Breaks) != 0 || res.LastSeq != 510 || len(got) != 510 {
					t.Fatalf("sealed first %v: after recovery and 10 more: %d records, last %d, lost %d, breaks %v", sealedFirst, len(got), res.LastSeq, lost, res.Breaks)
				}
				sameRecords(t, got[:500], recs)
				if m, _ := filepath.Glob(filepath.Join(dir, "*.corrupt")); len(m) != 0 {
					t.Fatalf("sealed first %v: %v", sealedFirst, m)
				}
			}
		})
	}
}

// TestMetricsStartAtZero: every stream and drop reason is exposed before
// its first event, so that increase() sees the first one.
func TestMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			if v != 0 {
				t.Errorf("%s %v starts at %v", mf.GetName(), m.GetLabel(), v)
			}
			got[mf.GetName()]++
		}
	}
	want := map[string]int{
		"vigie_journal_records_total":          2,
		"vigie_journal_dropped_records_total":  2 * len(dropReasons),
		"vigie_journal_commits_total":          2,
		"vigie_journal_fsync_seconds":          2,
		"vigie_journal_torn_tail_bytes_total":  2,
		"vigie_journal_unclean_stops_total":    2,
		"vigie_journal_corrupt_segments_total": 2,
		"vigie_journal_disk_pressure":          2,
		"vigie_journal_sealed_segments_total":  2,
		"vigie_journal_sealed_bytes_total":     2,
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: %d series, want %d", name, got[name], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("families %v, want %v", got, want)
	}
}

// TestUncleanStopDeclaresLossInterval: a log found open by a previous
// process (its files copied while it ran, as a power cut leaves them)
// appends a crash marker naming the interval from its last durable record
// to the restart; a clean close declares nothing.
func TestUncleanStopDeclaresLossInterval(t *testing.T) {
	dir := t.TempDir()
	opt := testOptions(dir)
	l, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	last := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	for i := 0; i < 100; i++ {
		r := journal.Record{Stream: opt.Stream, Time: last.Add(-time.Duration(100-i) * time.Millisecond), UAI: opt.UAI, Host: "a.example", Verdict: "allow"}
		if i == 99 {
			r.Time = last
		}
		l.Append(&r)
	}
	if err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	l.Close()

	copt := opt
	copt.Dir = crashed
	c, err := Open(copt)
	if err != nil {
		t.Fatal(err)
	}
	ci := c.Recovery().Crash
	// The interval starts appendSkew before the last durable record: a
	// record stamped earlier may have been waiting for its append.
	if want := last.Add(-appendSkew); ci == nil || !ci.From.Equal(want) || ci.Seq != 101 {
		t.Fatalf("crash interval %+v, want from %v at seq 101", ci, want)
	}
	var markers []journal.Record
	if _, err := c.Verify(func(r *journal.Record) error {
		if _, _, ok := r.CrashInterval(); ok {
			markers = append(markers, *r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(markers) != 1 || !strings.Contains(markers[0].Host, "arrêt brutal") || markers[0].Time.Add(markers[0].Duration).Before(ci.To.Truncate(time.Microsecond)) {
		t.Fatalf("markers %+v", markers)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A clean close: the next open declares nothing.
	c, err = Open(copt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Recovery().Crash != nil {
		t.Fatalf("clean close declared a crash: %+v", c.Recovery().Crash)
	}
}
