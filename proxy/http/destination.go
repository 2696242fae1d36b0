package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
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

// errLoop refuses a dial back to the proxy itself.
var errLoop = errors.New("http: destination is the proxy itself")

// clientKey carries, on a request inside an intercepted tunnel (which no
// *conn of ours reads), the address of the device it comes from.
type clientKey struct{}

// clientOf returns the device a dial or a lookup is made for: the client
// of the connection the request arrived on, or the one an intercepted
// tunnel's requests carry. Invalid when unknown (the strictest profile then
// applies, and no flow).
func clientOf(ctx context.Context) netip.Addr {
	if c, _ := ctx.Value(connKey{}).(*conn); c != nil {
		return c.client.Addr()
	}
	a, _ := ctx.Value(clientKey{}).(netip.Addr)
	return a
}

func (p *Proxy) resolve(ctx context.Context, client netip.Addr, host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeouts.Dial)
	defer cancel()
	ips, err := p.deps.Resolve(ctx, client, host)
	if err != nil {
		return nil, fmt.Errorf("http: resolve %q: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("http: resolve %q: no address", host)
	}
	return ips, nil
}

func defaultResolve(ctx context.Context, _ netip.Addr, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// blockedName is the resolver's refusal of a name for the device's
// profile (dns.BlockedError): a CNAME leading to a blocked name.
type blockedName interface {
	error
	BlockedCategory() string
}

// pickDest resolves host for x's device and returns the first address the
// proxy may connect to on port, or the category of its refusal: a name
// the DNS filter blocks for the device (a CNAME to a blocked name), or
// no address destAllowed and egressAllowed accept. Within one client
// connection the last answer is reused for a short while: keep-alive
// requests to one site cost one lookup.
func (p *Proxy) pickDest(ctx context.Context, x *exchange, host string, port uint16) (netip.AddrPort, string, error) {
	var client netip.Addr
	if x.c != nil {
		client = x.c.client.Addr()
	}
	var rs *rules.Ruleset
	if x.gen != nil {
		rs = x.gen.Rules
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else if ips = x.c.lookedUp(host, p.now()); ips == nil {
		ips, err = p.resolve(ctx, client, host)
		var be blockedName
		if errors.As(err, &be) {
			return netip.AddrPort{}, be.BlockedCategory(), err
		}
		if err != nil {
			return netip.AddrPort{}, "", err
		}
		x.c.remember(host, ips, p.now())
	}
	refusal := catForbidden
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), port)
		if p.isOwn(ap) {
			return netip.AddrPort{}, "", fmt.Errorf("http: %s: %w", ap, errLoop)
		}
		if !p.destAllowed(rs, client, ap) {
			continue
		}
		if x.entry == entryExplicit && !p.egressAllowed(rs, client, ap) {
			refusal = catNoEgress
			continue
		}
		return ap, "", nil
	}
	return netip.AddrPort{}, refusal, fmt.Errorf("http: %s: %w", host, errForbiddenDest)
}

// lookupReuse is how long a keep-alive connection reuses its last lookup.
const lookupReuse = 10 * time.Second

// lookedUp returns the addresses of host if this connection looked it up
// moments ago (nil otherwise, or on a nil connection).
func (c *conn) lookedUp(host string, now time.Time) []netip.Addr {
	if c == nil || c.looked != host || now.After(c.lookedUntil) {
		return nil
	}
	return c.lookedIPs
}

func (c *conn) remember(host string, ips []netip.Addr, now time.Time) {
	if c == nil {
		return
	}
	c.looked, c.lookedIPs, c.lookedUntil = host, ips, now.Add(lookupReuse)
}

// destinationOK checks that host resolves, through the edge's resolver, to
// the original destination of transparent connection c.
func (p *Proxy) destinationOK(ctx context.Context, c *conn, host string) bool {
	if p.cfg.NoDestinationCheck || c == nil {
		return true
	}
	h := rules.StripPort(host)
	if ip, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return ip.Unmap() == c.orig.Addr()
	}
	if c.checked != "" && c.checked == h {
		return true
	}
	ips, err := p.resolve(ctx, c.client.Addr(), h)
	if err != nil {
		p.log.Debug("destination check: cannot resolve", "host", h, "err", err)
		return false
	}
	for _, ip := range ips {
		if ip.Unmap() == c.orig.Addr() {
			c.checked = h
			return true
		}
	}
	return false
}

// resolvesTo says whether name resolves, for x's device, to the address ip.
func (p *Proxy) resolvesTo(x *exchange, name, ip string) bool {
	want, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeouts.Dial)
	defer cancel()
	ips, err := p.resolve(ctx, x.c.client.Addr(), name)
	if err != nil {
		return false
	}
	for _, a := range ips {
		if a.Unmap() == want.Unmap() {
			return true
		}
	}
	return false
}

// looped reports a transparent connection whose original destination is
// the proxy itself: it was sent straight to the proxy's port, not
// redirected, and forwarding it would loop.
func (c *conn) looped() bool {
	return c.orig == c.local || c.p.isOwn(c.orig)
}

// ownAddrs are the proxy's listening addresses: a dial to one of them is a
// loop (a client asking the proxy for the proxy, or a transparent
// connection that was not redirected).
type ownAddrs struct {
	mu sync.RWMutex
	// exact are specific listen addresses; ports are listen ports whose
	// address is unspecified (every local address).
	exact map[netip.AddrPort]bool
	ports map[uint16]bool
	local map[netip.Addr]bool
}

func (p *Proxy) addOwn(a net.Addr) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return
	}
	o := &p.own
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.exact == nil {
		o.exact, o.ports, o.local = map[netip.AddrPort]bool{}, map[uint16]bool{}, map[netip.Addr]bool{}
	}
	if ap.Addr().IsUnspecified() {
		o.ports[ap.Port()] = true
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range addrs {
				if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
					o.local[pfx.Addr().Unmap()] = true
				}
			}
		}
		return
	}
	o.exact[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
}

func (p *Proxy) isOwn(ap netip.AddrPort) bool {
	o := &p.own
	o.mu.RLock()
	defer o.mu.RUnlock()
	a := ap.Addr().Unmap()
	if o.exact[netip.AddrPortFrom(a, ap.Port())] {
		return true
	}
	if o.ports[ap.Port()] && (a.IsLoopback() || a.IsUnspecified() || o.local[a]) {
		return true
	}
	return false
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
