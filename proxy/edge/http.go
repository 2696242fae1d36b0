package edge

import (
	"context"
	"errors"
	"fmt"
	"net"

	httpproxy "vigie/proxy/http"
)

// HTTPConfig is the http section of the edge configuration: the proxy's
// three entry points (an empty address disables one), the optional
// interception CA's files and check_destination, beside the proxy's own
// configuration (httpproxy.Config: timeouts, limits, exemptions), whose
// fields and defaults are documented there.
type HTTPConfig struct {
	// Explicit is the forward proxy for configured devices ("127.0.0.1:3128").
	Explicit string `yaml:"explicit,omitempty"`
	// TransparentHTTP receives port 80 redirected by nftables.
	TransparentHTTP string `yaml:"transparent_http,omitempty"`
	// TransparentHTTPS receives port 443 redirected by nftables.
	TransparentHTTPS string `yaml:"transparent_https,omitempty"`
	// CACert and CAKey are the académie's ECDSA interception CA (PEM),
	// used only for profiles set to https: intercept or https_block_page.
	CACert string `yaml:"ca_cert,omitempty"`
	CAKey  string `yaml:"ca_key,omitempty"`
	// CheckDestination (default true) makes a transparent connection's
	// Host or SNI resolve to its original destination, and keeps the
	// proxy away from the gateway itself, loopback, link-local and
	// multicast addresses and the school's networks unless a flow of the
	// policy allows them.
	CheckDestination *bool `yaml:"check_destination,omitempty"`

	httpproxy.Config `yaml:",inline"`
}

// proxyConfig turns the section into the proxy's configuration, loading
// the CA files.
func (c HTTPConfig) proxyConfig(uai string) (httpproxy.Config, error) {
	pc := c.Config
	pc.UAI = uai
	pc.NoDestinationCheck = c.CheckDestination != nil && !*c.CheckDestination
	switch {
	case c.CACert != "" && c.CAKey != "":
		ca, err := httpproxy.LoadCA(c.CACert, c.CAKey)
		if err != nil {
			return pc, err
		}
		pc.CA = ca
	case c.CACert != "" || c.CAKey != "":
		return pc, errors.New("http: ca_cert and ca_key go together")
	}
	return pc, nil
}

// startHTTP starts the filtering proxy's listeners. Each address is
// opened before any is served, so a taken port fails the start cleanly.
func (e *Edge) startHTTP(ctx context.Context) error {
	c := e.cfg.HTTP
	if c.Explicit == "" && c.TransparentHTTP == "" && c.TransparentHTTPS == "" {
		return nil
	}
	pc, err := c.proxyConfig(e.cfg.UAI)
	if err != nil {
		return err
	}
	if e.dns == nil {
		return errors.New("http: the proxy resolves through the DNS filter, which is not running")
	}
	if pc.CA == nil {
		e.log.Info("no interception CA (http.ca_cert): refused HTTPS shows the browser's error, never the block page, even for profiles with https_block_page")
	}
	p, err := httpproxy.New(pc, httpproxy.Deps{
		Generation: &e.gen,
		Journal:    e.journal,
		Registry:   e.reg,
		Log:        e.log.With("component", "http"),
		Now:        e.now,
		// One resolver for the whole edge: the proxy connects where the
		// device's own lookup (its profile, SafeSearch) leads, never
		// through the gateway's resolv.conf.
		Resolve: e.dns.Resolve,
	})
	if err != nil {
		return err
	}
	entries := []struct {
		field, addr string
		serve       func(net.Listener) error
	}{
		{"explicit", c.Explicit, p.ServeExplicit},
		{"transparent_http", c.TransparentHTTP, p.ServeTransparentHTTP},
		{"transparent_https", c.TransparentHTTPS, p.ServeTransparentHTTPS},
	}
	var lns []net.Listener
	for _, en := range entries {
		if en.addr == "" {
			lns = append(lns, nil)
			continue
		}
		ln, err := net.Listen("tcp", en.addr)
		if err != nil {
			for _, l := range lns {
				if l != nil {
					l.Close()
				}
			}
			return fmt.Errorf("http: %s %q: %w", en.field, en.addr, err)
		}
		lns = append(lns, ln)
	}
	for i, en := range entries {
		if lns[i] == nil {
			continue
		}
		e.supervise(en.field, func() error { return en.serve(lns[i]) })
		e.log.Info("http proxy listening", "entry", en.field, "addr", lns[i].Addr().String())
	}
	e.stops = append(e.stops, p.Shutdown)
	return nil
}
