package rules

import "testing"

func TestStripPort(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"exemple.fr", "exemple.fr"},
		{"exemple.fr:443", "exemple.fr"},
		{"203.0.113.7:8080", "203.0.113.7"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"2001:db8::1", "2001:db8::1"}, // a bare IPv6 address has no port
		{"[2001:db8::1", "[2001:db8::1"},
		{"", ""},
	} {
		if got := StripPort(c.in); got != c.want {
			t.Errorf("StripPort(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
