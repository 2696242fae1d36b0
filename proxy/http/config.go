package httpproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"vigie/journal"
	"vigie/proxy/generation"
)

// Config is the proxy's behaviour, and the http section of an edge's
// configuration file (yaml tags; the edge adds its listeners, the CA files
// and check_destination). Zero fields take the defaults of withDefaults,
// the one place where defaults live; the zero value is the secure one.
type Config struct {
	// UAI is the school this edge serves: it picks zones and the block
	// page's contact.
	UAI string `yaml:"-"`
	// UnblockURL is the control plane's public unblock request page
	// (https://vigie.ac-exemple.fr/deblocage), which the block page's
	// form posts a teacher's request to; empty: no form.
	UnblockURL string `yaml:"unblock_url,omitempty"`
	// CA signs interception certificates. It must be an ECDSA CA (cheap
	// P-256 leaves); nil disables interception everywhere.
	CA *tls.Certificate `yaml:"-"`
	// NoIntercept lists domains (and their subdomains) never intercepted,
	// on top of DefaultNoIntercept.
	NoIntercept []string `yaml:"no_intercept,omitempty"`
	// NoInterceptCategories are categories never intercepted (banking,
	// health), on top of DefaultNoInterceptCategories.
	NoInterceptCategories []string `yaml:"no_intercept_categories,omitempty"`
	// NoDestinationCheck turns off, when true, two checks that are on by
	// default: a transparent connection's Host or SNI must resolve,
	// through the edge's resolver, to the connection's original
	// destination; and no connection goes to the gateway itself, loopback,
	// link-local or multicast addresses or the school's networks unless a
	// flow of the policy allows it (see destAllowed). When true the
	// transparent proxy still only ever forwards to the original
	// destination. (The edge's file says check_destination: false.)
	NoDestinationCheck bool `yaml:"-"`
	// AllowDestinations are prefixes the proxy may reach whatever the
	// destination check says ("192.168.5.10/32": an intranet server
	// outside the school's zones; loopback origins in tests and benchmarks).
	AllowDestinations Prefixes `yaml:"allow_destinations,omitempty"`

	Timeouts Timeouts `yaml:"timeouts,omitempty"`
	// MaxHeaderBytes bounds a request head (default 64 KiB).
	MaxHeaderBytes int `yaml:"max_header_bytes,omitempty"`
	// MaxIdleConnsPerHost is the upstream keep-alive pool per origin
	// (default 256). Go's default of 2 halves throughput under load.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host,omitempty"`
	// CertCacheSize bounds the interception certificate cache (default 4096).
	CertCacheSize int `yaml:"cert_cache_size,omitempty"`
}

// Prefixes are address prefixes; in a file, a bare address stands for
// itself alone (a /32 or /128).
type Prefixes []netip.Prefix

// UnmarshalYAML reads a list of prefixes or addresses, naming the line of
// a bad one.
func (ps *Prefixes) UnmarshalYAML(n *yaml.Node) error {
	var texts []string
	if err := n.Decode(&texts); err != nil {
		return err
	}
	out := make(Prefixes, 0, len(texts))
	for i, t := range texts {
		pfx, err := netip.ParsePrefix(t)
		if err != nil {
			ip, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return fmt.Errorf("line %d: allow_destinations[%d]: %q is not an address or prefix", n.Content[i].Line, i, t)
			}
			pfx = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		out = append(out, pfx.Masked())
	}
	*ps = out
	return nil
}

// Timeouts are the proxy's waits, durations such as "10s" in the file.
type Timeouts struct {
	// Dial bounds one upstream TCP connect (default 10s).
	Dial time.Duration `yaml:"dial,omitempty"`
	// TLSHandshake bounds the upstream TLS handshake when intercepting
	// (default 10s).
	TLSHandshake time.Duration `yaml:"tls_handshake,omitempty"`
	// ResponseHeader bounds the wait for an origin's response head
	// (default 60s).
	ResponseHeader time.Duration `yaml:"response_header,omitempty"`
	// HeaderRead bounds reading a client's request head (slowloris) and a
	// client's TLS ClientHello (default 10s).
	HeaderRead time.Duration `yaml:"header_read,omitempty"`
	// Idle closes a client's keep-alive connection left idle (default 120s).
	Idle time.Duration `yaml:"idle,omitempty"`
	// TunnelIdle closes a tunnel (CONNECT, spliced TLS, WebSocket through
	// CONNECT) when no byte moved either way for that long (default 10m).
	TunnelIdle time.Duration `yaml:"tunnel_idle,omitempty"`
}

// DefaultNoIntercept are health sites never intercepted, whatever the
// profile: a pupil's or staff member's medical data is not ours to read.
var DefaultNoIntercept = []string{
	"ameli.fr", "doctolib.fr", "sante.fr", "sante.gouv.fr", "monespacesante.fr",
	"mesdocteurs.com", "filsantejeunes.com", "onisep.fr",
}

// DefaultNoInterceptCategories are never intercepted: UT1's bank category
// and the health categories a policy may declare.
var DefaultNoInterceptCategories = []string{"bank", "financial", "health", "sante"}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	t := &c.Timeouts
	def(&t.Dial, 10*time.Second)
	def(&t.TLSHandshake, 10*time.Second)
	def(&t.ResponseHeader, 60*time.Second)
	def(&t.HeaderRead, 10*time.Second)
	def(&t.Idle, 120*time.Second)
	def(&t.TunnelIdle, 10*time.Minute)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = 256
	}
	if c.CertCacheSize <= 0 {
		c.CertCacheSize = 4096
	}
	c.NoIntercept = append(append([]string(nil), DefaultNoIntercept...), c.NoIntercept...)
	c.NoInterceptCategories = append(append([]string(nil), DefaultNoInterceptCategories...), c.NoInterceptCategories...)
	return c
}

func (c Config) validate() error {
	if c.UAI == "" {
		return errors.New("http: config: uai is required")
	}
	if c.CA != nil {
		if err := checkCA(c.CA); err != nil {
			return fmt.Errorf("http: config: interception CA: %w", err)
		}
	}
	if c.UnblockURL != "" {
		if u, err := url.Parse(c.UnblockURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("http: config: unblock_url %q: want an http(s) address such as https://vigie.ac-exemple.fr/deblocage", c.UnblockURL)
		}
	}
	return nil
}

// Deps are what the proxy is given rather than reaching for.
type Deps struct {
	// Generation is the policy in force; read once per request.
	Generation *generation.Current
	Journal    journal.Sink
	Registry   prometheus.Registerer
	Log        *slog.Logger
	Now        func() time.Time
	// Resolve looks a name up as the device at client would through the
	// edge's DNS filter (its zone profile, so SafeSearch applies): for
	// upstream dials and the destination checks. The edge passes its DNS
	// filter's in-process resolver; the default, the system resolver,
	// ignores the client and is for tools and tests only.
	Resolve func(ctx context.Context, client netip.Addr, host string) ([]netip.Addr, error)
	// Dial opens upstream TCP connections to an address already resolved.
	// Default: a net.Dialer with Config.Timeouts.Dial.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OriginalDst returns where a redirected connection was going.
	// Default: SO_ORIGINAL_DST (Linux, after an nftables redirect).
	OriginalDst func(net.Conn) (netip.AddrPort, error)
	// RootCAs verifies upstream TLS when intercepting (nil: system roots).
	RootCAs *x509.CertPool
}
