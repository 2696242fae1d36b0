package edge

import (
	"context"

	"vigie/proxy/dns"
)

// DNSConfig is the dns section of the edge configuration: the DNS
// filter's own configuration (dns.Config), whose fields, yaml names and
// defaults are documented there. Zero values take those defaults.
type DNSConfig = dns.Config

// startDNS serves the DNS filter on the generation in force. The server
// reads e.gen once per query, so an Apply takes effect on the next query
// without restarting anything.
func (e *Edge) startDNS(ctx context.Context) error {
	cfg := e.cfg.DNS
	cfg.UAI = e.cfg.UAI
	srv, err := dns.New(cfg, dns.Deps{
		Gen:      &e.gen,
		Journal:  e.journal,
		Registry: e.reg,
		Log:      e.log.With("component", "dns"),
		Now:      e.now,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	e.dns = srv
	e.stops = append(e.stops, srv.Shutdown)
	return nil
}
