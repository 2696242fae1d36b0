package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"vigie/rules"
	"vigie/rules/policy"
)

// errForbiddenDest refuses a connection to an address the proxy must not
// reach on a client's behalf: the gateway itself, its loopback services
// (control plane, metrics, pprof), link-local and multicast addresses, and
// the school's own networks, unless the flow matrix allows it.
var errForbiddenDest = errors.New("http: destination not allowed")

// clientKey carries, on a request inside an intercepted tunnel (which no
// *conn of ours reads), the address of the device it comes from.
type clientKey struct{}

// clientOf returns the device a dial or a lookup is made for: the client
// of the connection the request arrived on, or the one an intercepted
// tunnel's requests carry. Invalid when unknown (the strictest profile then
// applies, and no flow).
func clientOf(ctx context.Context) netip.Addr {
	if c := connFrom(ctx); c != nil {
		return c.client.Addr()
	}
	a, _ := ctx.Value(clientKey{}).(netip.Addr)
	return a
}

// destAllowed says whether the proxy may open a TCP connection to ap for a
// device at client. Addresses of the internet are allowed; the others only
// when the configuration lists them (AllowDestinations) or the policy has
// a flow for them: a zone-to-zone flow for a school network, a management
// flow for the gateway's own addresses. Loopback, link-local, multicast
// and unspecified addresses never are: what listens there is the
// gateway's own business.
func (p *Proxy) destAllowed(rs *rules.Ruleset, client netip.Addr, ap netip.AddrPort) bool {
	if p.cfg.NoDestinationCheck {
		return true
	}
	a := ap.Addr().Unmap()
	for _, pfx := range p.cfg.AllowDestinations {
		if pfx.Contains(a) {
			return true
		}
	}
	if a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || !a.IsValid() {
		return false
	}
	local := p.local.has(a)
	if rs == nil {
		return !local
	}
	to := ""
	if !local {
		if to, _ = rs.Zone(p.cfg.UAI, a); to == "" {
			return true // the internet: the common case, decided here
		}
	}
	from, _ := rs.Zone(p.cfg.UAI, client)
	if from == "" {
		return false
	}
	if local {
		return flowAllows(rs.Firewall().Management, from, "", ap.Port())
	}
	return flowAllows(rs.Firewall().Flows, from, to, ap.Port())
}

// egressAllowed says whether the device at client may have the proxy open
// TCP port on an internet address ap for it: the explicit proxy's
// connections leave from the gateway, where the zone matrix cannot see
// them, so the proxy applies the zone's internet lines itself. The web
// service allows any port the profile's CONNECT ports allow (the proxy
// checks those); a protocol and ports line allows what it names. A client
// in no zone, and the addresses the configuration allows, are not checked
// here (the strictest profile and AllowDestinations rule them).
func (p *Proxy) egressAllowed(rs *rules.Ruleset, client netip.Addr, ap netip.AddrPort) bool {
	if rs == nil || p.cfg.NoDestinationCheck {
		return true
	}
	a := ap.Addr().Unmap()
	for _, pfx := range p.cfg.AllowDestinations {
		if pfx.Contains(a) {
			return true
		}
	}
	if p.local.has(a) {
		return true // the gateway's own: destAllowed's business
	}
	if to, _ := rs.Zone(p.cfg.UAI, a); to != "" {
		return true // the school's networks: destAllowed's business
	}
	from, _ := rs.Zone(p.cfg.UAI, client)
	if from == "" {
		return true
	}
	for _, f := range rs.Firewall().Internet {
		if f.From != from || f.Action == "deny" {
			continue
		}
		if slices.Contains(f.Services, "web") {
			return true
		}
		if len(f.Services) > 0 || f.Proto != "" && f.Proto != "tcp" {
			continue
		}
		if len(f.Ports) == 0 {
			return true
		}
		for _, ps := range f.Ports {
			if lo, hi, err := policy.PortSpan(ps); err == nil && lo <= ap.Port() && ap.Port() <= hi {
				return true
			}
		}
	}
	return false
}

// flowAllows reports whether one of flows lets zone from reach zone to
// (any zone when to is empty: the gateway) on TCP port.
func flowAllows(flows []policy.Flow, from, to string, port uint16) bool {
	for _, f := range flows {
		if f.From != from || (to != "" && f.To != to) || (f.Proto != "" && f.Proto != "tcp") {
			continue
		}
		if f.Action != "" && f.Action != "allow" && f.Action != "accept" {
			continue
		}
		if len(f.Ports) == 0 {
			return true
		}
		for _, ps := range f.Ports {
			if lo, hi, err := policy.PortSpan(ps); err == nil && lo <= port && port <= hi {
				return true
			}
		}
	}
	return false
}

// localAddrs are the gateway's own addresses, re-read at most every
// localTTL: interfaces come and go (a WAN address from DHCP, IPv6 coming
// up) while the proxy runs. Readers take the snapshot without a lock.
type localAddrs struct {
	snap atomic.Pointer[localSnap]
	mu   sync.Mutex // one re-read at a time
	// list reads the interface addresses (net.InterfaceAddrs).
	list func() ([]net.Addr, error)
}

type localSnap struct {
	read  time.Time
	addrs map[netip.Addr]bool
}

const localTTL = 30 * time.Second

func (l *localAddrs) has(a netip.Addr) bool {
	s := l.snap.Load()
	if s == nil || time.Since(s.read) > localTTL {
		s = l.refresh()
	}
	return s.addrs[a]
}

func (l *localAddrs) refresh() *localSnap {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.snap.Load(); s != nil && time.Since(s.read) <= localTTL {
		return s
	}
	list := l.list
	if list == nil {
		list = net.InterfaceAddrs
	}
	s := &localSnap{read: time.Now(), addrs: map[netip.Addr]bool{}}
	if ifas, err := list(); err == nil {
		for _, ia := range ifas {
			if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
				s.addrs[pfx.Addr().Unmap()] = true
			}
		}
	}
	l.snap.Store(s)
	return s
}

// splitTarget reads a CONNECT target or an absolute URL's host: host and
// port, the port defaulting to def.
func splitTarget(target string, def uint16) (host string, port uint16, err error) {
	h, ps, err := net.SplitHostPort(target)
	if err != nil {
		// No port: the whole is the host (brackets around IPv6 removed).
		return rules.StripPort(target), def, nil
	}
	n, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("http: bad port in %q", target)
	}
	return h, uint16(n), nil
}
