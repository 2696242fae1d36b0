package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// BlockedError is Resolve's answer for a name the client's profile
// refuses, directly or through a CNAME target.
type BlockedError struct {
	Name, Category string
}

// BlockedCategory is the category the name is refused for.
func (e *BlockedError) BlockedCategory() string { return e.Category }

func (e *BlockedError) Error() string {
	return fmt.Sprintf("dns: %s is blocked (%s)", e.Name, e.Category)
}

// Resolve looks host up as the device at client would through this
// filter: with the client's zone profile (so SafeSearch rewrites and the
// CNAME re-check apply), through the shared cache and the upstreams,
// without a socket. It is the edge's one resolver: the HTTP proxy calls it
// so that the address it connects to is the address the device was given.
// It returns the IPv4 then the IPv6 addresses. The lookups leave no DNS
// journal record (the caller records what it did with them) and are not
// rate-limited.
func (s *Server) Resolve(ctx context.Context, client netip.Addr, host string) ([]netip.Addr, error) {
	if s.up == nil {
		return nil, errors.New("dns: resolve: the filter is not started")
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "" || len(name) > 253 {
		return nil, &net.DNSError{Err: "invalid name", Name: host, IsNotFound: true}
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	// Both families at once: a cache miss costs one upstream round trip,
	// not two.
	six := make(chan result, 1)
	go func() {
		a, err := s.resolveType(client, name, typeAAAA)
		six <- result{a, err}
	}()
	v4, err4 := s.resolveType(client, name, typeA)
	var v6 result
	select {
	case v6 = <-six:
	case <-ctx.Done():
		return nil, fmt.Errorf("dns: resolve %s: %w", name, ctx.Err())
	}
	var blocked *BlockedError
	switch {
	case errors.As(err4, &blocked):
		return nil, err4
	case errors.As(v6.err, &blocked):
		return nil, v6.err
	}
	out := append(v4, v6.addrs...)
	if len(out) > 0 {
		return out, nil
	}
	if err4 != nil {
		return nil, err4
	}
	if v6.err != nil {
		return nil, v6.err
	}
	return nil, &net.DNSError{Err: "no address", Name: host, IsNotFound: true}
}

// resolveType runs one question through the whole query chain (serve) as
// if the client had sent it, and reads the addresses of the answer.
func (s *Server) resolveType(client netip.Addr, name string, qtype uint16) ([]netip.Addr, error) {
	r := s.pool.Get().(*request)
	defer s.pool.Put(r)
	r.pkt = buildQuery(r.in[:0], name, qtype, false, false)
	r.client = netip.AddrPortFrom(client.Unmap(), 0)
	r.tcp, r.udp, r.conn, r.batch, r.oob, r.internal = true, nil, nil, nil, nil, true
	defer func() { r.internal = false }()
	s.serve(r)
	if r.outcome == verdictBlock {
		cat := r.v.Category
		return nil, &BlockedError{Name: name, Category: cat}
	}
	var m mdns.Msg
	if err := m.Unpack(r.out); err != nil {
		return nil, fmt.Errorf("dns: resolve %s: %w", name, err)
	}
	switch m.Rcode {
	case mdns.RcodeSuccess:
	case mdns.RcodeNameError:
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	default:
		return nil, &net.DNSError{Err: "server failure (" + mdns.RcodeToString[m.Rcode] + ")", Name: name, IsTemporary: true}
	}
	var out []netip.Addr
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *mdns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok && qtype == typeA {
				out = append(out, a)
			}
		case *mdns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA.To16()); ok && qtype == typeAAAA {
				out = append(out, a)
			}
		}
	}
	return out, nil
}
