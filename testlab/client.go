package testlab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/miekg/dns"

	"vigie/testlab/netns"
)

// Client acts from inside a namespace, as a device of the school would:
// it resolves names through the resolver it is configured with and
// connects directly (no proxy settings: the firewall makes it transparent).
type Client struct {
	NS *netns.NS
	// Resolver is the DNS server the device is configured with.
	Resolver string
	// IPv6 makes the device resolve AAAA records and connect over IPv6.
	IPv6 bool
	lab  *Lab
}

// Pupil6 is a device of zone pedagogique on IPv6 only, using the gateway
// as resolver.
func (l *Lab) Pupil6() *Client {
	return &Client{NS: l.Eleve, Resolver: EdgePedAddr6, IPv6: true, lab: l}
}

// Pupil is a device in zone pedagogique configured with a public
// resolver, as a pupil trying to step around the filter would do.
func (l *Lab) Pupil() *Client { return &Client{NS: l.Eleve, Resolver: PublicResolverAddr, lab: l} }

// Secretary is a device in zone administratif using the gateway as resolver.
func (l *Lab) Secretary() *Client {
	return &Client{NS: l.Secretariat, Resolver: EdgeAdmAddr, lab: l}
}

// Query asks server (an address, port 53) one question over UDP.
func (c *Client) Query(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	nc, err := c.NS.Dial(ctx, "udp", net.JoinHostPort(server, "53"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(1232, false)
	conn := &dns.Conn{Conn: nc}
	if err := conn.WriteMsg(q); err != nil {
		return nil, fmt.Errorf("testlab: query %s at %s: %w", name, server, err)
	}
	m, err := conn.ReadMsg()
	if err != nil {
		return nil, fmt.Errorf("testlab: query %s at %s: %w", name, server, err)
	}
	return m, nil
}

// Resolve looks name up through the client's resolver; an answer without
// an A record is an error carrying the rcode.
func (c *Client) Resolve(ctx context.Context, name string) (netip.Addr, error) {
	qtype := dns.TypeA
	if c.IPv6 {
		qtype = dns.TypeAAAA
	}
	m, err := c.Query(ctx, c.Resolver, name, qtype)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, rr := range m.Answer {
		switch a := rr.(type) {
		case *dns.A:
			addr, _ := netip.AddrFromSlice(a.A.To4())
			return addr, nil
		case *dns.AAAA:
			addr, _ := netip.AddrFromSlice(a.AAAA.To16())
			return addr, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("testlab: %s: no address (%s)", name, dns.RcodeToString[m.Rcode])
}

// dial connects to host:port, resolving host through the client's resolver.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err != nil {
		a, err := c.Resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		addr = net.JoinHostPort(a.String(), port)
	}
	return c.NS.Dial(ctx, network, addr)
}

// HTTP is an HTTP client of this device: it trusts the lab internet's CA
// (and only it), uses no proxy, keeps no connection between requests.
func (c *Client) HTTP() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         c.dial,
			TLSClientConfig:     &tls.Config{RootCAs: c.lab.Net.CAPool},
			DisableKeepAlives:   true,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ProxyHTTP is an HTTP client of this device configured with the explicit
// proxy at proxyAddr (an address), trusting roots (the lab internet's CA
// when nil).
func (c *Client) ProxyHTTP(proxyAddr string, roots *x509.CertPool) *http.Client {
	if roots == nil {
		roots = c.lab.Net.CAPool
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}),
			DialContext:         c.NS.Dial,
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			DisableKeepAlives:   true,
			TLSHandshakeTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get fetches url and returns the response with its body read.
func (c *Client) Get(ctx context.Context, url string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.HTTP().Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp, string(body), err
}

// TLS opens a TLS connection to addr (resolving name if addr is empty)
// with name as server name, verifying against the lab CA, and returns the
// connection state.
func (c *Client) TLS(ctx context.Context, name, addr string) (*tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if addr == "" {
		addr = net.JoinHostPort(name, "443")
	}
	nc, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	tc := tls.Client(nc, &tls.Config{ServerName: name, RootCAs: c.lab.Net.CAPool})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	st := tc.ConnectionState()
	return &st, nil
}

// Connect tries a TCP connection and reports whether it was established
// within timeout (a dropped SYN times out; a refusal fails at once).
func (c *Client) Connect(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := c.NS.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return nc.Close()
}

// SendUDP sends n datagrams to addr and waits up to wait for an echo; it
// returns how many came back.
func (c *Client) SendUDP(ctx context.Context, addr string, n int, wait time.Duration) (int, error) {
	nc, err := c.NS.Dial(ctx, "udp", addr)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	for i := 0; i < n; i++ {
		if _, err := nc.Write([]byte("vigie-lab-probe")); err != nil {
			return 0, err
		}
	}
	got := 0
	buf := make([]byte, 2048)
	nc.SetReadDeadline(time.Now().Add(wait))
	for got < n {
		if _, err := nc.Read(buf); err != nil {
			break
		}
		got++
	}
	return got, nil
}
