package normalize

import (
	"errors"
	"strings"
	"testing"
)

var hostTests = []struct {
	name, in, want string
	reason         string // when non-empty, Host must fail with this Error.Reason
}{
	{name: "canonical", in: "example.com", want: "example.com"},
	{name: "uppercase and trailing dot", in: "EXAMPLE.com.", want: "example.com"},
	{name: "single label", in: "localhost", want: "localhost"},
	{name: "underscore first", in: "_video-bagarre.com", want: "_video-bagarre.com"},
	{name: "underscore inside", in: "bsb_usa.tripod.com", want: "bsb_usa.tripod.com"},
	{name: "hyphens where IDNA 2008 forbids them", in: "r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com", want: "r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com"},
	{name: "leading hyphen", in: "-w-i-s-.com", want: "-w-i-s-.com"},
	{name: "numeric labels", in: "123.456.com", want: "123.456.com"},
	{name: "IDN", in: "bücher.de", want: "xn--bcher-kva.de"},
	{name: "IDN uppercase", in: "BÜCHER.DE.", want: "xn--bcher-kva.de"},
	{name: "IDN sharp s nontransitional", in: "straße.de", want: "xn--strae-oqa.de"},
	{name: "IDN ideographic full stop", in: "日本\u3002jp", want: "xn--wgv71a.jp"},
	{name: "IDN fullwidth ASCII", in: "ＥＸＡＭＰＬＥ.com", want: "example.com"},
	{name: "A-label uppercase", in: "XN--BCHER-KVA.DE", want: "xn--bcher-kva.de"},
	{name: "A-label kept opaque", in: "xn--zz.com", want: "xn--zz.com"},
	{name: "63-byte label", in: strings.Repeat("a", 63) + ".fr", want: strings.Repeat("a", 63) + ".fr"},
	{name: "253-byte name with dot", in: name253 + ".", want: name253},
	{name: "IPv4", in: "192.0.2.1", want: "192.0.2.1"},
	{name: "IPv4 trailing dot", in: "192.0.2.1.", want: "192.0.2.1"},
	{name: "IPv6 bracketed", in: "[::1]", want: "::1"},
	{name: "IPv6 bare", in: "::1", want: "::1"},
	{name: "IPv6 canonicalised", in: "[2001:DB8:0:0::0:1]", want: "2001:db8::1"},
	{name: "IPv4-mapped IPv6", in: "::FFFF:192.0.2.1", want: "::ffff:192.0.2.1"},

	{name: "empty", in: "", reason: "empty name"},
	{name: "root", in: ".", reason: "empty name"},
	{name: "two trailing dots", in: "a.com..", reason: "empty label"},
	{name: "leading dot", in: ".a.com", reason: "empty label"},
	{name: "double dot", in: "a..b", reason: "empty label"},
	{name: "64-byte label", in: strings.Repeat("a", 64) + ".fr", reason: "label too long (64 bytes)"},
	{name: "254-byte name", in: "a" + name253, reason: "name too long (254 bytes)"},
	{name: "space", in: "a b.com", reason: "invalid character ' '"},
	{name: "tab", in: "a.com\t", reason: `invalid character '\t'`},
	{name: "bang", in: "a!.com", reason: "invalid character '!'"},
	{name: "star", in: "*.a.com", reason: "invalid character '*'"},
	{name: "port", in: "a.com:80", reason: "invalid character ':'"},
	{name: "slash", in: "a.com/x", reason: "invalid character '/'"},
	{name: "IPv6 zone", in: "fe80::1%eth0", reason: "invalid character '%'"},
	{name: "bracketed IPv4", in: "[192.0.2.1]", reason: "brackets around a non-IPv6 name"},
	{name: "unbalanced bracket", in: "[::1", reason: "unbalanced '['"},
	{name: "bad IPv6", in: "[::g]", reason: "invalid IPv6 address"},
	{name: "IPv4 leading zero", in: "010.0.0.1", reason: "invalid IPv4 address"},
	{name: "IPv4 short", in: "10.1", reason: "invalid IPv4 address"},
	{name: "IPv4 as integer", in: "2130706433", reason: "invalid IPv4 address"},
	{name: "numeric TLD", in: "example.123", reason: "invalid IPv4 address"},
	{name: "ideographic space", in: "ü\u3000.de", reason: "invalid character ' '"},
	{name: "fullwidth colon", in: "ü\uff1a80", reason: "invalid character ':'"},
	{name: "invalid UTF-8", in: "\xff.com", reason: "invalid UTF-8"},
}

// name253 is 253 bytes long: the longest name DNS can carry.
var name253 = strings.Repeat(strings.Repeat("a", 62)+".", 3) + strings.Repeat("a", 61) + ".fr"

func TestHost(t *testing.T) {
	for _, tt := range hostTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Host(tt.in)
			if tt.reason != "" {
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Host(%q) = %q, %v; want an *Error wrapping ErrInvalid", tt.in, got, err)
				}
				if e.Reason != tt.reason {
					t.Errorf("Host(%q) reason = %q, want %q", tt.in, e.Reason, tt.reason)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Host(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := Host(got); again != got || err != nil {
				t.Errorf("Host(%q) = %q, %v; not a fixed point", got, again, err)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Host("a..b")
	if got, want := err.Error(), `normalize: invalid host "a..b": empty label`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = Host(strings.Repeat("a", 300) + " ")
	if got := err.Error(); !strings.HasSuffix(got, `aaa"...: invalid character ' '`) || len(got) > 140 {
		t.Errorf("long input not shortened: %q", got)
	}
}

// The DNS filter calls Host once per query: the usual case must not allocate.
func TestHostAllocs(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
	}{
		{"www.example.com", 0},
		{"www.example.com.", 0},
		{"_dmarc.example.com", 0},
		{"192.0.2.1", 0},
		{"WWW.Example.com.", 1},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() {
				if _, err := Host(tt.in); err != nil {
					t.Fatal(err)
				}
			})
			if got != tt.want {
				t.Errorf("Host(%q) allocates %v times, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func BenchmarkHost(b *testing.B) {
	for _, in := range []string{
		"www.example.com",
		"WWW.Example.COM.",
		"bücher.de",
		"[2001:db8::1]",
	} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Host(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzHost checks that Host never panics, that every error wraps ErrInvalid
// and that its output is canonical: a fixed point of Host, lowercase ASCII
// within the DNS limits.
func FuzzHost(f *testing.F) {
	for _, tt := range hostTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Host(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Host(%q): error %v does not wrap ErrInvalid", in, err)
			}
			return
		}
		again, err := Host(out)
		if err != nil || again != out {
			t.Fatalf("Host(%q) = %q, but Host(%q) = %q, %v", in, out, out, again, err)
		}
		if len(out) > maxName {
			t.Fatalf("Host(%q) = %q: longer than %d bytes", in, out, maxName)
		}
		// Host's one-pass shortcut must accept only what the full
		// checks accept.
		if !strings.Contains(out, ":") {
			if c, err := checkName(out, out); err != nil || c != out {
				t.Fatalf("Host(%q) = %q, but checkName refuses it: %v", in, out, err)
			}
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c >= 0x80 || 'A' <= c && c <= 'Z' || c <= ' ' {
				t.Fatalf("Host(%q) = %q: byte %q not canonical", in, out, c)
			}
		}
		Suffixes(out, func(s string) bool {
			if !strings.HasSuffix(out, s) || s == "" {
				t.Fatalf("Suffixes(%q) gave %q", out, s)
			}
			return true
		})
	})
}
