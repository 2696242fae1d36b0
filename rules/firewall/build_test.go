package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"vigie/rules/policy"
)

func school(zones ...policy.Zone) policy.School {
	return policy.School{UAI: "0670001A", Name: "Test", Zones: zones}
}

var (
	ped = policy.Zone{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24"}, Profile: "eleves"}
	adm = policy.Zone{Name: "administratif", CIDRs: []string{"10.20.0.0/24"}, Profile: "personnels"}
)

// TestBuildRefuses: every bad input is refused with a message naming the
// field, and never half-built.
func TestBuildRefuses(t *testing.T) {
	cases := []struct {
		name string
		src  Source
		cfg  *Config
		want []string
	}{
		{"unknown zone in flow", Source{School: school(ped, adm), Firewall: policy.Firewall{
			Flows: []policy.Flow{{From: "pedagogique", To: "serveurs"}}}},
			nil, []string{`firewall.flows[0].to: unknown zone "serveurs" (zones of 0670001A: pedagogique, administratif)`}},
		{"unknown source zone", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "wifi"}}}},
			nil, []string{`firewall.internet[0].from: unknown zone "wifi"`}},
		{"missing to", Source{School: school(ped, adm), Firewall: policy.Firewall{
			Flows: []policy.Flow{{From: "pedagogique"}}}},
			nil, []string{`firewall.flows[0].to: required`}},
		{"to in management", Source{School: school(adm), Firewall: policy.Firewall{
			Management: []policy.Flow{{From: "administratif", To: "pedagogique"}}}},
			nil, []string{`firewall.management[0].to: must be empty`}},
		{"internet source outside management", Source{School: school(ped), Firewall: policy.Firewall{
			Flows: []policy.Flow{{From: "internet", To: "pedagogique"}}}},
			nil, []string{`firewall.flows[0].from: unknown zone "internet"`}},
		{"overlapping zones", Source{School: school(ped, policy.Zone{Name: "wifi", CIDRs: []string{"10.10.0.128/25"}})},
			nil, []string{`schools[0670001A].zones[1].cidrs[0]: 10.10.0.128/25 overlaps 10.10.0.0/24 of zone "pedagogique"`}},
		{"host bits", Source{School: school(policy.Zone{Name: "a", CIDRs: []string{"10.0.0.1/24"}})},
			nil, []string{`zones[0].cidrs[0]: "10.0.0.1/24" has host bits set (did you mean 10.0.0.0/24?)`}},
		{"not a prefix", Source{School: school(policy.Zone{Name: "a", CIDRs: []string{"10.0.0.0"}})},
			nil, []string{`zones[0].cidrs[0]: "10.0.0.0" is not a CIDR prefix`}},
		{"whole space", Source{School: school(policy.Zone{Name: "a", CIDRs: []string{"::/0"}})},
			nil, []string{`is the whole address space`}},
		{"mapped", Source{School: school(policy.Zone{Name: "a", CIDRs: []string{"::ffff:10.0.0.0/104"}})},
			nil, []string{`IPv4-mapped`}},
		{"interface too long", Source{School: school(policy.Zone{Name: "a", Interfaces: []string{"interface-trop-long"}})},
			nil, []string{`zones[0].interfaces[0]: "interface-trop-long" is not a valid interface name`}},
		{"interface with quote", Source{School: school(policy.Zone{Name: "a", Interfaces: []string{`et"h0`}})},
			nil, []string{`is not a valid interface name`}},
		{"interface in two zones", Source{School: school(policy.Zone{Name: "a", Interfaces: []string{"eth1"}}, policy.Zone{Name: "b", Interfaces: []string{"eth1"}})},
			nil, []string{`zones[1].interfaces[0]: interface "eth1" already belongs to zone "a"`}},
		{"zone without addresses", Source{School: school(policy.Zone{Name: "a"})},
			nil, []string{`zones[0]: zone "a" needs cidrs or interfaces`}},
		{"bad zone name", Source{School: school(policy.Zone{Name: "Péda gogique", CIDRs: []string{"10.0.0.0/8"}})},
			nil, []string{`zones[0].name: "Péda gogique" is not a valid zone name`}},
		{"duplicate zone", Source{School: school(ped, ped)},
			nil, []string{`zones[1].name: duplicate zone "pedagogique"`}},
		{"port zero", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Proto: "tcp", Ports: []string{"0"}}}}},
			nil, []string{`firewall.internet[0].ports[0]: "0": port 0 is outside 1-65535`}},
		{"port too big", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Proto: "tcp", Ports: []string{"65536"}}}}},
			nil, []string{`port 65536 is outside 1-65535`}},
		{"reversed range", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Proto: "tcp", Ports: []string{"9000-8000"}}}}},
			nil, []string{`firewall.internet[0].ports[0]: "9000-8000": the range ends before it starts`}},
		{"port words", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Proto: "tcp", Ports: []string{"https"}}}}},
			nil, []string{`"https": not a port number`}},
		{"icmp ports", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Proto: "icmp", Ports: []string{"8"}}}}},
			nil, []string{`firewall.internet[0].ports: icmp has no ports`}},
		{"bad proto", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Proto: "sctp"}}}},
			nil, []string{`firewall.internet[0].proto: must be tcp, udp, icmp or any, got "sctp"`}},
		{"old allow-everything line", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Action: "allow"}}}},
			nil, []string{`firewall.internet[0]: opens every port to the internet, and egress is default-deny: write {from: pedagogique, services: [web, dns, ntp]}`}},
		{"every tcp port", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Proto: "tcp"}}}},
			nil, []string{`firewall.internet[0]: opens every TCP port`}},
		{"unknown service", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Services: []string{"web", "vpn"}}}}},
			nil, []string{`firewall.internet[0].services[1]: unknown service "vpn" (web, dns, ntp)`}},
		{"duplicate service", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Services: []string{"web", "web"}}}}},
			nil, []string{`firewall.internet[0].services[1]: duplicate service "web"`}},
		{"services and ports", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Services: []string{"web"}, Proto: "tcp", Ports: []string{"22"}}}}},
			nil, []string{`firewall.internet[0].services: give services or proto and ports, not both`}},
		{"services denied", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Services: []string{"ntp"}, Action: "deny"}}}},
			nil, []string{`firewall.internet[0].action: a services line opens them`}},
		{"services between zones", Source{School: school(ped, adm), Firewall: policy.Firewall{
			Flows: []policy.Flow{{From: "pedagogique", To: "administratif", Services: []string{"web"}}}}},
			nil, []string{`firewall.flows[0].services: services apply to the internet and management sections`}},
		{"metrics to the internet", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Services: []string{"metrics"}}}}},
			nil, []string{`unknown service "metrics" (web, dns, ntp)`}},
		{"management prefix with host bits", Source{School: school(ped), Firewall: policy.Firewall{
			Management: []policy.Flow{{From: "203.0.113.7/24", Services: []string{"metrics"}}}}},
			nil, []string{`firewall.management[0].from: "203.0.113.7/24" has host bits set (did you mean 203.0.113.0/24?)`}},
		{"management from everywhere", Source{School: school(ped), Firewall: policy.Firewall{
			Management: []policy.Flow{{From: "::/0", Proto: "tcp", Ports: []string{"22"}}}}},
			nil, []string{`firewall.management[0].from: "::/0" is every address`}},
		{"management bad prefix", Source{School: school(ped), Firewall: policy.Firewall{
			Management: []policy.Flow{{From: "10.0.0.0/33", Proto: "tcp", Ports: []string{"22"}}}}},
			nil, []string{`firewall.management[0].from: "10.0.0.0/33" is neither a zone`}},
		{"bad action", Source{School: school(ped), Firewall: policy.Firewall{
			Internet: []policy.Flow{{From: "pedagogique", Action: "accept"}}}},
			nil, []string{`firewall.internet[0].action: must be allow or deny, got "accept"`}},
		{"missing ports in config", Source{School: school(ped)},
			&Config{}, []string{`config.dns_port: required`, `config.http_port: required`, `config.https_port: required`}},
		{"masquerade without wan", Source{School: school(ped)},
			&Config{DNSPort: 53, HTTPPort: 1, HTTPSPort: 2, Masquerade: true}, []string{`config.masquerade: needs wan_interface`}},
		{"zone on the wan", Source{School: school(policy.Zone{Name: "a", Interfaces: []string{"wan0"}})},
			&Config{DNSPort: 53, HTTPPort: 1, HTTPSPort: 2, WANInterface: "wan0"}, []string{`zones[0].interfaces[0]: "wan0" is the WAN interface`}},
		{"several problems at once", Source{School: school(ped), Firewall: policy.Firewall{
			Flows:    []policy.Flow{{From: "x", To: "y"}},
			Internet: []policy.Flow{{From: "pedagogique", Proto: "tcp", Ports: []string{"1-"}}}}},
			nil, []string{`firewall.flows[0].from`, `firewall.flows[0].to`, `firewall.internet[0].ports[0]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			rs, err := Build(tc.src, cfg)
			if err == nil {
				t.Fatalf("accepted; ruleset has %d rules", rs.Rules())
			}
			if rs != nil {
				t.Fatal("a refused build returned a ruleset")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not say %q", err, w)
				}
			}
		})
	}
}

// TestBuildSemantics checks the decisions the golden files only show.
func TestBuildSemantics(t *testing.T) {
	srv := policy.Zone{Name: "serveurs", CIDRs: []string{"10.40.0.0/24"}, Profile: "serveurs"}
	t.Run("no internet line means no redirect and no edge service", func(t *testing.T) {
		rs, err := Build(Source{School: school(ped)}, testConfig)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs.Chain("dnat_pedagogique").Rules {
			if text := RuleText(r); strings.Contains(text, "redirect") {
				t.Fatalf("a zone with no internet access is redirected to the edge: %s", text)
			}
		}
		for _, r := range rs.Chain("input_pedagogique").Rules {
			if r.Verdict.Kind == Accept {
				t.Fatalf("a zone with no internet access reaches an edge service: %s", RuleText(r))
			}
		}
	})
	t.Run("services of a filtered zone", func(t *testing.T) {
		rs, err := Build(Source{School: school(ped), Firewall: policy.Firewall{Internet: []policy.Flow{
			{From: "pedagogique", Services: []string{"web", "dns", "ntp"}}}}}, testConfig)
		if err != nil {
			t.Fatal(err)
		}
		text := RenderTable(rs)
		for _, want := range []string{"udp dport 53 redirect to :53", "tcp dport 53 redirect to :53", "tcp dport 80 redirect to :3129",
			"tcp dport 443 redirect to :3130", "tcp dport 3128 accept", "udp dport 123 accept comment \"service ntp\"",
			"udp dport 1194 counter name \"vpn.pedagogique\" drop", "tcp dport 22 counter name \"ssh.pedagogique\" drop"} {
			if !strings.Contains(text, want) {
				t.Errorf("missing %q", want)
			}
		}
		// Web and DNS go through the edge, never straight out.
		for _, r := range rs.Chain("forward_pedagogique").Rules {
			if r.Verdict.Kind != Accept {
				continue
			}
			for _, m := range r.Match {
				if m.Kind == MatchDPort && (m.Ports.Lo == 80 || m.Ports.Lo == 443 || m.Ports.Lo == 53) {
					t.Errorf("filtered zone forwards web or DNS: %s", RuleText(r))
				}
			}
		}
	})
	t.Run("deny before allow keeps port 443 from the proxy", func(t *testing.T) {
		rs, err := Build(Source{School: school(ped), Firewall: policy.Firewall{Internet: []policy.Flow{
			{From: "pedagogique", Proto: "tcp", Ports: []string{"443"}, Action: "deny"},
			{From: "pedagogique", Services: []string{"web", "dns", "ntp"}},
		}}}, testConfig)
		if err != nil {
			t.Fatal(err)
		}
		dnat := rs.Chain("dnat_pedagogique")
		var got []string
		for _, r := range dnat.Rules {
			if r.Match[0].Kind != MatchLocalDst {
				got = append(got, RuleText(r))
			}
		}
		joined := strings.Join(got, "\n")
		if strings.Contains(joined, "dport 443") || !strings.Contains(joined, "tcp dport 80 redirect to :3129") {
			t.Fatalf("dnat chain:\n%s", joined)
		}
	})
	t.Run("unfiltered zone keeps QUIC and is not redirected", func(t *testing.T) {
		rs, err := Build(Source{School: school(ped, srv), Unfiltered: map[string]bool{"serveurs": true},
			Firewall: policy.Firewall{Internet: []policy.Flow{{From: "serveurs", Services: []string{"web", "dns", "ntp"}}, {From: "pedagogique", Services: []string{"web", "dns", "ntp"}}}}}, testConfig)
		if err != nil {
			t.Fatal(err)
		}
		if rs.Chain("dnat_serveurs") != nil {
			t.Fatal("unfiltered zone redirected")
		}
		if rs.Chain("dnat_pedagogique") == nil {
			t.Fatal("filtered zone not redirected")
		}
		var accepts []string
		for _, r := range rs.Chain("forward_serveurs").Rules {
			if strings.HasPrefix(r.Counter, ReasonQUIC) || strings.HasPrefix(r.Counter, ReasonDoT) {
				t.Fatalf("unfiltered zone has bypass drop %s", RuleText(r))
			}
			if r.Verdict.Kind == Accept {
				accepts = append(accepts, RuleText(r))
			}
		}
		// Its services leave straight out, and nothing else.
		want := `tcp dport 80 accept comment "service web"|tcp dport 443 accept comment "service web"|udp dport 443 accept comment "service web"|` +
			`udp dport 53 accept comment "service dns"|tcp dport 53 accept comment "service dns"|udp dport 123 accept comment "service ntp"`
		if got := strings.Join(accepts, "|"); got != want {
			t.Fatalf("unfiltered zone's egress:\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("comments are made safe", func(t *testing.T) {
		long := strings.Repeat("é", 100) + "\"\n\\"
		rs, err := Build(Source{School: school(ped), Firewall: policy.Firewall{Internet: []policy.Flow{{From: "pedagogique", Comment: long, Services: []string{"web", "dns", "ntp"}}}}}, testConfig)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rs.Chains {
			for _, r := range c.Rules {
				if len(r.Comment) > maxCommentBytes || strings.ContainsAny(r.Comment, "\"\n\\") {
					t.Fatalf("unsafe comment %q", r.Comment)
				}
			}
		}
	})
}

func TestMergePrefixes(t *testing.T) {
	cases := []struct {
		in   []string
		want string
	}{
		{[]string{"10.0.0.0/24", "10.0.1.0/24"}, "10.0.0.0/23"},
		{[]string{"10.0.1.0/24", "10.0.0.0/24", "10.0.3.0/24"}, "10.0.0.0/23 10.0.3.0/24"},
		{[]string{"10.0.0.0/16", "10.0.5.0/24"}, "10.0.0.0/16"},
		{[]string{"10.0.0.0/24", "10.0.1.0/25"}, "10.0.0.0-10.0.1.127"},
		{[]string{"10.0.0.7/32"}, "10.0.0.7"},
		{[]string{"255.255.255.0/24", "255.255.254.0/24"}, "255.255.254.0/23"},
		{[]string{"0.0.0.0/8"}, "0.0.0.0/8"},
		{[]string{"fd00::/64", "fd00:0:0:1::/64"}, "fd00::/63"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.in, ","), func(t *testing.T) {
			var ps []netip.Prefix
			for _, s := range tc.in {
				ps = append(ps, netip.MustParsePrefix(s))
			}
			var got []string
			for _, r := range mergePrefixes(ps) {
				got = append(got, rangeText(r))
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}
