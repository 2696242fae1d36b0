package segment

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"vigie/journal"
)

// TestSealMemory: sealing a segment reads it through a window, not whole,
// and holds a few tens of bytes per record (columns, dictionaries) until
// the batch is written. The records are dnsMix's, the hardest case for the
// dictionaries: 40,000 distinct names in 65,536 records (a school sees a
// few thousand a day).
func TestSealMemory(t *testing.T) {
	recs := dnsMixRecs()
	opt := testOptions(t.TempDir())
	opt.MinFreeBytes = -1
	opt.SegmentRecords = 1 << 40
	l := openT(t, opt)
	appendAll(t, l, recs)
	l.segMu.Lock()
	path := l.segPath
	l.segMu.Unlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	n := float64(len(recs))

	// Held: what the batch builder keeps once every record is in.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	base := heapAlloc()
	h, err := readLiveHeader(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	bb := newBatchBuilder(h.UAI, h.Stream, h.Chain, h.FirstSeq, h.Prev)
	if _, err := scanLiveFile(path, f, st.Size(), func(_ uint64, _ []byte, r *journal.Record, link journal.Hash) error {
		bb.addLinked(r, link)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	held := float64(heapAlloc()-base) / n
	runtime.KeepAlive(bb)

	// Allocated: everything sealFile allocates, garbage included (it sets
	// the pace of the collector, hence the heap's peak).
	sl := &Log{opt: l.opt}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := sl.sealFile(path, nil); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := float64(after.TotalAlloc-before.TotalAlloc) / n
	live := float64(st.Size()) / n
	// The sealer's way: columns, dictionaries and body in an arena, its
	// deflate writer kept from the seal before.
	a := newArena(sealArenaSize)
	defer a.free()
	if a == nil {
		t.Fatal("no arena")
	}
	zw, err := kflate.NewWriter(io.Discard, l.opt.Level)
	if err != nil {
		t.Fatal(err)
	}
	// sealFile removed the live segment: put it back.
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(sl.opt.Dir, segName(1, "sealed")))
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := sl.sealFile(path, &sealReuse{a: a, zw: zw}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	arenaAlloc := float64(after.TotalAlloc-before.TotalAlloc) / n
	arenaUsed := float64(a.off) / n
	a.reset()
	t.Logf("seal of %d DNS records (live segment %.1f MB, %.1f B/record): builder holds %.1f B/record, sealFile allocates %.1f B/record (%.2f× the segment); in an arena: %.1f B/record from the heap, %.1f B/record of arena",
		len(recs), float64(st.Size())/1e6, live, held, alloc, alloc/live, arenaAlloc, arenaUsed)
	if arenaAlloc > 20 {
		t.Errorf("sealing in an arena allocates %.1f heap bytes per record, budget 20", arenaAlloc)
	}
	// Before the bounded pass (2026-12-07): the segment read whole, two
	// decodes allocating every text field, a peak of 451 heap bytes per
	// record above the base and 601 bytes allocated per record (6.0×).
	if held > 100 {
		t.Errorf("the batch builder holds %.1f heap bytes per record, budget 100", held)
	}
	if alloc > 3*live {
		t.Errorf("sealing allocates %.1f bytes per record, budget 3× the live segment's %.1f", alloc, live)
	}
}

// TestFinishUnchanged: deflating the columns piece by piece behind room
// left for the header gives, byte for byte, the batch that joining them
// and appending the body to the header gave; so does the sealer's way at
// level 1, in an arena with a deflate writer reused from batch to batch.
func TestFinishUnchanged(t *testing.T) {
	sealed := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	reused, err := kflate.NewWriter(io.Discard, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, recs := range map[string][]journal.Record{
		"navigation": gen(20000, journal.Navigation), "connexions": gen(20000, journal.Connexions),
		"flows": genFlows(5000), "dns": dnsMixRecs()[:30000],
	} {
		for _, level := range []int{1, 6} {
			bb := newBatchBuilder(uai, recs[0].Stream, journal.ChainID{3}, 1, journal.Hash{})
			if level == 1 {
				a := newArena(64 << 20)
				defer a.free()
				bb = (&sealReuse{a: a, zw: reused}).builder(bb)
			}
			var payload []byte
			for i := range recs {
				payload = journal.AppendRecord(payload[:0], &recs[i])
				bb.add(&recs[i], payload)
			}
			got, _, err := bb.finish(true, sealed, testKey, level)
			if err != nil {
				t.Fatal(err)
			}
			// The batch as finish wrote it before.
			raw := bb.cols.bytes()
			var body bytes.Buffer
			zw, _ := kflate.NewWriter(&body, level)
			zw.Write(raw)
			zw.Close()
			b := bb.b
			b.Final, b.Sealed = true, sealed
			b.RawLen, b.BodyLen, b.BodyHash = uint32(len(raw)), uint32(body.Len()), sha256.Sum256(body.Bytes())
			want := b.appendHeader(nil)
			want = append(want, ed25519.Sign(testKey, want)...)
			want = append(want, body.Bytes()...)
			if !bytes.Equal(got, want) {
				t.Errorf("%s, level %d: the batch differs from the joined-columns one (%d and %d bytes)", name, level, len(got), len(want))
			}
		}
	}
}

// TestFlowsAfterOtherRecords: a batch whose flow records come after
// others (their flow columns are only written from the first flow record
// on, the earlier records' empty values filled in then) decodes to the
// same records.
func TestFlowsAfterOtherRecords(t *testing.T) {
	recs := append(gen(300, journal.Connexions), genFlows(300)...)
	recs = append(recs, gen(50, journal.Connexions)...)
	bb := newBatchBuilder(uai, journal.Connexions, journal.ChainID{5}, 1, journal.Hash{})
	var payload []byte
	for i := range recs {
		payload = journal.AppendRecord(payload[:0], &recs[i])
		bb.add(&recs[i], payload)
	}
	out, _, err := bb.finish(true, time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC), testKey, 1)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	if _, err := DecodeBatch(out, testKey.Public().(ed25519.PublicKey), func(r *journal.Record, _ []byte, _ journal.Hash) error {
		want := recs[i]
		want.Seq = r.Seq
		if *r != want {
			t.Errorf("record %d: %+v, want %+v", i, *r, want)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if i != len(recs) {
		t.Fatalf("%d records decoded of %d", i, len(recs))
	}
}
