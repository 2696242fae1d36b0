package edge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"vigie/keyfile"
)

// Check reads everything the configuration names without starting
// anything: the académie keys, the token and CA files, the interception
// CA, the RADIUS secrets, the lease files, the journal's sealing key, the
// listen addresses and the firewall settings. Each problem names
// the file and the field ("vigie edge check").
func Check(path string) error {
	c, err := LoadConfig(path)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, fmt.Errorf("edge: config %s: %s: %w", path, field, err))
	}
	if _, err := c.loadKeys(); err != nil {
		bad("public_key/public_keys", err)
	}
	if _, err := c.FirewallRules(); err != nil {
		bad("firewall", err)
	}
	if c.Bundle != "" {
		if _, err := os.Stat(c.Bundle); err != nil {
			bad("bundle", err)
		}
	}
	if cp := c.ControlPlane; cp.URL != "" {
		if u, err := url.Parse(cp.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("controlplane.url", fmt.Errorf("%q is not an http(s):// URL", cp.URL))
		}
		switch {
		case cp.Token == "" && cp.TokenFile == "":
			bad("controlplane.token_file", errors.New("an edge token is required (vigie admin edges add UAI prints one)"))
		case cp.TokenFile != "":
			if b, err := os.ReadFile(cp.TokenFile); err != nil {
				bad("controlplane.token_file", err)
			} else if strings.TrimSpace(string(b)) == "" {
				bad("controlplane.token_file", fmt.Errorf("%s is empty", cp.TokenFile))
			}
		}
		if cp.CAFile != "" {
			if _, err := os.ReadFile(cp.CAFile); err != nil {
				bad("controlplane.ca_file", err)
			}
		}
	}
	// The RADIUS shared secrets (nas names the client and field).
	if _, err := c.Identity.RADIUS.nas(); err != nil {
		errs = append(errs, fmt.Errorf("edge: config %s: %w", path, err))
	}
	for i, l := range c.Identity.Leases {
		if _, err := os.Stat(l.Path); err != nil {
			bad(fmt.Sprintf("identity.leases[%d].path", i), err)
		}
	}
	// The journal's sealing key: a named one must be there; the default
	// one is created on first start, but one that is there must load.
	switch key := c.Journal.Key; {
	case key != "":
		if _, err := keyfile.LoadPrivate(key); err != nil {
			bad("journal.key", err)
		}
	default:
		key = filepath.Join(c.StateDir, "journal.key")
		if _, err := os.Stat(key); err == nil {
			if _, err := keyfile.LoadPrivate(key); err != nil {
				bad("journal.key (default "+key+")", err)
			}
		}
	}
	if (c.HTTP.CACert == "") != (c.HTTP.CAKey == "") {
		bad("http.ca_cert/ca_key", errors.New("give both or neither"))
	} else if c.HTTP.CACert != "" {
		if _, err := tls.LoadX509KeyPair(c.HTTP.CACert, c.HTTP.CAKey); err != nil {
			bad("http.ca_cert/ca_key", err)
		}
	}
	for _, l := range []struct{ field, addr string }{{"dns.listen", c.DNS.Listen}, {"http.explicit", c.HTTP.Explicit},
		{"http.transparent_http", c.HTTP.TransparentHTTP}, {"http.transparent_https", c.HTTP.TransparentHTTPS}, {"metrics.listen", c.Metrics.Listen}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			bad(l.field, err)
		}
	}
	for i, u := range c.DNS.Upstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			if net.ParseIP(u) == nil {
				bad(fmt.Sprintf("dns.upstreams[%d]", i), fmt.Errorf("%q is neither host:port nor an address", u))
			}
		}
	}
	return errors.Join(errs...)
}
