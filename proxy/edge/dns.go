package edge

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"vigie/proxy/dns"
)

// DNSConfig is the dns section of the edge configuration. Zero values take
// the defaults of package vigie/proxy/dns (listed there, field by field).
type DNSConfig struct {
	// Listen is the UDP and TCP address (default ":53"; the demo uses
	// "127.0.0.1:5353").
	Listen string `yaml:"listen,omitempty"`
	// Upstreams are the resolvers to forward to, "IP:port", in order of
	// preference (default: the nameservers of /etc/resolv.conf).
	Upstreams []string `yaml:"upstreams,omitempty"`
	// Timeout is how long one upstream may take before the next is tried
	// (default 2s).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// UDPSockets is the number of SO_REUSEPORT sockets (default: one per core).
	UDPSockets int `yaml:"udp_sockets,omitempty"`
	// UpstreamSockets is the number of persistent UDP sockets per upstream (default 4).
	UpstreamSockets int                `yaml:"upstream_sockets,omitempty"`
	Cache           DNSCacheConfig     `yaml:"cache,omitempty"`
	RateLimit       DNSRateLimitConfig `yaml:"rate_limit,omitempty"`
	// BlockTTL is the TTL of block answers (default 30s).
	BlockTTL time.Duration `yaml:"block_ttl,omitempty"`
	// BlockPageIPv4 and BlockPageIPv6 are the addresses of this edge's
	// block page, answered for blocked names in profiles whose
	// block_answer is blockpage (default: the listen address when it is a
	// specific one).
	BlockPageIPv4 string `yaml:"blockpage_ipv4,omitempty"`
	BlockPageIPv6 string `yaml:"blockpage_ipv6,omitempty"`
	// SafeSearchTargets overrides an engine's enforced-safe endpoint
	// (google, bing, duckduckgo, qwant, youtube_strict, youtube_moderate).
	SafeSearchTargets map[string]string `yaml:"safesearch_targets,omitempty"`
	// MaxTCPConns bounds concurrent TCP clients (default 1024), and
	// MaxTCPConnsPerSource those of one address (default 32).
	MaxTCPConns          int `yaml:"max_tcp_conns,omitempty"`
	MaxTCPConnsPerSource int `yaml:"max_tcp_conns_per_source,omitempty"`
}

// DNSCacheConfig sizes the answer cache and clamps its TTLs.
type DNSCacheConfig struct {
	// Entries bounds the cache (default 100000; -1 disables it).
	Entries int `yaml:"entries,omitempty"`
	// MinTTL and MaxTTL clamp cached TTLs (defaults 0s and 24h).
	MinTTL time.Duration `yaml:"min_ttl,omitempty"`
	MaxTTL time.Duration `yaml:"max_ttl,omitempty"`
	// NegativeMaxTTL caps NXDOMAIN/NODATA answers (default 1h); NegativeTTL
	// applies to those without an SOA (default 60s).
	NegativeMaxTTL time.Duration `yaml:"negative_max_ttl,omitempty"`
	NegativeTTL    time.Duration `yaml:"negative_ttl,omitempty"`
	// ServeStale is how long past expiry an answer is still served when no
	// upstream answers (default 24h; -1s disables).
	ServeStale time.Duration `yaml:"serve_stale,omitempty"`
}

// DNSRateLimitConfig bounds the queries of each source address.
type DNSRateLimitConfig struct {
	// QPS is the sustained rate per source (default 500; -1 disables).
	QPS float64 `yaml:"qps,omitempty"`
	// Burst is how many queries a source may send at once (default 2×QPS).
	Burst int `yaml:"burst,omitempty"`
}

// serverConfig turns the YAML section into the server's configuration.
func (c DNSConfig) serverConfig(uai string) (dns.Config, error) {
	cfg := dns.Config{
		UAI:                  uai,
		Listen:               c.Listen,
		Upstreams:            c.Upstreams,
		Timeout:              c.Timeout,
		UDPSockets:           c.UDPSockets,
		UpstreamSockets:      c.UpstreamSockets,
		CacheEntries:         c.Cache.Entries,
		MinTTL:               c.Cache.MinTTL,
		MaxTTL:               c.Cache.MaxTTL,
		NegativeMaxTTL:       c.Cache.NegativeMaxTTL,
		NegativeTTL:          c.Cache.NegativeTTL,
		ServeStale:           c.Cache.ServeStale,
		RateLimit:            c.RateLimit.QPS,
		RateBurst:            c.RateLimit.Burst,
		BlockTTL:             c.BlockTTL,
		SafeSearchTargets:    c.SafeSearchTargets,
		MaxTCPConns:          c.MaxTCPConns,
		MaxTCPConnsPerSource: c.MaxTCPConnsPerSource,
	}
	for _, f := range []struct {
		name, text string
		dst        *netip.Addr
	}{{"blockpage_ipv4", c.BlockPageIPv4, &cfg.BlockPageIPv4}, {"blockpage_ipv6", c.BlockPageIPv6, &cfg.BlockPageIPv6}} {
		if f.text == "" {
			continue
		}
		a, err := netip.ParseAddr(f.text)
		if err != nil {
			return cfg, fmt.Errorf("dns: %s %q: %w", f.name, f.text, err)
		}
		*f.dst = a
	}
	return cfg, nil
}

// startDNS serves the DNS filter on the generation in force. The server
// reads e.gen once per query, so an Apply takes effect on the next query
// without restarting anything.
func (e *Edge) startDNS(ctx context.Context) error {
	cfg, err := e.cfg.DNS.serverConfig(e.cfg.UAI)
	if err != nil {
		return err
	}
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
