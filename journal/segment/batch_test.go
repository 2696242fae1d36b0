package segment

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vigie/journal"
)

// signedBatch seals recs as the edge would, letting edit change the
// header (and the body) before it is signed with the edge's key.
func signedBatch(t *testing.T, recs []journal.Record, edit func(b *Batch, body *[]byte)) []byte {
	t.Helper()
	chain := journal.ChainID{1}
	bb := newBatchBuilder(uai, journal.Navigation, chain, 1, journal.Genesis(uai, journal.Navigation, chain))
	var p []byte
	for i := range recs {
		p = journal.AppendRecord(p[:0], &recs[i])
		bb.add(&recs[i], p)
	}
	data, _, err := bb.finish(true, time.Unix(1_800_000_000, 0), testKey, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, body, err := ParseBatchHeader(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	body = slices.Clone(body)
	edit(b, &body)
	hdr := b.appendHeader(nil)
	return append(append(hdr, ed25519.Sign(testKey, hdr)...), body...)
}

// TestSignedButBrokenBatchRefused: the edge's signature covers the header
// and, through its hash, the body; the records the body holds must still
// rebuild exactly the chain and the sizes the header states. A batch that
// does not, even signed with the right key, is refused.
func TestSignedButBrokenBatchRefused(t *testing.T) {
	recs := gen(200, journal.Navigation)
	altered := slices.Clone(recs)
	altered[120].Host = "autre.exemple.fr"
	ah, alteredBody, err := ParseBatchHeader(signedBatch(t, altered, func(*Batch, *[]byte) {}), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := testKey.Public().(ed25519.PublicKey)
	for _, tc := range []struct {
		name string
		edit func(b *Batch, body *[]byte)
		text string
	}{
		{"unchanged", func(*Batch, *[]byte) {}, ""},
		{"last link not the records'", func(b *Batch, _ *[]byte) { b.Last[0] ^= 1 }, "chain broken"},
		{"previous link not the records'", func(b *Batch, _ *[]byte) { b.Prev[31] ^= 1 }, "chain broken"},
		{"one record changed, its hash and the sealed link kept", func(b *Batch, body *[]byte) {
			*body = slices.Clone(alteredBody)
			b.RawLen, b.BodyLen, b.BodyHash = ah.RawLen, ah.BodyLen, ah.BodyHash
		}, "chain broken"},
		{"sequence numbers shifted", func(b *Batch, _ *[]byte) { b.FirstSeq++ }, "chain broken"},
		{"one record more", func(b *Batch, _ *[]byte) { b.Count++ }, "stream column holds"},
		{"inflated body shorter than stated", func(b *Batch, _ *[]byte) { b.RawLen++ }, "header says"},
		{"inflated body longer than stated", func(b *Batch, _ *[]byte) { b.RawLen-- }, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := signedBatch(t, recs, tc.edit)
			var n int
			_, err := DecodeBatch(data, pub, func(*journal.Record, []byte, journal.Hash) error { n++; return nil })
			if tc.text == "" {
				if err != nil || n != len(recs) {
					t.Fatalf("%d records, %v", n, err)
				}
				return
			}
			var be *BatchError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want a batch error mentioning %q", err, tc.text)
			}
		})
	}
}

// TestDecodeBatchConcurrent: batches decoded at once on several
// goroutines (the archive verifies concurrent ingests in parallel, with
// pooled inflaters and buffers) give what each gives alone.
func TestDecodeBatchConcurrent(t *testing.T) {
	recs := gen(3000, journal.Navigation)
	var batches [][]byte
	var want []string
	for _, k := range []int{1, 700, 3000} {
		data := signedBatch(t, recs[:k], func(*Batch, *[]byte) {})
		batches = append(batches, data)
		want = append(want, digest(t, data))
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i := 0; i < 6; i++ {
				j := (g + i) % len(batches)
				if got := digest(t, batches[j]); got != want[j] {
					t.Errorf("batch %d decoded concurrently differs", j)
				}
			}
		})
	}
	wg.Wait()
}

// digest is every record, payload and link a batch gives (it may run on
// another goroutine than the test's).
func digest(t *testing.T, data []byte) string {
	t.Helper()
	var sb strings.Builder
	_, err := DecodeBatch(data, testKey.Public().(ed25519.PublicKey), func(r *journal.Record, p []byte, link journal.Hash) error {
		fmt.Fprintf(&sb, "%d %+v %x %x\n", r.Seq, *r, p, link)
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	return sb.String()
}

// BenchmarkDecodeBatch verifies and decodes one sealed segment of 25,000
// records of each stream, as the archive's ingest does (signature, body
// hash, inflate, columns, canonical payload and link of every record).
//
//	go test ./journal/segment -run '^$' -bench DecodeBatch
func BenchmarkDecodeBatch(b *testing.B) {
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		data := sealRecords(b, gen(25000, s), 1)
		pub := testKey.Public().(ed25519.PublicKey)
		b.Run(s.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			cpu0 := processCPU()
			for b.Loop() {
				if _, err := DecodeBatch(data, pub, func(*journal.Record, []byte, journal.Hash) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			cpu := processCPU() - cpu0
			b.ReportMetric(float64(25000*b.N)/b.Elapsed().Seconds(), "records/s")
			// The process's CPU time: on a shared machine the wall
			// clock says more about the neighbours.
			b.ReportMetric(float64(25000*b.N)/cpu.Seconds(), "records/cpu-s")
		})
	}
}
