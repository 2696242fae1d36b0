package dns

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/proxy/generation"
)

func TestConfigValidation(t *testing.T) {
	gen := &generation.Current{}
	base := func() Config {
		return Config{UAI: "0671234X", Listen: "127.0.0.1:0", Upstreams: []string{"198.51.100.53"}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		err    string
	}{
		{"defaults are valid", func(*Config) {}, ""},
		{"uai required", func(c *Config) { c.UAI = "" }, "uai is required"},
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, "listen"},
		{"listen on a name", func(c *Config) { c.Listen = "localhost:53" }, "must be an IP address"},
		{"upstream name", func(c *Config) { c.Upstreams = []string{"dns.example:53"} }, "upstreams[0]"},
		{"upstream port 0", func(c *Config) { c.Upstreams = []string{"198.51.100.1:0"} }, "port 0"},
		{"bare IPv6 upstream", func(c *Config) { c.Upstreams = []string{"2001:db8::53"} }, ""},
		{"max_ttl below min_ttl", func(c *Config) { c.Cache.MinTTL, c.Cache.MaxTTL = time.Hour, time.Minute }, "max_ttl"},
		{"negative TTL", func(c *Config) { c.Cache.NegativeTTL = -time.Second }, "must not be negative"},
		{"block_ttl too long", func(c *Config) { c.BlockTTL = 48 * time.Hour }, "block_ttl"},
		{"IPv6 block page given as IPv4", func(c *Config) { c.BlockPageIPv4 = mustAddr("fd00::1") }, "blockpage_ipv4"},
		{"IPv4 block page given as IPv6", func(c *Config) { c.BlockPageIPv6 = mustAddr("198.51.100.1") }, "blockpage_ipv6"},
		{"unknown SafeSearch engine", func(c *Config) { c.SafeSearchTargets = map[string]string{"altavista": "x.example"} }, "unknown engine"},
		{"SafeSearch target not a host", func(c *Config) { c.SafeSearchTargets = map[string]string{"qwant": "bad host"} }, "not a host name"},
		{"too many sockets", func(c *Config) { c.UDPSockets = 1000 }, "udp_sockets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			_, err := New(c, Deps{Gen: gen})
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.err)
			}
		})
	}
	if _, err := New(base(), Deps{}); err == nil {
		t.Error("no generation accepted")
	}
}

func TestResolvConfUpstreams(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	os.WriteFile(path, []byte("# comment\nsearch ac-demo.fr\nnameserver 127.0.0.1\nnameserver 198.51.100.53\nnameserver fe80::1%eth0\nnameserver bogus\noptions edns0\n"), 0o644)
	for _, tc := range []struct {
		listen string
		want   string
	}{
		{":53", "198.51.100.53:53,[fe80::1]:53"},                         // ourselves on loopback: left out
		{"127.0.0.1:5353", "127.0.0.1:53,198.51.100.53:53,[fe80::1]:53"}, // another port: a local resolver is fine
		{"198.51.100.53:53", "127.0.0.1:53,[fe80::1]:53"},
	} {
		got, err := resolvConfUpstreams(path, tc.listen)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("listen %s: %v, want %s", tc.listen, got, tc.want)
		}
	}
	c := Config{UAI: "x", Listen: "127.0.0.1:0", ResolvConf: filepath.Join(dir, "none")}
	if _, err := New(c, Deps{Gen: &generation.Current{}}); err == nil || !strings.Contains(err.Error(), "no upstreams") {
		t.Errorf("missing resolv.conf: %v", err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
