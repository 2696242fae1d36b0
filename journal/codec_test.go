package journal

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func sample() Record {
	return Record{
		Stream: Navigation, Time: time.Date(2026, 3, 2, 8, 15, 4, 123456789, time.UTC), UAI: "0671234X",
		Client: netip.MustParseAddrPort("10.10.1.23:51234"), MAC: "02:00:5e:00:01:02", User: "élève.dupont",
		NAT: netip.MustParseAddrPort("198.51.100.10:40000"), Proto: "https", Dest: netip.MustParseAddrPort("[2001:db8::1]:443"),
		Duration: 1500 * time.Millisecond, BytesIn: 123456, BytesOut: -1, Host: "www.exemple.fr", URL: "https://www.exemple.fr/a?b=c",
		Method: "GET", QType: "A", RCode: "NOERROR", Status: 403, Verdict: "block", Category: "adult", Reference: "B-00A1",
		UpstreamLatency: 2 * time.Millisecond,
	}
}

func TestCodecRoundTrip(t *testing.T) {
	long := strings.Repeat("é", MaxURL)
	for _, tc := range []struct {
		name string
		mod  func(*Record)
	}{
		{"full", func(*Record) {}},
		{"zero fields", func(r *Record) { *r = Record{Stream: Connexions} }},
		{"ipv6 zone", func(r *Record) { r.Client = netip.MustParseAddrPort("[fe80::1%eth0]:53") }},
		{"4in6", func(r *Record) { r.Dest = netip.MustParseAddrPort("[::ffff:203.0.113.5]:80") }},
		{"negative times", func(r *Record) { r.Time = time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC); r.Duration = -time.Second }},
		{"gap marker", func(r *Record) {
			*r = Record{Stream: Navigation, Time: r.Time, UAI: r.UAI, Verdict: "gap", Lost: 1 << 40}
		}},
		{"long URL cut", func(r *Record) { r.URL = long }},
		{"invalid UTF-8 repaired", func(r *Record) { r.Host = "a\xffb\xc3" }},
		{"control characters kept", func(r *Record) { r.User = "a\x00b\nc\"d" }},
		{"port without address dropped", func(r *Record) { r.NAT = netip.AddrPortFrom(netip.Addr{}, 80) }},
		{"flow", func(r *Record) {
			*r = Record{Stream: Connexions, Time: r.Time, UAI: r.UAI, Client: r.Client, NAT: r.NAT, Dest: r.Dest, Proto: "udp",
				Duration: time.Second, BytesIn: 10, BytesOut: 20, Verdict: "drop", Zone: "pedagogique", Reason: "internet.pedagogique"}
		}},
		{"flow link only", func(r *Record) { r.Link = "proxy" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sample()
			tc.mod(&r)
			p := AppendRecord(nil, &r)
			var got Record
			if err := DecodeRecord(p, &got); err != nil {
				t.Fatal(err)
			}
			want := r
			Canonicalize(&want)
			if got != want {
				t.Fatalf("decoded\n %+v\nwant\n %+v", got, want)
			}
			if len(got.URL) > MaxURL || len(got.Host) > MaxField {
				t.Fatalf("limits not applied: URL %d bytes", len(got.URL))
			}
			// Canonical: encoding what was decoded gives the same bytes.
			if again := AppendRecord(nil, &got); !bytes.Equal(again, p) {
				t.Fatal("encoding is not canonical")
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := AppendRecord(nil, &Record{Stream: Connexions, Time: time.Unix(0, 0), UAI: "0671234X"})
	for _, tc := range []struct {
		name string
		p    []byte
		want string
	}{
		{"empty", nil, "version"},
		{"version", append([]byte{9}, good[1:]...), "version 9"},
		{"stream", append([]byte{1, 7}, good[2:]...), "stream 7"},
		{"truncated", good[:len(good)-1], "field lost"},
		{"trailing", append(append([]byte(nil), good...), 0), "trailing"},
		{"non-minimal varint", append([]byte{1, 1, 0x80, 0x00}, good[3:]...), "non-minimal"},
		{"string too long", append([]byte{1, 1, 0, 0xff, 0xff, 0x03}, good[4:]...), "length"},
		{"version 2 without flow fields", append(append([]byte{2}, good[1:]...), 0, 0, 0), "flow fields"},
		{"version 2 truncated", append([]byte{2}, good[1:]...), "field zone"},
		{"bad address tag", func() []byte { b := append([]byte(nil), good...); b[3+1+8] = 5; return b }(), "address tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			err := DecodeRecord(tc.p, &r)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrCorrupt mentioning %q", err, tc.want)
			}
		})
	}
}

func TestChain(t *testing.T) {
	id := ChainID{1, 2, 3}
	g := Genesis("0671234X", Navigation, id)
	if g == Genesis("0671234X", Connexions, id) || g == Genesis("0671234Y", Navigation, id) || g == Genesis("0671234X", Navigation, ChainID{}) {
		t.Fatal("genesis does not separate schools, streams and chains")
	}
	p := AppendRecord(nil, &Record{Stream: Navigation})
	c := NewChainer()
	if c.Link(g, 1, p) != Link(g, 1, p) || c.Link(g, 1, p) == c.Link(g, 2, p) {
		t.Fatal("link must depend on the sequence number and be deterministic")
	}
	h, err := ParseHash(g.String())
	if err != nil || h != g {
		t.Fatal(err)
	}
	if _, err := ParseHash("zz"); err == nil {
		t.Fatal("bad hash parsed")
	}
}

func TestAppendAllocs(t *testing.T) {
	r := sample()
	buf := make([]byte, 0, 1024)
	c := NewChainer()
	var h Hash
	n := testing.AllocsPerRun(1000, func() {
		buf = AppendRecord(buf[:0], &r)
		h = c.Link(h, 1, buf)
	})
	if n != 0 {
		t.Fatalf("%v allocations per record encoded and chained, want 0", n)
	}
}

// FuzzDecodeRecord: no input crashes the decoder, and whatever decodes is
// canonical (re-encodes to the same bytes), which the hash chain needs.
func FuzzDecodeRecord(f *testing.F) {
	r := sample()
	f.Add(AppendRecord(nil, &r))
	f.Add(AppendRecord(nil, &Record{Stream: Connexions}))
	r.Client = netip.MustParseAddrPort("[fe80::1%eth0]:53")
	f.Add(AppendRecord(nil, &r))
	r.Zone, r.Reason, r.Link = "wifi", "quic.wifi", "proxy"
	f.Add(AppendRecord(nil, &r))
	f.Fuzz(func(t *testing.T, p []byte) {
		var r Record
		if err := DecodeRecord(p, &r); err != nil {
			return
		}
		if again := AppendRecord(nil, &r); !bytes.Equal(again, p) {
			t.Fatalf("decoded a non-canonical payload:\n in %x\nout %x", p, again)
		}
	})
}

func BenchmarkAppendRecordAndLink(b *testing.B) {
	r := sample()
	buf := make([]byte, 0, 1024)
	c := NewChainer()
	var h Hash
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendRecord(buf[:0], &r)
		h = c.Link(h, uint64(i), buf)
	}
	b.ReportMetric(float64(len(buf)), "bytes/record")
}

func TestDecoderInterns(t *testing.T) {
	r := sample()
	p := AppendRecord(nil, &r)
	var dc Decoder
	var a, b Record
	if err := dc.Decode(p, &a); err != nil {
		t.Fatal(err)
	}
	if err := dc.Decode(p, &b); err != nil {
		t.Fatal(err)
	}
	want := r
	Canonicalize(&want)
	if a != want || b != want {
		t.Fatal("interning decoder decodes differently")
	}
	if n := testing.AllocsPerRun(100, func() { dc.Decode(p, &b) }); n > 1 {
		t.Fatalf("%v allocations per repeated record", n)
	}
	bad := append([]byte(nil), p...)
	bad[len(bad)-40] = 0xff
	if err := dc.Decode(bad, &b); err == nil {
		// Whatever byte was hit, an interned decoder must not accept
		// what the plain one refuses.
		if DecodeRecord(bad, &a) != nil {
			t.Fatal("interning decoder accepted a record the plain decoder refuses")
		}
	}
}

func TestPeekNAT(t *testing.T) {
	for _, r := range []Record{sample(), {Stream: Connexions}, {Stream: Connexions, NAT: netip.MustParseAddrPort("[2001:db8::7]:40123"), Zone: "wifi"}} {
		p := AppendRecord(nil, &r)
		nat, ok := PeekNAT(p)
		if !ok || nat != r.NAT {
			t.Errorf("PeekNAT = %v %v, want %v", nat, ok, r.NAT)
		}
		if _, ok := PeekNAT(p[:3]); ok {
			t.Error("PeekNAT accepted a truncated payload")
		}
	}
}
