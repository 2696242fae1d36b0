package segment

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"vigie/journal"
)

func seedBatch(n int) []byte {
	recs := gen(n, journal.Navigation)
	bb := newBatchBuilder(uai, journal.Navigation, journal.ChainID{1}, 1, journal.Genesis(uai, journal.Navigation, journal.ChainID{1}))
	var p []byte
	for i := range recs {
		p = journal.AppendRecord(p[:0], &recs[i])
		bb.add(&recs[i], p)
	}
	out, _, _ := bb.finish(true, time.Unix(1_800_000_000, 0), testKey, 1)
	return out
}

// FuzzDecodeBatch feeds arbitrary bytes to the archive's first reader of
// untrusted input. Without a key (the signature is skipped, so the fuzzer
// reaches the body), nothing may crash or allocate without bound, and a
// batch that decodes must rebuild records whose chain ends where the
// header says.
func FuzzDecodeBatch(f *testing.F) {
	seed1, seed20 := seedBatch(1), seedBatch(20)
	f.Add(seed1)
	f.Add(seed20)
	f.Add([]byte("VGJBAT01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n uint32
		b, err := DecodeBatch(data, nil, func(r *journal.Record, p []byte, _ journal.Hash) error {
			n++
			var back journal.Record
			if err := journal.DecodeRecord(p, &back); err != nil {
				t.Fatalf("a decoded record does not re-decode: %v", err)
			}
			// The payload was encoded without cleaning its text
			// (AppendCanonical): it must be what cleaning gives.
			if q := journal.AppendRecord(nil, r); string(q) != string(p) {
				t.Fatalf("payload %x is not canonical (%x)", p, q)
			}
			return nil
		})
		if err != nil {
			var be *BatchError
			if !errors.As(err, &be) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if n != b.Count {
			t.Fatalf("%d records delivered, header says %d", n, b.Count)
		}
		// With the key, a batch the fuzzer made cannot verify.
		if _, err := DecodeBatch(data, testKey.Public().(ed25519.PublicKey), nil); err == nil && string(data) != string(seed1) && string(data) != string(seed20) {
			t.Fatal("a modified batch verifies with the edge's key")
		}
	})
}

// FuzzScanLive feeds arbitrary bytes as a live segment, as Open does after
// a crash: no crash, no hang, and a clean end is never past the data.
func FuzzScanLive(f *testing.F) {
	recs := gen(5, journal.Navigation)
	h := liveHeader{Stream: journal.Navigation, FirstSeq: 1, UAI: uai, Created: time.Unix(1_800_000_000, 0)}
	img := h.append(nil)
	for i := range recs {
		img, _ = appendRecordFrame(img, &recs[i])
	}
	f.Add(img)
	img = appendCommitFrame(img, 5, journal.Hash{})
	f.Add(img)
	f.Add(img[:len(img)-7])
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := scanLive("fuzz", data, nil)
		var ce *CorruptError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if res.End > int64(len(data)) || res.End < 0 {
			t.Fatalf("valid end %d past %d bytes", res.End, len(data))
		}
		if err == nil && res.End < int64(len(data)) {
			// What recovery would keep must scan clean on its own.
			again, err := scanLive("fuzz", data[:res.End], nil)
			if err != nil || again.End != res.End || again.Records != res.Records {
				t.Fatalf("the kept prefix does not rescan: %v %+v vs %+v", err, again, res)
			}
		}
	})
}
