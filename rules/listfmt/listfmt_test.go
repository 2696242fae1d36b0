package listfmt

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// collect parses text with parse and returns the entries and the report.
func collect(t *testing.T, parse func(io.Reader, func(Entry)) (Report, error), text string) ([]Entry, Report) {
	t.Helper()
	var got []Entry
	rep, err := parse(strings.NewReader(text), func(e Entry) { got = append(got, e) })
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if rep.Accepted != len(got) {
		t.Errorf("Report.Accepted = %d, but %d entries emitted", rep.Accepted, len(got))
	}
	if rep.Rejected < len(rep.Problems) {
		t.Errorf("Report.Rejected = %d < %d problems", rep.Rejected, len(rep.Problems))
	}
	return got, rep
}

func problemStrings(rep Report) []string {
	var s []string
	for _, p := range rep.Problems {
		s = append(s, p.Error())
	}
	return s
}

// d builds a Domain entry.
func d(value string, line int) Entry { return Entry{Kind: Domain, Value: value, Line: line} }

func allow(e Entry) Entry { e.Allow = true; return e }

func TestParseDomains(t *testing.T) {
	tests := []struct {
		name     string
		format   Format
		text     string
		want     []Entry
		problems []string
	}{
		{
			name:   "plain",
			format: FormatPlain,
			text: "\xef\xbb\xbf# comment\r\n" +
				"Example.COM\r\n" +
				"\r\n" +
				".afshin.ir\n" +
				"bücher.de # inline comment\n" +
				"a..b\n" +
				"a.com b.com\n" +
				"*.wild.com\n" +
				"  _video-bagarre.com\t\n" +
				"192.0.2.1\n" +
				"a.com##.ad\n" +
				"last.fr",
			want: []Entry{
				d("example.com", 2), d("afshin.ir", 4), d("xn--bcher-kva.de", 5),
				d("_video-bagarre.com", 9), d("192.0.2.1", 10), d("last.fr", 12),
			},
			problems: []string{
				`t.txt:6: invalid domain "a..b": empty label`,
				`t.txt:7: unexpected text after the domain (hosts format?)`,
				`t.txt:8: wildcards are not supported ("*.wild.com")`,
				`t.txt:11: invalid domain "a.com##.ad": invalid character '#'`,
			},
		},
		{
			name:   "hosts",
			format: FormatHosts,
			text: "# hosts\n" +
				"127.0.0.1 localhost\n" +
				"::1 localhost ip6-localhost ip6-loopback\n" +
				"0.0.0.0 0.0.0.0\n" +
				"0.0.0.0 ads.example.com # tracker\n" +
				"127.0.0.1\ta.com  B.com\n" +
				":: v6.example.com\n" +
				"0.0.0.0\n" +
				"example.org\n" +
				"192.168.1.1 router.lan#no space\n" +
				"0.0.0.0 bad..name good.name\n",
			want: []Entry{
				d("ads.example.com", 5), d("a.com", 6), d("b.com", 6),
				d("v6.example.com", 7), d("router.lan", 10), d("good.name", 11),
			},
			problems: []string{
				`t.txt:8: hosts line without a name`,
				`t.txt:9: hosts line does not start with an IP address`,
				`t.txt:11: invalid domain "bad..name": empty label`,
			},
		},
		{
			name:   "adblock",
			format: FormatAdBlock,
			text: "[Adblock Plus 2.0]\n" +
				"! Title: test\n" +
				"||ads.example.com^\n" +
				"||Tracker.example.net^$important\n" +
				"@@||good.example.com^\n" +
				"||both.example.com^|\n" +
				"||*.example.com^\n" +
				"||third.example.com^$third-party\n" +
				"||dns.example.com^$important,dnstype=AAAA\n" +
				"example.org\n" +
				"example.com##.banner\n" +
				"##.ad\n" +
				"## comment\n" +
				"/banner[0-9]+/\n" +
				"||path.example.com/ads^\n" +
				"||noanchor.example.com\n" +
				"|http://addr.example.com\n" +
				"@@||allowed.example.com^$important\n" +
				"||^\n" +
				"# AdGuard comment\n",
			want: []Entry{
				d("ads.example.com", 3), d("tracker.example.net", 4), allow(d("good.example.com", 5)),
				d("both.example.com", 6), d("example.org", 10), allow(d("allowed.example.com", 18)),
			},
			problems: []string{
				`t.txt:7: wildcards are not supported ("*.example.com")`,
				`t.txt:8: unsupported modifier "third-party"`,
				`t.txt:9: unsupported modifier "dnstype"`,
				`t.txt:11: cosmetic rule, not applicable to DNS`,
				`t.txt:12: cosmetic rule, not applicable to DNS`,
				`t.txt:14: regular expression rules are not supported`,
				`t.txt:15: rule with a path, not applicable to DNS`,
				`t.txt:16: rule without '^' after the domain matches more than a domain`,
				`t.txt:17: address rules ('|') are not supported`,
				`t.txt:19: rule without a domain`,
			},
		},
		{
			name:   "auto",
			format: FormatAuto,
			text: "# comment\n" +
				"! adblock comment\n" +
				"[Adblock Plus 2.0]\n" +
				"plain.example.com\n" +
				"0.0.0.0 hosts.example.com other.example.com # x\n" +
				"||adblock.example.com^\n" +
				"@@||allow.example.com^\n" +
				"site.com##.ad\n" +
				"two words\n" +
				".dotted.example.com\n" +
				"##.ad\n",
			want: []Entry{
				d("plain.example.com", 4), d("hosts.example.com", 5), d("other.example.com", 5),
				d("adblock.example.com", 6), allow(d("allow.example.com", 7)), d("dotted.example.com", 10),
			},
			problems: []string{
				`t.txt:8: cosmetic rule, not applicable to DNS`,
				`t.txt:9: unexpected text after the domain (hosts format?)`,
			},
		},
		{
			name:   "empty",
			format: FormatAuto,
			text:   "",
		},
		{
			name:   "only BOM",
			format: FormatPlain,
			text:   "\xef\xbb\xbf",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rep := collect(t, func(r io.Reader, emit func(Entry)) (Report, error) {
				return ParseDomains(r, "t.txt", tt.format, emit)
			}, tt.text)
			if !slices.Equal(got, tt.want) {
				t.Errorf("entries:\n got %+v\nwant %+v", got, tt.want)
			}
			if ps := problemStrings(rep); !slices.Equal(ps, tt.problems) {
				t.Errorf("problems:\n got %q\nwant %q", ps, tt.problems)
			}
			if rep.Rejected != len(tt.problems) {
				t.Errorf("Rejected = %d, want %d", rep.Rejected, len(tt.problems))
			}
		})
	}
}

func TestParseDomainsLongLines(t *testing.T) {
	long := strings.Repeat("a", MaxLineLen+10)
	tests := []struct {
		name, text string
		want       []Entry
		problems   []string
	}{
		{
			name:     "in the middle",
			text:     "a.com\n" + long + "\nb.com\n",
			want:     []Entry{d("a.com", 1), d("b.com", 3)},
			problems: []string{"t.txt:2: line too long (over 65536 bytes)"},
		},
		{
			name:     "last, without newline",
			text:     "a.com\n" + long,
			want:     []Entry{d("a.com", 1)},
			problems: []string{"t.txt:2: line too long (over 65536 bytes)"},
		},
		{
			name:     "just fits",
			text:     strings.Repeat("a", MaxLineLen) + "\r\nb.com",
			want:     []Entry{d("b.com", 2)},
			problems: []string{`t.txt:1: invalid domain "` + strings.Repeat("a", 80) + `"...: name too long (65536 bytes)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rep := collect(t, func(r io.Reader, emit func(Entry)) (Report, error) {
				return ParseDomains(r, "t.txt", FormatPlain, emit)
			}, tt.text)
			if !slices.Equal(got, tt.want) {
				t.Errorf("entries:\n got %+v\nwant %+v", got, tt.want)
			}
			if ps := problemStrings(rep); !slices.Equal(ps, tt.problems) {
				t.Errorf("problems:\n got %q\nwant %q", ps, tt.problems)
			}
		})
	}
}

func TestMaxProblems(t *testing.T) {
	text := strings.Repeat("bad..name\n", 250) + "good.name\n"
	got, rep := collect(t, func(r io.Reader, emit func(Entry)) (Report, error) {
		return ParseDomains(r, "t.txt", FormatPlain, emit)
	}, text)
	if len(got) != 1 || rep.Rejected != 250 || len(rep.Problems) != MaxProblems {
		t.Errorf("got %d entries, Rejected %d, %d problems; want 1, 250, %d", len(got), rep.Rejected, len(rep.Problems), MaxProblems)
	}
	if last := rep.Problems[MaxProblems-1]; last.Line != MaxProblems {
		t.Errorf("last kept problem at line %d, want %d", last.Line, MaxProblems)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a.com\nb.com\n"), iotest.ErrReader(boom))
	var got []Entry
	rep, err := ParseDomains(r, "t.txt", FormatPlain, func(e Entry) { got = append(got, e) })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "t.txt") {
		t.Fatalf("err = %v, want one wrapping %v and naming the file", err, boom)
	}
	if len(got) != 2 || rep.Accepted != 2 {
		t.Errorf("entries before the error: got %d (Accepted %d), want 2", len(got), rep.Accepted)
	}
	if _, err := ParseDomains(strings.NewReader(""), "t.txt", Format(9), func(Entry) {}); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestProblemError(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{
		{Problem{File: "ut1/adult/urls", Line: 12, Reason: "bad"}, "ut1/adult/urls:12: bad"},
		{Problem{File: "ut1/porn", Reason: "not an alias"}, "ut1/porn: not an alias"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatNames(t *testing.T) {
	for f := FormatAuto; f <= FormatAdBlock; f++ {
		t.Run(f.String(), func(t *testing.T) {
			got, err := ParseFormat(f.String())
			if err != nil || got != f {
				t.Errorf("ParseFormat(%q) = %v, %v", f.String(), got, err)
			}
		})
	}
	if _, err := ParseFormat("hosts.txt"); err == nil {
		t.Error("ParseFormat accepted a bad name")
	}
	if s := Format(7).String(); s != "Format(7)" {
		t.Errorf("Format(7).String() = %q", s)
	}
	if s := URL.String(); s != "url" {
		t.Errorf("URL.String() = %q", s)
	}
}

func TestParseURLs(t *testing.T) {
	text := "# comment\n" +
		"Example.com/Path\n" +
		"http://www.a.com:8080/x?Y=1#frag\n" +
		"danskporn.dk/#p2\n" +
		"a.com/a b\n" +
		"216.239.35.119/[st_rn=if]/topics_if.xp\n" +
		"edit.webring.org/cgi-bin/membercgi?ring=cannabis;list\n" +
		"a.com/x/../y\n" +
		"bad..host/x\n"
	want := []Entry{
		{Kind: URL, Value: "example.com/path", Line: 2},
		{Kind: URL, Value: "www.a.com:8080/x?y=1", Line: 3},
		{Kind: URL, Value: "danskporn.dk/", Line: 4},
		{Kind: URL, Value: "216.239.35.119/[st_rn=if]/topics_if.xp", Line: 6},
		{Kind: URL, Value: "edit.webring.org/cgi-bin/membercgi?ring=cannabis;list", Line: 7},
		{Kind: URL, Value: "a.com/y", Line: 8},
	}
	problems := []string{
		`urls:5: invalid URL "a.com/a b": invalid character ' '`,
		`urls:9: invalid URL "bad..host/x": host: empty label`,
	}
	got, rep := collect(t, func(r io.Reader, emit func(Entry)) (Report, error) {
		return ParseURLs(r, "urls", emit)
	}, text)
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", got, want)
	}
	if ps := problemStrings(rep); !slices.Equal(ps, problems) {
		t.Errorf("problems:\n got %q\nwant %q", ps, problems)
	}
}

func TestParseExpressions(t *testing.T) {
	text := "(banner|sponsor)\n" +
		"# comment\n" +
		"(a)\\1\n" +
		"[unclosed\n" +
		"  (^|[-\\?+=/_])(adult|porn)s?([-\\.\\?+=/_]|$)  \r\n"
	want := []Entry{
		{Kind: Expression, Value: "(banner|sponsor)", Line: 1},
		{Kind: Expression, Value: `(^|[-\?+=/_])(adult|porn)s?([-\.\?+=/_]|$)`, Line: 5},
	}
	problems := []string{
		"expressions:3: invalid regular expression: invalid escape sequence: `\\1`",
		"expressions:4: invalid regular expression: missing closing ]: `[unclosed`",
	}
	got, rep := collect(t, func(r io.Reader, emit func(Entry)) (Report, error) {
		return ParseExpressions(r, "expressions", emit)
	}, text)
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", got, want)
	}
	if ps := problemStrings(rep); !slices.Equal(ps, problems) {
		t.Errorf("problems:\n got %q\nwant %q", ps, problems)
	}
}

// The adult list upstream has 4.6 million lines: a canonical line must cost
// one allocation, its Value, and a comment none.
func TestParseDomainsAllocs(t *testing.T) {
	var b strings.Builder
	const lines = 10000
	for i := range lines {
		b.WriteString("# comment\n")
		b.WriteString("host-")
		b.WriteString(strings.Repeat("x", i%20))
		b.WriteString(".example.com\n")
	}
	text := b.String()
	for _, f := range []Format{FormatPlain, FormatAuto} {
		t.Run(f.String(), func(t *testing.T) {
			allocs := testing.AllocsPerRun(5, func() {
				if _, err := ParseDomains(strings.NewReader(text), "t", f, func(Entry) {}); err != nil {
					t.Fatal(err)
				}
			})
			if perLine := allocs / lines; perLine > 1.01 {
				t.Errorf("%.3f allocations per entry, want 1", perLine)
			}
		})
	}
}
