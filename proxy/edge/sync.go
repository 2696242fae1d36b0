package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vigie/proxy/policysync"
	"vigie/rules/bundle"
)

// ControlPlaneConfig is the controlplane section of the edge configuration:
// where the académie's control plane is and how this edge proves who it is.
// Without url the edge runs from its last-known-good bundle (or the
// built-in strict policy) and never changes policy by itself.
type ControlPlaneConfig struct {
	// URL of the control plane, https:// (http:// only on loopback, for
	// the demo and tests).
	URL string `yaml:"url,omitempty"`
	// URLs are further control-plane replicas the sync agent turns to,
	// in order, when the current one cannot be reached (without a
	// load balancer in front of them).
	URLs []string `yaml:"urls,omitempty"`
	// Token is the edge token the RSSI got when registering the edge;
	// TokenFile reads it from a file (preferred: keep it out of the
	// configuration, mode 0600).
	Token     string `yaml:"token,omitempty"`
	TokenFile string `yaml:"token_file,omitempty"`
	// CAFile trusts a private CA for the control plane's certificate.
	CAFile string `yaml:"ca_file,omitempty"`
	// PollTimeout is how long a poll may be held by the control plane
	// (default 30s; keep it under the timeouts of proxies on the way).
	PollTimeout time.Duration `yaml:"poll_timeout,omitempty"`
	// MinBackoff and MaxBackoff bound the retry delay after a failure
	// (defaults 1s and 5m).
	MinBackoff time.Duration `yaml:"min_backoff,omitempty"`
	MaxBackoff time.Duration `yaml:"max_backoff,omitempty"`
	// FullBundles fetches whole bundles instead of changed sections only.
	FullBundles bool `yaml:"full_bundles,omitempty"`
}

// syncToken returns the configured edge token.
func (c ControlPlaneConfig) syncToken() (string, error) {
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("controlplane.token_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return strings.TrimSpace(c.Token), nil
}

// checkURL refuses plain http to anything but loopback: the edge token
// would cross the network in clear.
func (c ControlPlaneConfig) checkURL() error {
	for i, u := range c.URLs {
		if err := (ControlPlaneConfig{URL: u}).checkURL(); err != nil {
			return fmt.Errorf("controlplane.urls[%d]: %w", i, err)
		}
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("controlplane.url %q is not a URL", c.URL)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
		return fmt.Errorf("controlplane.url %q: plain http is only accepted on loopback; use https", c.URL)
	}
	return fmt.Errorf("controlplane.url %q: scheme must be https", c.URL)
}

func (c ControlPlaneConfig) client() (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("controlplane.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("controlplane.ca_file %s: no PEM certificate", c.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	// No proxy from the environment: the edge is the school's proxy, and
	// its policy must come straight from the académie.
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     2 * time.Minute,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{Transport: tr}, nil
}

// startSync runs the sync agent when a control plane is configured.
func (e *Edge) startSync(ctx context.Context) error {
	c := e.cfg.ControlPlane
	if c.URL == "" {
		e.log.Info("no control plane configured: the policy changes only with a new bundle file")
		return nil
	}
	if err := c.checkURL(); err != nil {
		return err
	}
	token, err := c.syncToken()
	if err != nil {
		return err
	}
	if token == "" {
		return errors.New("controlplane: token or token_file is required with url")
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	agent, err := policysync.New(policysync.Config{
		URL: c.URL, URLs: c.URLs, Token: token, TokenFile: c.TokenFile, PublicKeys: e.keys,
		Apply: func(b []byte) error { _, err := e.Apply(b); return err },
		Current: func() (uint64, string, bool) {
			g := e.gen.Load()
			if g == nil {
				return 0, "", true
			}
			return g.Serial, g.Hash, g.Fallback
		},
		Initial:    e.bundleInForce(),
		CacheDir:   filepath.Join(e.cfg.StateDir, "sections"),
		Hold:       c.PollTimeout,
		MinBackoff: c.MinBackoff, MaxBackoff: c.MaxBackoff,
		Full:     c.FullBundles,
		Client:   client,
		Software: SoftwareVersion,
		Log:      e.log.With("component", "sync"),
		Registry: e.reg,
		Now:      e.now,
	})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Run(runCtx)
	}()
	e.stops = append(e.stops, func(context.Context) error {
		cancel()
		<-done
		return nil
	})
	return nil
}

// bundleInForce reads the last-known-good bundle when it is the generation
// in force, so the agent does not fetch its sections again.
func (e *Edge) bundleInForce() []byte {
	g := e.gen.Load()
	if g == nil || g.Fallback {
		return nil
	}
	data, err := os.ReadFile(e.lastKnownGood())
	if err != nil {
		return nil
	}
	if h, _, _, err := bundle.ReadHeaderKeys(data, e.keys); err != nil || h.HashHex() != g.Hash {
		return nil
	}
	return data
}

// SoftwareVersion is reported to the control plane (set by the CLI).
var SoftwareVersion = "dev"
