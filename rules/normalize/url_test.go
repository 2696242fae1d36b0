package normalize

import (
	"errors"
	"strings"
	"testing"
)

var urlTests = []struct {
	name, in, host, rest string
	reason               string // when non-empty, URL must fail with this Error.Reason
}{
	{name: "list line", in: "example.com/path/x", host: "example.com", rest: "/path/x"},
	{name: "list line host only", in: "example.com", host: "example.com", rest: "/"},
	{name: "request URL", in: "http://User@Example.COM:80/a/./b/../c?q=1#frag", host: "example.com", rest: "/a/c?q=1"},
	{name: "any scheme", in: "FTP://a.com/X", host: "a.com", rest: "/x"},
	{name: "scheme-relative", in: "//a.com/x", host: "a.com", rest: "/x"},
	{name: "www kept", in: "http://www.a.com/", host: "www.a.com", rest: "/"},
	{name: "query without path", in: "example.com?X=1", host: "example.com", rest: "/?x=1"},
	{name: "https default port", in: "https://example.com:443", host: "example.com", rest: "/"},
	{name: "other port kept", in: "https://example.com:8443/x", host: "example.com:8443", rest: "/x"},
	{name: "port leading zeros", in: "a.com:08080/", host: "a.com:8080", rest: "/"},
	{name: "empty port", in: "a.com:/x", host: "a.com", rest: "/x"},
	{name: "IPv6 with port", in: "http://[::1]:8080/", host: "[::1]:8080", rest: "/"},
	{name: "IPv6 default port", in: "http://[::1]:80/", host: "::1", rest: "/"},
	{name: "IPv6 bare in list", in: "2001:DB8::1/path", host: "2001:db8::1", rest: "/path"},
	{name: "IPv4", in: "216.239.35.119/[st_rn=if]/topics_if.xp", host: "216.239.35.119", rest: "/[st_rn=if]/topics_if.xp"},
	{name: "IDN host", in: "http://Bücher.de/Ä", host: "xn--bcher-kva.de", rest: "/%c3%84"},
	{name: "userinfo with colon", in: "http://u:p@a.com/", host: "a.com", rest: "/"},
	{name: "at sign in path", in: "a.com/@x", host: "a.com", rest: "/@x"},
	{name: "backslash ends authority", in: `http://evil.com\@good.com/`, host: "evil.com", rest: "/@good.com/"},
	{name: "unreserved escape decoded", in: "a.com/%7e/%7E/%41%2d", host: "a.com", rest: "/~/~/a-"},
	{name: "reserved escape kept", in: "a.com/a%2Fb?x=%3D", host: "a.com", rest: "/a%2fb?x=%3d"},
	{name: "stray percent", in: "a.com/100%", host: "a.com", rest: "/100%25"},
	{name: "stray percent before escape", in: "a.com/%4%31", host: "a.com", rest: "/%2541"},
	{name: "raw UTF-8 escaped", in: "a.com/café", host: "a.com", rest: "/caf%c3%a9"},
	{name: "dot segments", in: "a.com/a/b/../../../c", host: "a.com", rest: "/c"},
	{name: "escaped dot segments", in: "a.com/a/%2E%2e/b", host: "a.com", rest: "/b"},
	{name: "trailing dot segment", in: "a.com/a/./b/.", host: "a.com", rest: "/a/b/"},
	{name: "dot-dot at root", in: "a.com/..", host: "a.com", rest: "/"},
	{name: "not dot segments", in: "a.com/.../..a/a..", host: "a.com", rest: "/.../..a/a.."},
	{name: "query dots kept", in: "a.com/p?x=../y/./z", host: "a.com", rest: "/p?x=../y/./z"},
	{name: "fragment only path", in: "danskporn.dk/#p2", host: "danskporn.dk", rest: "/"},
	{name: "URL in query", in: "http://a.com/r?u=http://b.com/", host: "a.com", rest: "/r?u=http://b.com/"},
	{name: "double slash kept", in: "a.com//x", host: "a.com", rest: "//x"},
	{name: "underscore host", in: "bsb_usa.tripod.com/x", host: "bsb_usa.tripod.com", rest: "/x"},

	{name: "space", in: "a.com/a b", reason: "invalid character ' '"},
	{name: "NUL", in: "a.com/\x00", reason: `invalid character '\x00'`},
	{name: "DEL", in: "a.com/\x7f", reason: `invalid character '\x7f'`},
	{name: "empty", in: "", reason: "host: empty name"},
	{name: "no host", in: "http:///x", reason: "host: empty name"},
	{name: "bad host", in: "http://a..com/", reason: "host: empty label"},
	{name: "port zero", in: "a.com:0/", reason: "port out of range"},
	{name: "port too big", in: "a.com:65536/", reason: "port out of range"},
	{name: "port not numeric", in: "a.com:http/", reason: "invalid port"},
	{name: "text after bracket", in: "[::1]x/", reason: "unexpected text after ']'"},
	{name: "unbalanced bracket", in: "[::1/", reason: "host: unbalanced '['"},
}

func TestURL(t *testing.T) {
	for _, tt := range urlTests {
		t.Run(tt.name, func(t *testing.T) {
			host, rest, err := URL(tt.in)
			if tt.reason != "" {
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("URL(%q) = %q, %q, %v; want an *Error wrapping ErrInvalid", tt.in, host, rest, err)
				}
				if e.Reason != tt.reason {
					t.Errorf("URL(%q) reason = %q, want %q", tt.in, e.Reason, tt.reason)
				}
				return
			}
			if err != nil || host != tt.host || rest != tt.rest {
				t.Fatalf("URL(%q) = %q, %q, %v; want %q, %q", tt.in, host, rest, err, tt.host, tt.rest)
			}
			if h, r, err := URL(host + rest); h != host || r != rest || err != nil {
				t.Errorf("URL(%q) = %q, %q, %v; not a fixed point", host+rest, h, r, err)
			}
		})
	}
}

// List loading runs URL on every line of every urls file; lines that are
// already canonical should cost nothing.
func TestURLAllocs(t *testing.T) {
	got := testing.AllocsPerRun(100, func() {
		if _, _, err := URL("example.com/path/x?y=1"); err != nil {
			t.Fatal(err)
		}
	})
	if got != 0 {
		t.Errorf("canonical URL allocates %v times, want 0", got)
	}
}

func BenchmarkURL(b *testing.B) {
	for _, in := range []string{
		"example.com/path/x",
		"http://User@Example.COM:80/a/./b/../c?q=1#frag",
	} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := URL(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzURL checks that URL never panics, that every error wraps ErrInvalid and
// that its output is canonical: rest starts with '/', holds no uppercase, and
// host+rest is a fixed point of URL.
func FuzzURL(f *testing.F) {
	for _, tt := range urlTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		host, rest, err := URL(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("URL(%q): error %v does not wrap ErrInvalid", in, err)
			}
			return
		}
		if !strings.HasPrefix(rest, "/") {
			t.Fatalf("URL(%q): rest %q does not start with '/'", in, rest)
		}
		if strings.ToLower(rest) != rest || strings.ToLower(host) != host {
			t.Fatalf("URL(%q) = %q, %q: not lowercase", in, host, rest)
		}
		h, r, err := URL(host + rest)
		if err != nil || h != host || r != rest {
			t.Fatalf("URL(%q) = %q, %q, but URL(%q) = %q, %q, %v", in, host, rest, host+rest, h, r, err)
		}
	})
}
