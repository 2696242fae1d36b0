package edge

import (
	"context"
	"fmt"

	"vigie/proxy/firewall"
	"vigie/proxy/generation"
)

// FirewallConfig is the firewall section of the edge configuration.
type FirewallConfig struct {
	// Enabled makes the edge own the gateway's nftables table "inet vigie"
	// and replace it with every policy generation.
	Enabled bool `yaml:"enabled"`
	// DNSPort, HTTPPort and HTTPSPort are where filtered zones' port 53,
	// 80 and 443 are redirected: they must be the ports the edge's DNS
	// filter and transparent HTTP and HTTPS listeners use.
	DNSPort   uint16 `yaml:"dns_port,omitempty"`
	HTTPPort  uint16 `yaml:"http_port,omitempty"`
	HTTPSPort uint16 `yaml:"https_port,omitempty"`
	// WANInterface is the gateway's internet leg (see firewall.Config).
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

// Rules returns the firewall package's configuration, defaults applied.
func (c FirewallConfig) Rules() firewall.Config {
	def := func(v, d uint16) uint16 {
		if v == 0 {
			return d
		}
		return v
	}
	return firewall.Config{
		DNSPort:      def(c.DNSPort, DefaultFirewallDNSPort),
		HTTPPort:     def(c.HTTPPort, DefaultFirewallHTTPPort),
		HTTPSPort:    def(c.HTTPSPort, DefaultFirewallHTTPSPort),
		WANInterface: c.WANInterface,
		Masquerade:   c.Masquerade,
	}
}

// startFirewall registers the hook that puts every new generation's
// ruleset into the kernel before the generation is swapped in: a ruleset
// that fails to build, apply or read back refuses the generation, and the
// one in force keeps both its rules and its firewall.
func (e *Edge) startFirewall(ctx context.Context) error {
	if !e.cfg.Firewall.Enabled {
		return nil
	}
	cfg := e.cfg.Firewall.Rules()
	// Check the edge's side now, so a bad config stops the start rather
	// than every generation.
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config firewall section: %w", err)
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
		src, err := firewall.FromRuleset(g.Rules, uai)
		if err != nil {
			return err
		}
		rs, err := firewall.Build(src, cfg)
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
