package edge

import (
	"strings"
	"testing"
)

func TestFirewallRules(t *testing.T) {
	cases := []struct {
		name             string
		cfg              Config
		dns, http, https uint16
		err              string
	}{
		{"defaults", Config{}, DefaultFirewallDNSPort, DefaultFirewallHTTPPort, DefaultFirewallHTTPSPort, ""},
		{"follow the listeners", Config{DNS: DNSConfig{Listen: "127.0.0.1:5353"}, HTTP: HTTPConfig{TransparentHTTP: ":8080", TransparentHTTPS: "[::]:8443"}},
			5353, 8080, 8443, ""},
		{"explicit and equal", Config{HTTP: HTTPConfig{TransparentHTTP: ":8080"}, Firewall: FirewallConfig{HTTPPort: 8080}},
			DefaultFirewallDNSPort, 8080, DefaultFirewallHTTPSPort, ""},
		{"explicit and different", Config{HTTP: HTTPConfig{TransparentHTTP: ":8080"}, Firewall: FirewallConfig{HTTPPort: 3129}},
			0, 0, 0, `firewall.http_port 3129 differs from the port of http.transparent_http ":8080"`},
		{"listener without port", Config{DNS: DNSConfig{Listen: "127.0.0.1"}}, 0, 0, 0, `dns.listen "127.0.0.1" has no port`},
		{"masquerade without wan", Config{Firewall: FirewallConfig{Masquerade: true}}, 0, 0, 0, "needs wan_interface"},
		{"explicit without port", Config{HTTP: HTTPConfig{Explicit: "10.20.0.1"}}, 0, 0, 0, `http.explicit "10.20.0.1" has no port`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.FirewallRules()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DNSPort != tc.dns || got.HTTPPort != tc.http || got.HTTPSPort != tc.https {
				t.Fatalf("ports %d %d %d, want %d %d %d", got.DNSPort, got.HTTPPort, got.HTTPSPort, tc.dns, tc.http, tc.https)
			}
		})
	}
}

// TestFirewallOpensListeners: the explicit proxy and a reachable metrics
// listener reach the firewall's configuration with their own ports; a
// loopback metrics listener opens nothing.
func TestFirewallOpensListeners(t *testing.T) {
	for _, tc := range []struct {
		explicit, metrics string
		wantExplicit      uint16
		wantMetrics       uint16
	}{
		{":3128", "10.20.0.1:9153", 3128, 9153},
		{"", "127.0.0.1:9153", 0, 0},
		{"[::]:8000", "[::1]:9153", 8000, 0},
		{"", "localhost:9153", 0, 0},
		{"", "[2001:db8::1]:9200", 0, 9200},
	} {
		got, err := Config{HTTP: HTTPConfig{Explicit: tc.explicit}, Metrics: MetricsConfig{Listen: tc.metrics}}.FirewallRules()
		if err != nil {
			t.Fatal(err)
		}
		if got.ExplicitPort != tc.wantExplicit || got.MetricsPort != tc.wantMetrics {
			t.Errorf("explicit %q metrics %q: ports %d %d, want %d %d", tc.explicit, tc.metrics, got.ExplicitPort, got.MetricsPort, tc.wantExplicit, tc.wantMetrics)
		}
	}
}
