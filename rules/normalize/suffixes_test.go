package normalize

import (
	"slices"
	"testing"
)

func TestSuffixes(t *testing.T) {
	tests := []struct {
		name, host string
		stopAfter  int // 0: never stop
		want       []string
	}{
		{name: "deep", host: "a.b.example.fr", want: []string{"a.b.example.fr", "b.example.fr", "example.fr", "fr"}},
		{name: "stop early", host: "a.b.example.fr", stopAfter: 2, want: []string{"a.b.example.fr", "b.example.fr"}},
		{name: "single label", host: "localhost", want: []string{"localhost"}},
		{name: "IPv4 whole", host: "192.0.2.1", want: []string{"192.0.2.1"}},
		{name: "IPv6 whole", host: "2001:db8::1", want: []string{"2001:db8::1"}},
		{name: "host with port whole", host: "a.com:8080", want: []string{"a.com:8080"}},
		{name: "numeric labels not IPv4", host: "1.2.example.com", want: []string{"1.2.example.com", "2.example.com", "example.com", "com"}},
		{name: "empty", host: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			Suffixes(tt.host, func(s string) bool {
				got = append(got, s)
				return len(got) != tt.stopAfter
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("Suffixes(%q) = %q, want %q", tt.host, got, tt.want)
			}
		})
	}
}

func TestSuffixesAllocs(t *testing.T) {
	n := 0
	got := testing.AllocsPerRun(100, func() {
		Suffixes("a.b.example.fr", func(string) bool { n++; return true })
	})
	if got != 0 {
		t.Errorf("Suffixes allocates %v times, want 0", got)
	}
}

func BenchmarkSuffixes(b *testing.B) {
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		Suffixes("a.b.example.fr", func(string) bool { n++; return true })
	}
}
