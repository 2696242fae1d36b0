package segment

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/journal"
	"vigie/journal/journaltest"
	"vigie/tstest"
)

const uai = "0671234X"

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

func testOptions(dir string) Options {
	return Options{Dir: dir, UAI: uai, Stream: journal.Navigation, Key: testKey, CommitInterval: time.Millisecond}
}

func openT(t testing.TB, opt Options) *Log {
	t.Helper()
	l, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func gen(n int, s journal.Stream) []journal.Record {
	g := journaltest.New(1, uai, time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	out := make([]journal.Record, n)
	for i := range out {
		out[i] = g.Next(s)
		journal.Canonicalize(&out[i])
	}
	return out
}

func appendAll(t testing.TB, l *Log, recs []journal.Record) {
	t.Helper()
	for i := range recs {
		l.Append(&recs[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func readAll(t testing.TB, l *Log) ([]journal.Record, VerifyResult) {
	t.Helper()
	var got []journal.Record
	res, err := l.Verify(func(r *journal.Record) error {
		got = append(got, *r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, res
}

func sameRecords(t *testing.T, got, want []journal.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.Seq = uint64(i + 1)
		if !reflect.DeepEqual(got[i], w) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i+1, got[i], w)
		}
	}
}

func TestAppendCloseReopen(t *testing.T) {
	dir := t.TempDir()
	recs := gen(5000, journal.Navigation)
	l := openT(t, testOptions(dir))
	appendAll(t, l, recs[:3000])
	if d := l.Durable(); d != 3000 {
		t.Fatalf("durable %d, want 3000", d)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, testOptions(dir))
	defer l.Close()
	if r := l.Recovery(); r.TornBytes != 0 || len(r.Quarantined) != 0 || r.LastSeq != 3000 {
		t.Fatalf("recovery after a clean close: %+v", r)
	}
	appendAll(t, l, recs[3000:])
	got, res := readAll(t, l)
	sameRecords(t, got, recs)
	if res.LastSeq != 5000 || len(res.Breaks) != 0 {
		t.Fatalf("verify: %+v", res)
	}
}

func TestSealRotateAndTail(t *testing.T) {
	dir := t.TempDir()
	opt := testOptions(dir)
	opt.SegmentRecords = 1000
	reg := prometheus.NewRegistry()
	opt.Metrics = NewMetrics(reg)
	l := openT(t, opt)
	recs := gen(4500, journal.Navigation)
	for i := 0; i < len(recs); i += 300 {
		appendAll(t, l, recs[i:i+300])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.WaitSealed(ctx); err != nil {
		t.Fatal(err)
	}
	segs, err := l.Sealed()
	if err != nil {
		t.Fatal(err)
	}
	// Commits group several hundred records, so segments end on the first
	// commit at or past 1000 records: at least 3 sealed, contiguous.
	if len(segs) < 3 {
		t.Fatalf("%d sealed segments, want at least 3", len(segs))
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].FirstSeq != segs[i-1].LastSeq+1 || segs[i].Prev != segs[i-1].Last {
			t.Fatalf("segments %d and %d do not chain", i-1, i)
		}
	}
	got, res := readAll(t, l)
	sameRecords(t, got, recs)
	if len(res.Breaks) != 0 {
		t.Fatal(res.Breaks)
	}
	if v := testutil.ToFloat64(opt.Metrics.Sealed.WithLabelValues("navigation")); int(v) != len(segs) {
		t.Fatalf("sealed metric %v, want %d", v, len(segs))
	}

	// The tail batch from a point inside the live segment verifies and
	// chains onto the record before it.
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	more := gen(4600, journal.Navigation)[4500:] // fewer than a segment holds
	appendAll(t, l, more)
	recs = append(recs, more...)
	from := l.LiveFirst() + 1
	data, b, err := l.Tail(from)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil || b.FirstSeq != from || b.LastSeq() != 4600 || b.Final {
		t.Fatalf("tail batch %+v", b)
	}
	var tail []journal.Record
	if _, err := DecodeBatch(data, testKey.Public().(ed25519.PublicKey), func(r *journal.Record, _ []byte, _ journal.Hash) error {
		tail = append(tail, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(tail) != int(b.Count) || tail[0].Seq != from || tail[0].Host != recs[from-1].Host {
		t.Fatalf("tail starts with %+v", tail[0])
	}
	// Prune removes only what is acknowledged.
	l.WaitSealed(ctx)
	before, _ := l.Sealed()
	n, _, err := l.Prune(segs[0].LastSeq, time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	if after, _ := l.Sealed(); len(after) != len(before)-1 {
		t.Fatalf("%d sealed after prune, want %d", len(after), len(before)-1)
	}
	l.Close()
}

// liveFile returns the single live segment of dir.
func liveFile(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.live"))
	if len(m) != 1 {
		t.Fatalf("live segments: %v", m)
	}
	return m[0]
}

func TestTornTailTruncated(t *testing.T) {
	recs := gen(300, journal.Navigation)
	for _, tc := range []struct {
		name string
		tail func(full []byte) []byte
	}{
		{"half record frame", func(full []byte) []byte {
			var f []byte
			f, _ = appendRecordFrame(f, &recs[0])
			return f[:len(f)/2]
		}},
		{"record without its commit", func(full []byte) []byte {
			var f []byte
			f, _ = appendRecordFrame(f, &recs[0])
			f[len(f)-1] ^= 0xff
			return f
		}},
		{"zeros", func(full []byte) []byte { return make([]byte, 4096) }},
		{"short commit", func(full []byte) []byte { return commitMagic }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openT(t, testOptions(dir))
			appendAll(t, l, recs)
			l.Close()
			path := liveFile(t, dir)
			full, _ := os.ReadFile(path)
			junk := tc.tail(full)
			os.WriteFile(path, append(full, junk...), 0o640)
			reg := prometheus.NewRegistry()
			opt := testOptions(dir)
			opt.Metrics = NewMetrics(reg)
			l = openT(t, opt)
			defer l.Close()
			if r := l.Recovery(); r.TornBytes != int64(len(junk)) || r.LastSeq != 300 {
				t.Fatalf("recovery %+v, want %d torn bytes", r, len(junk))
			}
			if v := testutil.ToFloat64(opt.Metrics.TornBytes.WithLabelValues("navigation")); v != float64(len(junk)) {
				t.Fatalf("torn metric %v", v)
			}
			if st, _ := os.Stat(path); st.Size() != int64(len(full)) {
				t.Fatalf("file is %d bytes after recovery, want %d", st.Size(), len(full))
			}
			appendAll(t, l, recs[:10])
			got, _ := readAll(t, l)
			if len(got) != 310 {
				t.Fatalf("%d records after recovery and 10 more, want 310", len(got))
			}
		})
	}
}

func TestBitFlipDetected(t *testing.T) {
	recs := gen(2000, journal.Navigation)
	t.Run("live segment", func(t *testing.T) {
		dir := t.TempDir()
		l := openT(t, testOptions(dir))
		// Several commits so that damage early in the file has committed
		// data after it.
		appendAll(t, l, recs[:1000])
		appendAll(t, l, recs[1000:])
		l.Close()
		path := liveFile(t, dir)
		data, _ := os.ReadFile(path)
		data[len(data)/3] ^= 0x10
		os.WriteFile(path, data, 0o640)
		l = openT(t, testOptions(dir))
		defer l.Close()
		r := l.Recovery()
		if len(r.Quarantined) != 1 || !strings.HasSuffix(r.Quarantined[0], ".corrupt") {
			t.Fatalf("damaged live segment not quarantined: %+v", r)
		}
		if r.TornBytes != 0 {
			t.Fatalf("damage taken for a torn tail: %+v", r)
		}
		// The chain continues after a gap marker at the last intact commit.
		appendAll(t, l, recs[:1])
		var gaps int64
		got, res := readAll(t, l)
		for _, g := range got {
			gaps += g.Lost
		}
		if gaps == 0 || res.LastSeq != 2002 {
			t.Fatalf("after salvage: lost %d, last seq %d (want a gap and seq 2002)", gaps, res.LastSeq)
		}
	})
	t.Run("sealed segment", func(t *testing.T) {
		for _, where := range []string{"header", "body"} {
			t.Run(where, func(t *testing.T) {
				dir := t.TempDir()
				opt := testOptions(dir)
				l := openT(t, opt)
				appendAll(t, l, recs)
				ctx := context.Background()
				if err := l.Rotate(ctx); err != nil {
					t.Fatal(err)
				}
				l.WaitSealed(ctx)
				segs, _ := l.Sealed()
				if len(segs) != 1 {
					t.Fatalf("%d sealed", len(segs))
				}
				data, _ := os.ReadFile(segs[0].Path)
				i := 40
				if where == "body" {
					i = len(data) - 100
				}
				data[i] ^= 0x01
				os.WriteFile(segs[0].Path, data, 0o640)
				_, err := l.Verify(nil)
				var be *BatchError
				if !errors.As(err, &be) || !strings.Contains(err.Error(), filepath.Base(segs[0].Path)) {
					t.Fatalf("flipped bit in the %s: %v", where, err)
				}
				l.Close()
			})
		}
	})
}

func TestGapMarkerOnOverload(t *testing.T) {
	dir := t.TempDir()
	opt := testOptions(dir)
	opt.MaxPending = 1 // every record beyond the first pending one is dropped
	opt.CommitInterval = time.Hour
	reg := prometheus.NewRegistry()
	opt.Metrics = NewMetrics(reg)
	l := openT(t, opt)
	recs := gen(10, journal.Navigation)
	for i := range recs {
		l.Append(&recs[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l.Append(&recs[0]) // brings the gap marker, then this record
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, l)
	l.Close()
	if len(got) != 3 || got[1].Lost != 9 || got[1].Verdict != "gap" {
		t.Fatalf("want record, gap of 9, record; got %d records: %+v", len(got), got)
	}
	if v := testutil.ToFloat64(opt.Metrics.Dropped.WithLabelValues("navigation", DropOverload)); v != 9 {
		t.Fatalf("dropped metric %v, want 9", v)
	}
}

func TestJournalRoutesStreams(t *testing.T) {
	dir := t.TempDir()
	opt := testOptions(dir)
	j, err := OpenJournal(opt)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range gen(500, s) {
				r.Time = time.Time{} // the journal's clock fills it
				j.Append(&r)
			}
		}()
	}
	wg.Wait()
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		got, _ := readAll(t, j.Log(s))
		if len(got) != 500 || got[0].Stream != s || got[0].Time.IsZero() {
			t.Fatalf("%s: %d records, first %+v", s, len(got), got[0])
		}
	}
	j.Close()
	// A second chain may not start over the first one's files.
	os.Remove(filepath.Join(dir, "navigation", "chain.json"))
	if _, err := OpenJournal(opt); err == nil || !strings.Contains(err.Error(), "chain.json is missing") {
		t.Fatalf("reopen without chain.json: %v", err)
	}
	// Nor for another school.
	os.WriteFile(filepath.Join(dir, "navigation", "chain.json"), []byte(`{"uai":"0670000A","stream":"navigation","chain":"00000000000000000000000000000000"}`), 0o640)
	if _, err := OpenJournal(opt); err == nil || !strings.Contains(err.Error(), "belongs to 0670000A") {
		t.Fatalf("reopen of another school's journal: %v", err)
	}
}

func TestSealedSegmentWithOtherKeySetAside(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, testOptions(dir))
	appendAll(t, l, gen(100, journal.Navigation))
	ctx := context.Background()
	l.Rotate(ctx)
	l.WaitSealed(ctx)
	l.Close()
	opt := testOptions(dir)
	opt.Key = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)) // the key file was lost and regenerated
	l = openT(t, opt)
	defer l.Close()
	r := l.Recovery()
	if len(r.Quarantined) != 1 || len(r.Problems) != 1 {
		t.Fatalf("recovery %+v: want the old segment set aside and the break reported", r)
	}
	appendAll(t, l, gen(5, journal.Navigation))
	if res, err := l.Verify(nil); err != nil || res.LastSeq != 105 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestDiskPressureRecordsGap(t *testing.T) {
	dir := t.TempDir()
	opt := testOptions(dir)
	opt.MinFreeBytes = 1 << 62 // no disk has that much free: pressure at once
	opt.MaintainEvery = 10 * time.Millisecond
	reg := prometheus.NewRegistry()
	opt.Metrics = NewMetrics(reg)
	l := openT(t, opt)
	defer l.Close()
	recs := gen(20, journal.Navigation)
	tstest.Eventually(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(opt.Metrics.DiskPressure.WithLabelValues("navigation")) == 1
	}, "disk pressure not raised")
	for i := range recs[:10] {
		l.Append(&recs[i]) // filtering goes on; the journal counts
	}
	if v := testutil.ToFloat64(opt.Metrics.Dropped.WithLabelValues("navigation", DropDisk)); v != 10 {
		t.Fatalf("dropped metric %v, want 10", v)
	}
	// Space comes back: the gap is written into the chain.
	l.mu.Lock()
	l.opt.MinFreeBytes = -1
	l.mu.Unlock()
	tstest.Eventually(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(opt.Metrics.DiskPressure.WithLabelValues("navigation")) == 0
	}, "disk pressure not cleared")
	appendAll(t, l, recs[10:])
	got, _ := readAll(t, l)
	if len(got) != 11 || got[0].Lost != 10 || got[0].Verdict != "gap" {
		t.Fatalf("want a gap of 10 then 10 records, got %d records, first %+v", len(got), got[0])
	}
}
