package httpproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"vigie/rules"
)

// newTransport is the proxy's own upstream transport: no proxy from the
// environment, bounded dial, TLS and header waits, generous idle pools (Go's
// default of 2 idle connections per origin halves throughput), compression
// left to the client and origin (decompressing would change what we relay).
func (p *Proxy) newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            p.dialUpstream,
		TLSClientConfig:        &tls.Config{RootCAs: p.deps.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    p.cfg.Timeouts.TLSHandshake,
		ResponseHeaderTimeout:  p.cfg.Timeouts.ResponseHeader,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           4 * p.cfg.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:    p.cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 256 << 10,
		DisableCompression:     true,
		// HTTP/1.1 upstream: WebSocket upgrades need it, and it keeps one
		// path for every origin.
		ForceAttemptHTTP2: false,
		WriteBufferSize:   32 << 10,
		ReadBufferSize:    32 << 10,
	}
}

// dialUpstream resolves addr through the edge's resolver for the device
// the request comes from, refuses any address that is the proxy itself or
// a forbidden destination, and dials the others in turn.
func (p *Proxy) dialUpstream(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("http: dial %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("http: dial %q: bad port", addr)
	}
	client := clientOf(ctx)
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else {
		if ips, err = p.resolve(ctx, client, host); err != nil {
			return nil, err
		}
	}
	var firstErr error
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		c, err := p.dialAddr(ctx, client, ap)
		if err == nil {
			return c, nil
		}
		if errors.Is(err, errLoop) {
			return nil, err
		}
		if firstErr == nil || errors.Is(firstErr, errForbiddenDest) {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("http: dial %s: no address", addr)
	}
	return nil, firstErr
}

// dialAddr dials one resolved address for the device at client, refusing
// the proxy itself and the destinations destAllowed refuses.
func (p *Proxy) dialAddr(ctx context.Context, client netip.Addr, ap netip.AddrPort) (net.Conn, error) {
	if err := p.checkDest(client, ap); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeouts.Dial)
	defer cancel()
	return p.dial(ctx, "tcp", ap.String())
}

// checkDest refuses ap for the device at client when it is the proxy
// itself or a destination destAllowed refuses: before every dial, and
// before a kept origin connection is used (fetch).
func (p *Proxy) checkDest(client netip.Addr, ap netip.AddrPort) error {
	if p.isOwn(ap) {
		return fmt.Errorf("http: dial %s: %w", ap, errLoop)
	}
	if !p.destAllowed(p.rulesNow(), client, ap) {
		return fmt.Errorf("http: dial %s: %w", ap, errForbiddenDest)
	}
	return nil
}

// rulesNow is the ruleset in force (nil before the first generation).
func (p *Proxy) rulesNow() *rules.Ruleset {
	if g := p.gen.Load(); g != nil {
		return g.Rules
	}
	return nil
}

// classify maps an upstream error to a metric reason and a page status.
func classify(err error) (reason int, status int) {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.Is(err, errLoop):
		return reasonLoop, http.StatusLoopDetected
	case errors.Is(err, errForbiddenDest):
		return reasonForbidden, http.StatusForbidden
	case errors.As(err, &dnsErr):
		return reasonDNS, http.StatusBadGateway
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &recErr):
		return reasonTLS, http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return reasonTimeout, http.StatusGatewayTimeout
	case isDialError(err):
		return reasonDial, http.StatusBadGateway
	}
	return reasonOther, http.StatusBadGateway
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
