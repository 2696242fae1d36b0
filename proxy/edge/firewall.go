package edge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"vigie/proxy/firewall"
	"vigie/proxy/generation"
	plan "vigie/rules/firewall"
)

// FirewallConfig is the firewall section of the edge configuration.
type FirewallConfig struct {
	// Enabled makes the edge own the gateway's nftables table "inet vigie"
	// and replace it with every policy generation.
	Enabled bool `yaml:"enabled"`
	// DNSPort, HTTPPort and HTTPSPort are where filtered zones' port 53,
	// 80 and 443 are redirected. Left out, they follow dns.listen and
	// http.transparent_http(s); see Config.FirewallRules.
	DNSPort   uint16 `yaml:"dns_port,omitempty"`
	HTTPPort  uint16 `yaml:"http_port,omitempty"`
	HTTPSPort uint16 `yaml:"https_port,omitempty"`
	// WANInterface is the gateway's internet leg (see plan.Config).
	WANInterface string `yaml:"wan_interface,omitempty"`
	// Masquerade rewrites the source of what leaves through WANInterface.
	Masquerade bool `yaml:"masquerade,omitempty"`
}

// Default redirect targets, the one place they are written.
const (
	DefaultFirewallDNSPort   = 53
	DefaultFirewallHTTPPort  = 3129
	DefaultFirewallHTTPSPort = 3130
)

// FirewallRules returns the firewall package's configuration. A redirect
// port left out takes the port of the listener it feeds (dns.listen,
// http.transparent_http, http.transparent_https), else the default; a port
// given that differs from its listener's is an error, since redirected
// traffic would find nobody there.
func (c Config) FirewallRules() (plan.Config, error) {
	fc := c.Firewall
	out := plan.Config{WANInterface: fc.WANInterface, Masquerade: fc.Masquerade}
	if c.Flows.Enabled {
		out.DropLogGroup = c.Flows.nflogGroup()
	}
	for _, p := range []struct {
		field, listenField, listen string
		set                        uint16
		def                        uint16
		dst                        *uint16
	}{
		{"dns_port", "dns.listen", c.DNS.Listen, fc.DNSPort, DefaultFirewallDNSPort, &out.DNSPort},
		{"http_port", "http.transparent_http", c.HTTP.TransparentHTTP, fc.HTTPPort, DefaultFirewallHTTPPort, &out.HTTPPort},
		{"https_port", "http.transparent_https", c.HTTP.TransparentHTTPS, fc.HTTPSPort, DefaultFirewallHTTPSPort, &out.HTTPSPort},
	} {
		var lp uint16
		if p.listen != "" {
			_, port, err := net.SplitHostPort(p.listen)
			n, perr := strconv.ParseUint(port, 10, 16)
			if err != nil || perr != nil || n == 0 {
				return out, fmt.Errorf("firewall: %s %q has no port", p.listenField, p.listen)
			}
			lp = uint16(n)
		}
		switch {
		case p.set != 0 && lp != 0 && p.set != lp:
			return out, fmt.Errorf("firewall.%s %d differs from the port of %s %q: redirected traffic would miss the listener", p.field, p.set, p.listenField, p.listen)
		case p.set != 0:
			*p.dst = p.set
		case lp != 0:
			*p.dst = lp
		default:
			*p.dst = p.def
		}
	}
	// The explicit proxy and the metrics listener are opened by the
	// matrix (the web service, management lines naming metrics), on the
	// ports they actually listen on. A loopback metrics listener has
	// nothing to open.
	var err error
	if out.ExplicitPort, err = listenPort("http.explicit", c.HTTP.Explicit, false); err != nil {
		return out, err
	}
	if out.MetricsPort, err = listenPort("metrics.listen", c.Metrics.Listen, true); err != nil {
		return out, err
	}
	return out, out.Validate()
}

// listenPort is the port of a listen address, 0 when there is none (or,
// with skipLoopback, when only the gateway itself can reach it).
func listenPort(field, listen string, skipLoopback bool) (uint16, error) {
	if listen == "" {
		return 0, nil
	}
	host, port, err := net.SplitHostPort(listen)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || n == 0 {
		return 0, fmt.Errorf("firewall: %s %q has no port", field, listen)
	}
	if skipLoopback {
		if a, err := netip.ParseAddr(host); host == "localhost" || (err == nil && a.IsLoopback()) {
			return 0, nil
		}
	}
	return uint16(n), nil
}

// startFirewall registers the hook that puts every new generation's
// ruleset into the kernel before the generation is swapped in: a ruleset
// that fails to build, apply or read back refuses the generation, and the
// one in force keeps both its rules and its firewall. Shutdown leaves the
// table in place on purpose: with the edge stopped, filtered zones' DNS
// and web traffic go nowhere (closed), never around the filter (open).
func (e *Edge) startFirewall(ctx context.Context) error {
	if !e.cfg.Firewall.Enabled {
		return nil
	}
	// Check the edge's side now, so a bad config stops the start rather
	// than refusing every generation.
	cfg, err := e.cfg.FirewallRules()
	if err != nil {
		return err
	}
	fw, err := firewall.New(firewall.Options{Log: e.log, Registry: e.reg, Now: e.now})
	if err != nil {
		return err
	}
	uai := e.cfg.UAI
	e.onApply = append(e.onApply, func(g *generation.Generation) error {
		if g.Fallback {
			// The built-in strict policy has no IP plan: applying it would
			// cut every zone off, the académie's own access included. The
			// kernel keeps whatever it has until a real policy arrives.
			e.log.Warn("firewall: no policy with an IP plan yet, nftables left as they are", "uai", uai)
			return nil
		}
		src, err := plan.FromRuleset(g.Rules, uai)
		if err != nil {
			return err
		}
		rs, err := plan.Build(src, cfg)
		if err != nil {
			return err
		}
		if err := fw.Apply(rs); err != nil {
			return fmt.Errorf("serial %d: %w", g.Serial, err)
		}
		return nil
	})
	return nil
}
