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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
	"vigie/proxy/generation"
)

// Config is the proxy's behaviour. Zero fields take the defaults of
// withDefaults, the one place where defaults live.
type Config struct {
	// UAI is the school this edge serves: it picks zones and the block
	// page's contact.
	UAI string
	// CA signs interception certificates. It must be an ECDSA CA (cheap
	// P-256 leaves); nil disables interception everywhere.
	CA *tls.Certificate
	// NoIntercept lists domains (and their subdomains) never intercepted,
	// on top of DefaultNoIntercept.
	NoIntercept []string
	// NoInterceptCategories are categories never intercepted (banking,
	// health), on top of DefaultNoInterceptCategories.
	NoInterceptCategories []string
	// NoDestinationCheck turns off, when true, two checks that are on by
	// default: a transparent connection's Host or SNI must resolve,
	// through the edge's resolver, to the connection's original
	// destination; and no connection goes to the gateway itself, loopback,
	// link-local or multicast addresses or the school's networks unless a
	// flow of the policy allows it (see destAllowed). When true the
	// transparent proxy still only ever forwards to the original
	// destination.
	NoDestinationCheck bool
	// AllowDestinations are addresses the proxy may reach whatever the
	// destination check says (an intranet server outside the school's
	// zones; loopback origins in tests and benchmarks).
	AllowDestinations []netip.Prefix

	// DialTimeout bounds one upstream TCP connect.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the upstream TLS handshake (interception).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an origin's response head.
	ResponseHeaderTimeout time.Duration
	// HeaderReadTimeout bounds reading a client's request head (slowloris)
	// and a transparent client's TLS ClientHello.
	HeaderReadTimeout time.Duration
	// IdleTimeout closes a client's keep-alive connection left idle.
	IdleTimeout time.Duration
	// TunnelIdleTimeout closes a tunnel (CONNECT, spliced TLS, WebSocket
	// through CONNECT) when no byte moved either way for that long.
	TunnelIdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head (64 KiB).
	MaxHeaderBytes int
	// MaxIdleConnsPerHost is the upstream keep-alive pool per origin. Go's
	// default of 2 halves throughput under load.
	MaxIdleConnsPerHost int
	// CertCacheSize bounds the interception certificate cache.
	CertCacheSize int
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
	def(&c.DialTimeout, 10*time.Second)
	def(&c.TLSHandshakeTimeout, 10*time.Second)
	def(&c.ResponseHeaderTimeout, 60*time.Second)
	def(&c.HeaderReadTimeout, 10*time.Second)
	def(&c.IdleTimeout, 120*time.Second)
	def(&c.TunnelIdleTimeout, 10*time.Minute)
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
	// Default: a net.Dialer with Config.DialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OriginalDst returns where a redirected connection was going.
	// Default: SO_ORIGINAL_DST (Linux, after an nftables redirect).
	OriginalDst func(net.Conn) (netip.AddrPort, error)
	// RootCAs verifies upstream TLS when intercepting (nil: system roots).
	RootCAs *x509.CertPool
}
