package segment

import (
	"testing"
	"time"

	"vigie/journal"
)

// TestSealedSize holds the journal to its storage budget: at most 40 bytes
// per record once sealed, on realistic traffic (journaltest), at the
// default deflate level.
func TestSealedSize(t *testing.T) {
	opt := testOptions(t.TempDir())
	opt.defaults()
	for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
		recs := gen(50000, s)
		out := sealRecords(t, recs, opt.Level)
		per := float64(len(out)) / float64(len(recs))
		t.Logf("%s: %.1f bytes/record sealed", s, per)
		if per > 40 {
			t.Errorf("%s: %.1f bytes/record sealed, budget 40", s, per)
		}
	}
}

func sealRecords(t testing.TB, recs []journal.Record, level int) []byte {
	bb := newBatchBuilder(uai, recs[0].Stream, journal.ChainID{}, 1, journal.Hash{})
	var payload []byte
	for i := range recs {
		payload = journal.AppendRecord(payload[:0], &recs[i])
		bb.add(&recs[i], payload)
	}
	out, _, err := bb.finish(true, time.Now(), testKey, level)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
