package export

import (
	"bytes"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/journaltest"
)

// rawCases are records that exercise every corner of the formatting:
// quoting and escaping, non-ASCII text, IPv6 (mapped, zoned), negative and
// extreme numbers, empty fields.
func rawCases() []journal.Record {
	g := journaltest.New(42, uai, day0)
	var recs []journal.Record
	for i := 0; i < 2000; i++ {
		recs = append(recs, g.Next(streams[i%2]))
	}
	ap := netip.MustParseAddrPort
	odd := []journal.Record{
		{Stream: journal.Navigation, Time: day0, UAI: uai, Host: `a;b"c`, URL: "http://x/\n\r\t\x01\\\"é€😀", User: "élève;1", Verdict: "block", Status: -3},
		{Stream: journal.Connexions, Time: time.Date(2026, 10, 25, 0, 59, 59, 999999000, time.UTC), UAI: uai, Client: ap("[2001:db8::1]:443"),
			NAT: ap("[::ffff:198.51.100.7]:1"), Dest: ap("[fe80::1%eth0]:80"), Duration: -1500 * time.Microsecond, BytesIn: math.MinInt64 / 2, BytesOut: math.MaxInt64},
		{Stream: journal.Connexions, Time: time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), Client: ap("[fe80::2%\"x;y]:5"), MAC: "aa:bb", Lost: 12},
		{Stream: journal.Navigation, Time: time.Unix(-1, 500), UpstreamLatency: time.Hour, Status: math.MaxInt32, Lost: -1},
		{Stream: journal.Navigation, Time: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), Category: "\u2028", Reference: "\x7f"},
		{Stream: journal.Connexions},
	}
	return append(recs, odd...)
}

// both formats payloads the two ways; like an export, it keeps its view
// and time formatters from one record to the next (their caches).
type both struct {
	v        rawRecord
	tf1, tf2 timeFormatter
}

// format formats payload p through the view (ok false when it declines)
// and through journal.Record.
func (b *both) format(p []byte, seq uint64, prev *journal.Hash) (rawOut []byte, ok bool, recOut []byte, recErr error) {
	v, tf1, tf2 := &b.v, &b.tf1, &b.tf2
	if v.decode(p) {
		ok = true
		rawOut = tf1.appendRawCSV(nil, v, seq)
		rawOut = tf1.appendRawJSONOpen(rawOut, v, seq, 3, prev)
	}
	var r journal.Record
	if recErr = journal.DecodeRecord(p, &r); recErr == nil {
		r.Seq = seq
		recOut = tf2.appendCSV(nil, &r)
		recOut = tf2.appendJSONOpen(recOut, &r, 3, prev)
	}
	return
}

func TestRawMatchesRecordPath(t *testing.T) {
	prev := journal.Hash{1, 2, 3}
	declined := 0
	var b both
	for i, r := range rawCases() {
		p := journal.AppendRecord(nil, &r)
		var pp *journal.Hash
		if i%3 == 0 {
			pp = &prev
		}
		got, ok, want, err := b.format(p, uint64(i+1), pp)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !ok {
			declined++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d:\nview:   %q\nrecord: %q", i, got, want)
		}
	}
	// Only the two zoned addresses take the Record path.
	if declined != 2 {
		t.Errorf("the view declined %d records, want 2 (the zoned addresses)", declined)
	}
}

// TestRawNeverAcceptsWhatDecodeRejects damages payloads at random: the
// view must decline every payload journal.DecodeRecord rejects, and
// format the same text for those it accepts.
func TestRawNeverAcceptsWhatDecodeRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := rawCases()
	accepted, rejected := 0, 0
	var b both
	for i := 0; i < 200000; i++ {
		r := cases[rng.IntN(len(cases))]
		p := journal.AppendRecord(nil, &r)
		switch rng.IntN(4) {
		case 0: // flip a byte
			p[rng.IntN(len(p))] ^= byte(1 + rng.IntN(255))
		case 1: // cut
			p = p[:rng.IntN(len(p))]
		case 2: // set a byte to a value that often matters
			p[rng.IntN(len(p))] = []byte{0, 0x80, 0xff, ';', '"', 7}[rng.IntN(6)]
		case 3: // append
			p = append(p, byte(rng.IntN(256)))
		}
		got, ok, want, err := b.format(p, 7, nil)
		if err != nil {
			rejected++
			if ok {
				t.Fatalf("payload %x: the view accepts it, DecodeRecord says %v", p, err)
			}
			continue
		}
		accepted++
		if ok && !bytes.Equal(got, want) {
			t.Fatalf("payload %x:\nview:   %q\nrecord: %q", p, got, want)
		}
	}
	if accepted == 0 || rejected == 0 {
		t.Fatalf("accepted %d, rejected %d: the damage does not cover both", accepted, rejected)
	}
}

func TestTextClass(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("abcXYZ09-_./:?=&%;\"\\\r\n\t\x00\x1f\x7f\x80\xc3\xa9 ")
	for i := 0; i < 100000; i++ {
		s := make([]byte, rng.IntN(40))
		for j := range s {
			if rng.IntN(8) == 0 {
				s[j] = alphabet[rng.IntN(len(alphabet))]
			} else {
				s[j] = byte('a' + rng.IntN(26))
			}
		}
		var want byte
		for _, b := range s {
			want |= byteClass[b]
		}
		if got := textClass(s); got != want {
			t.Fatalf("textClass(%q) = %b, want %b", s, got, want)
		}
	}
}

// BenchmarkFormat compares the two ways of formatting a record (the view
// of the payload, and journal.Record) over generated traffic: ns/record.
func BenchmarkFormat(b *testing.B) {
	g := journaltest.New(5, uai, day0)
	var payloads [][]byte
	for i := 0; i < 4096; i++ {
		r := g.Next(streams[i%2])
		payloads = append(payloads, journal.AppendRecord(nil, &r))
	}
	b.Run("view", func(b *testing.B) {
		var v rawRecord
		var tf timeFormatter
		csv, js := make([]byte, 0, 1<<20), make([]byte, 0, 1<<20)
		for i := 0; b.Loop(); i++ {
			p := payloads[i%len(payloads)]
			if !v.decode(p) {
				b.Fatal("declined")
			}
			csv = tf.appendRawCSV(csv[:0], &v, uint64(i))
			js = tf.appendRawJSONOpen(js[:0], &v, uint64(i), 0, nil)
		}
	})
	b.Run("record", func(b *testing.B) {
		var dec journal.Decoder
		var r journal.Record
		var tf timeFormatter
		csv, js := make([]byte, 0, 1<<20), make([]byte, 0, 1<<20)
		for i := 0; b.Loop(); i++ {
			if err := dec.Decode(payloads[i%len(payloads)], &r); err != nil {
				b.Fatal(err)
			}
			r.Seq = uint64(i)
			csv = tf.appendCSV(csv[:0], &r)
			js = tf.appendJSONOpen(js[:0], &r, 0, nil)
		}
	})
}

// TestTimeFormatterAgainstTimeFormat runs one formatter (its caches kept)
// over times that step forwards, backwards and across the clock changes,
// against time.Format.
func TestTimeFormatterAgainstTimeFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var f timeFormatter
	at := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := 0; i < 200000; i++ {
		switch rng.IntN(10) {
		case 0:
			at += rng.Int64N(400 * 24 * 3600 * 1e6)
		case 1:
			at -= rng.Int64N(3 * 3600 * 1e6)
		default:
			at += rng.Int64N(5000)
		}
		want := time.UnixMicro(at).In(Paris).Format("2006-01-02T15:04:05.000000-07:00")
		if got := string(f.appendMicros(nil, at)); got != want {
			t.Fatalf("%d: got %s, want %s", at, got, want)
		}
	}
}
