package segment

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/journal"
)

// Issue 20: at 1.5× Unbound's query rate, the journal keeps up with no
// record lost and no growing queue.
var (
	keepsUpRate = flag.Float64("keepsup.rate", 330000, "BenchmarkJournalKeepsUp: records offered per second")
	keepsUpFor  = flag.Duration("keepsup.for", 10*time.Second, "BenchmarkJournalKeepsUp: how long records are offered")
)

// BenchmarkJournalKeepsUp offers dnsMix records to the edge's journal
// (its defaults: 5 ms group commit with fsync, 256 Ki-record segments
// sealed in the background) at a fixed rate for a fixed time, open loop,
// as the DNS filter appends at that query rate, then waits for every
// record to be durable and every segment sealed. It fails when a record
// was dropped, and reports:
//
//   - lost: records dropped (and counted in a gap marker); 0 to pass;
//   - pending-peak-1st, pending-peak-2nd: the most records waiting for
//     their group commit in each half of the run (a queue that keeps up
//     peaks alike in both; one that falls behind grows in the second);
//   - seal-backlog-peak: the most finished segments waiting for the sealer
//     (1 is the one being sealed: it keeps up);
//   - lag-peak-records: how far the appender itself fell behind the rate
//     (the process had no CPU left for it), in records;
//   - offered/s and cpu-ns/record (process CPU: appender, committer,
//     sealer and collector).
//
// The data plane runs on one core in bench/dns; -cpu 1 gives the journal
// that core alone:
//
//	go test ./journal/segment -run '^$' -bench JournalKeepsUp -benchtime 1x -cpu 1 -keepsup.rate 330000 -keepsup.for 20s
func BenchmarkJournalKeepsUp(b *testing.B) {
	recs := dnsMixRecs()
	rate, dur := *keepsUpRate, *keepsUpFor
	for range b.N {
		opt := Options{Dir: b.TempDir(), UAI: uai, Key: testKey, MinFreeBytes: -1, Metrics: NewMetrics(nil)}
		j, err := OpenJournal(opt)
		if err != nil {
			b.Fatal(err)
		}
		l := j.Log(journal.Navigation)
		var peaks [2]int
		var backlog int64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		half := time.Now().Add(dur / 2)
		go func() {
			defer close(sampled)
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				l.mu.Lock()
				n := l.pendN
				l.mu.Unlock()
				h := 0
				if time.Now().After(half) {
					h = 1
				}
				peaks[h] = max(peaks[h], n)
				backlog = max(backlog, l.sealing.Load())
				select {
				case <-t.C:
				case <-stop:
					return
				}
			}
		}()
		cpu := processCPU()
		start := time.Now()
		sent, lag := 0, 0
		for {
			el := time.Since(start)
			if el >= dur {
				break
			}
			due := int(rate * el.Seconds())
			lag = max(lag, due-sent)
			for ; sent < due; sent++ {
				r := recs[sent%len(recs)]
				r.Time = start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
				j.Append(&r)
			}
			time.Sleep(100 * time.Microsecond)
		}
		offered := float64(sent) / time.Since(start).Seconds()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := j.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		if err := l.WaitSealed(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		cpu = processCPU() - cpu
		close(stop)
		<-sampled
		lost := 0.0
		for _, reason := range dropReasons {
			lost += testutil.ToFloat64(opt.Metrics.Dropped.WithLabelValues(journal.Navigation.String(), reason))
		}
		sealed := testutil.ToFloat64(opt.Metrics.Sealed.WithLabelValues(journal.Navigation.String()))
		sealedBytes := testutil.ToFloat64(opt.Metrics.SealedBytes.WithLabelValues(journal.Navigation.String()))
		durable := l.Durable()
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(lost, "lost")
		b.ReportMetric(float64(peaks[0]), "pending-peak-1st")
		b.ReportMetric(float64(peaks[1]), "pending-peak-2nd")
		b.ReportMetric(float64(backlog), "seal-backlog-peak")
		b.ReportMetric(float64(lag), "lag-peak-records")
		b.ReportMetric(offered, "offered/s")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(sent), "cpu-ns/record")
		b.ReportMetric(sealed, "segments-sealed")
		if sealed > 0 {
			// Only full segments (the default 256 Ki records) are sealed
			// within a run: the last one would age out after 10 minutes.
			b.ReportMetric(sealedBytes/(sealed*(256<<10)), "sealed-bytes/record")
		}
		if lost > 0 || durable < uint64(sent) {
			b.Fatalf("%d records offered at %.0f/s: %.0f lost, %d durable", sent, rate, lost, durable)
		}
	}
}
