package cli

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"vigie/keyfile"
	"vigie/proxy/edge"
	"vigie/proxy/firewall"
	"vigie/rules"
	plan "vigie/rules/firewall"
	"vigie/rules/policy"
	"vigie/testlab/netns"
)

func runFirewall(args []string, stdout, stderr io.Writer) error {
	return subcommand("firewall", args, map[string]func([]string) error{
		"render":   func(a []string) error { return firewallRender(a, stdout, stderr) },
		"apply":    func(a []string) error { return firewallApply(a, stdout, stderr) },
		"counters": func(a []string) error { return firewallCounters(a, stdout, stderr) },
		"remove":   func(a []string) error { return firewallRemove(a, stdout, stderr) },
	})
}

// firewallFlags are the options render and apply share: where the policy
// comes from, which school, and the edge's side of the ruleset.
type firewallFlags struct {
	policy, bundle, pubkey, uai, config *string
	version                             *uint64
	api                                 *apiFlags
	dns, http, https                    *uint
	wan                                 *string
	masquerade                          *bool
}

func addFirewallFlags(fs *flag.FlagSet) *firewallFlags {
	return &firewallFlags{
		policy:     fs.String("policy", "", "policy file (YAML); its lists are not read"),
		bundle:     fs.String("bundle", "", "signed policy bundle (instead of --policy)"),
		version:    fs.Uint64("version", 0, "serial of a published version, read from the control plane (instead of --policy)"),
		api:        addAPIFlags(fs, "for --version"),
		pubkey:     fs.String("pubkey", "", "public key that signed the bundle (PEM)"),
		uai:        fs.String("uai", "", "UAI of the school (default: the edge config's)"),
		config:     fs.String("config", "", "edge configuration file: its uai and firewall section"),
		dns:        fs.Uint("dns-port", edge.DefaultFirewallDNSPort, "port of the edge's DNS filter"),
		http:       fs.Uint("http-port", edge.DefaultFirewallHTTPPort, "port of the edge's transparent HTTP proxy"),
		https:      fs.Uint("https-port", edge.DefaultFirewallHTTPSPort, "port of the edge's transparent HTTPS proxy"),
		wan:        fs.String("wan", "", "WAN interface (internet flows leave only through it)"),
		masquerade: fs.Bool("masquerade", false, "masquerade what leaves through --wan"),
	}
}

// build reads the policy and compiles the school's firewall.
func (f *firewallFlags) build() (*plan.Ruleset, error) {
	var cfg plan.Config
	uai := *f.uai
	if *f.config != "" {
		ec, err := edge.LoadConfig(*f.config)
		if err != nil {
			return nil, err
		}
		if cfg, err = ec.FirewallRules(); err != nil {
			return nil, err
		}
		if uai == "" {
			uai = ec.UAI
		}
	} else {
		for _, p := range []struct {
			name string
			v    uint
		}{{"dns-port", *f.dns}, {"http-port", *f.http}, {"https-port", *f.https}} {
			if p.v == 0 || p.v > 65535 {
				return nil, usageError("--%s %d is not a port (1-65535)", p.name, p.v)
			}
		}
		cfg = plan.Config{DNSPort: uint16(*f.dns), HTTPPort: uint16(*f.http), HTTPSPort: uint16(*f.https),
			WANInterface: *f.wan, Masquerade: *f.masquerade}
	}
	if uai == "" {
		return nil, usageError("--uai is required")
	}
	var src plan.Source
	n := 0
	for _, set := range []bool{*f.policy != "", *f.bundle != "", *f.version != 0} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, usageError("give one of --policy, --bundle and --version")
	case *f.version != 0:
		rs, err := f.published()
		if err != nil {
			return nil, err
		}
		if src, err = plan.FromRuleset(rs, uai); err != nil {
			return nil, err
		}
	case *f.policy != "":
		p, err := policy.Load(*f.policy)
		if err != nil {
			return nil, err
		}
		if src, err = plan.FromPolicy(p, uai); err != nil {
			return nil, err
		}
	case *f.bundle != "":
		if *f.pubkey == "" {
			return nil, usageError("--bundle needs --pubkey")
		}
		pub, err := keyfile.LoadPublic(*f.pubkey)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(*f.bundle)
		if err != nil {
			return nil, fmt.Errorf("firewall: %w", err)
		}
		rs, _, err := rules.DecodeBundle(data, pub)
		if err != nil {
			return nil, fmt.Errorf("firewall: bundle %s: %w", *f.bundle, err)
		}
		if src, err = plan.FromRuleset(rs, uai); err != nil {
			return nil, err
		}
	default:
		return nil, usageError("--policy, --bundle or --version is required")
	}
	return plan.Build(src, cfg)
}

// published reads the bundle of a published version from the control
// plane, and checks it with --pubkey when given (else integrity only:
// the version may predate a rotation of the académie key).
func (f *firewallFlags) published() (*rules.Ruleset, error) {
	c, err := f.api.client("firewall --version", true, 0)
	if err != nil {
		return nil, err
	}
	data, err := c.Bundle(context.Background(), *f.version)
	if err != nil {
		return nil, fmt.Errorf("firewall: version %d: %w", *f.version, err)
	}
	var pub ed25519.PublicKey
	if *f.pubkey != "" {
		if pub, err = keyfile.LoadPublic(*f.pubkey); err != nil {
			return nil, err
		}
	}
	rs, _, err := rules.DecodeBundle(data, pub)
	if err != nil {
		return nil, fmt.Errorf("firewall: version %d: %w", *f.version, err)
	}
	return rs, nil
}

func firewallRender(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("firewall render", stderr)
	f := addFirewallFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	rs, err := f.build()
	if err != nil {
		return err
	}
	return plan.Render(stdout, rs)
}

// openNetNS returns the descriptor of a named namespace, 0 for the
// current one, and a function to release it.
func openNetNS(name string) (int, func(), error) {
	if name == "" {
		return 0, func() {}, nil
	}
	ns, err := netns.Open(name)
	if err != nil {
		return 0, nil, err
	}
	return ns.Fd(), func() { ns.Close() }, nil
}

func firewallApply(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("firewall apply", stderr)
	f := addFirewallFlags(fs)
	ns := fs.String("netns", "", "network namespace to apply in (as named by ip netns)")
	if err := parse(fs, args); err != nil {
		return err
	}
	rs, err := f.build()
	if err != nil {
		return err
	}
	fd, release, err := openNetNS(*ns)
	if err != nil {
		return err
	}
	defer release()
	fw, err := firewall.New(firewall.Options{NetNS: fd})
	if err != nil {
		return err
	}
	if err := fw.Apply(rs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "table inet %s applied and verified: school %s, %d rules, %d sets\n", plan.TableName, rs.UAI, rs.Rules(), len(rs.Sets))
	return nil
}

func firewallCounters(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("firewall counters", stderr)
	ns := fs.String("netns", "", "network namespace to read (as named by ip netns)")
	if err := parse(fs, args); err != nil {
		return err
	}
	fd, release, err := openNetNS(*ns)
	if err != nil {
		return err
	}
	defer release()
	counts, err := firewall.ReadCounters(fd)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "%-28s %12s %14s\n", "COUNTER", "PACKETS", "BYTES")
	for _, n := range names {
		fmt.Fprintf(stdout, "%-28s %12d %14d\n", n, counts[n].Packets, counts[n].Bytes)
	}
	return nil
}

func firewallRemove(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("firewall remove", stderr)
	ns := fs.String("netns", "", "network namespace (as named by ip netns)")
	if err := parse(fs, args); err != nil {
		return err
	}
	fd, release, err := openNetNS(*ns)
	if err != nil {
		return err
	}
	defer release()
	fw, err := firewall.New(firewall.Options{NetNS: fd})
	if err != nil {
		return err
	}
	if err := fw.Remove(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "table inet %s removed (other tables untouched)\n", plan.TableName)
	return nil
}
