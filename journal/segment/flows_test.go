package segment

import (
	"compress/gzip"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/journaltest"
)

func genFlows(n int) []journal.Record {
	g := journaltest.New(1, uai, time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	out := make([]journal.Record, n)
	for i := range out {
		out[i] = g.Flow()
		journal.Canonicalize(&out[i])
	}
	return out
}

// TestSealedSizeFlows holds conntrack flow records to the same budget as
// the others: at most 40 bytes per record once sealed.
func TestSealedSizeFlows(t *testing.T) {
	opt := testOptions(t.TempDir())
	opt.defaults()
	recs := genFlows(50000)
	out := sealRecords(t, recs, opt.Level)
	per := float64(len(out)) / float64(len(recs))
	t.Logf("flows: %.1f bytes/record sealed", per)
	if per > 40 {
		t.Errorf("flows: %.1f bytes/record sealed, budget 40", per)
	}
}

// TestFlowColumnsRoundTrip seals batches with and without flow fields and
// reads them back: the flow columns appear only when needed, and a batch
// mixing both kinds of record keeps every field.
func TestFlowColumnsRoundTrip(t *testing.T) {
	plain := gen(200, journal.Connexions)
	flows := genFlows(200)
	mixed := append(append([]journal.Record(nil), plain[:100]...), flows[:100]...)
	for i := range mixed {
		mixed[i].Time = plain[0].Time.Add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		name string
		recs []journal.Record
	}{{"plain", plain}, {"flows", flows}, {"mixed", mixed}} {
		t.Run(tc.name, func(t *testing.T) {
			out := sealRecords(t, tc.recs, 1)
			i := 0
			_, err := DecodeBatch(out, testKey.Public().(ed25519.PublicKey), func(r *journal.Record, _ []byte, _ journal.Hash) error {
				want := tc.recs[i]
				want.Seq = r.Seq
				if *r != want {
					t.Fatalf("record %d:\n got %+v\nwant %+v", i, *r, want)
				}
				i++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if i != len(tc.recs) {
				t.Fatalf("%d records read, %d sealed", i, len(tc.recs))
			}
		})
	}
}

// BenchmarkSealFlows reports the sealed bytes per flow record, beside
// gzip'd JSON of the same records as the baseline.
func BenchmarkSealFlows(b *testing.B) {
	recs := genFlows(100000)
	b.Run("vigie", func(b *testing.B) {
		var out []byte
		for i := 0; i < b.N; i++ {
			out = sealRecords(b, recs, 1)
		}
		b.ReportMetric(float64(len(out))/float64(len(recs)), "sealed-bytes/record")
		b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("baseline-gzip-json", func(b *testing.B) {
		var n countWriter
		for i := 0; i < b.N; i++ {
			n = 0
			zw := gzip.NewWriter(&n)
			enc := json.NewEncoder(zw)
			for j := range recs {
				enc.Encode(&recs[j])
			}
			zw.Close()
		}
		b.ReportMetric(float64(n)/float64(len(recs)), "sealed-bytes/record")
	})
}
