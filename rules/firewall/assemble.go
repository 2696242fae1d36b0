package firewall

import (
	"sort"
)

// Priorities of the base chains, as nft names them.
const (
	prioFilter = 0
	prioDstNAT = -100
	prioSrcNAT = 100
)

// assemble lays out the chains. A packet meets them in this order:
//
//	prerouting (nat)   filtered zones: DNS always, web to the internet
//	                   redirected to the edge's filter and proxy
//	input (filter)     the gateway itself: its services, then management
//	forward (filter)   zone to zone (the matrix, then default deny), then
//	                   the bypass drops (QUIC, DoT), then zone to internet
//	postrouting (nat)  masquerade on the WAN leg
//
// Each base chain classifies the packet's source zone once and jumps
// (goto) to that zone's own chain, so a packet walks only its zone's rules.
func (b *builder) assemble() *Ruleset {
	rs := &Ruleset{UAI: b.src.School.UAI, Sets: b.allSets()}

	// prerouting: decided before routing, so that redirected packets
	// reach the gateway's own listeners and never the forward chain.
	pre := Chain{Name: "prerouting", Base: &Base{Type: TypeNAT, Hook: HookPrerouting, Priority: prioDstNAT}}
	// Traffic looped back by the gateway itself is never a client's.
	pre.Rules = append(pre.Rules, Rule{Match: []Match{{Kind: MatchIIfName, Name: "lo"}}, Verdict: Verdict{Kind: Accept}})
	var dnat []Chain
	for _, z := range b.zones {
		if !z.filtered {
			continue
		}
		name := "dnat_" + z.name
		for _, a := range b.srcAlts(z) {
			pre.Rules = append(pre.Rules, Rule{Match: a, Verdict: Verdict{Kind: Goto, Chain: name}})
		}
		dnat = append(dnat, b.dnatChain(z, name))
	}
	rs.Chains = append(rs.Chains, pre)
	rs.Chains = append(rs.Chains, dnat...)

	// input: the gateway answers its zones' DNS and proxy traffic and the
	// management lines; anything else addressed to it is dropped.
	in := Chain{Name: "input", Base: &Base{Type: TypeFilter, Hook: HookInput, Priority: prioFilter, Drop: true}}
	in.Rules = append(in.Rules, b.commonHead(true)...)
	// Management from a source prefix comes before the zones: the prefix
	// may lie inside a zone (a supervision host) and must not be sent to
	// that zone's chain, where it would meet the zone's default drop.
	for _, f := range b.mgmt {
		var src [][]Match
		if f.fromSet4 != "" {
			src = append(src, []Match{{Kind: MatchSAddr, Name: f.fromSet4, Family: IPv4}})
		}
		if f.fromSet6 != "" {
			src = append(src, []Match{{Kind: MatchSAddr, Name: f.fromSet6, Family: IPv6}})
		}
		if src != nil {
			in.Rules = append(in.Rules, b.mgmtRules(f, src, ReasonInput)...)
		}
	}
	var inZones []Chain
	for _, z := range b.zones {
		name := "input_" + z.name
		for _, a := range b.srcAlts(z) {
			in.Rules = append(in.Rules, Rule{Match: a, Verdict: Verdict{Kind: Goto, Chain: name}})
		}
		inZones = append(inZones, b.inputChain(z, name))
	}
	// Management from outside the school (the académie's network).
	for _, f := range b.mgmt {
		if f.fromInternet {
			in.Rules = append(in.Rules, b.mgmtRules(f, b.wanIn(), ReasonInput)...)
		}
	}
	in.Rules = append(in.Rules, Rule{Counter: ReasonInput, Verdict: Verdict{Kind: Drop}})
	rs.Chains = append(rs.Chains, in)
	rs.Chains = append(rs.Chains, inZones...)

	// forward: what crosses the gateway. Established and related packets
	// pass first (the fast path, and why a new generation never cuts a
	// running download); new connections go through their zone's chain.
	fwd := Chain{Name: "forward", Base: &Base{Type: TypeFilter, Hook: HookForward, Priority: prioFilter, Drop: true}}
	fwd.Rules = append(fwd.Rules, b.commonHead(false)...)
	var fwdZones []Chain
	for _, z := range b.zones {
		name := "forward_" + z.name
		for _, a := range b.srcAlts(z) {
			fwd.Rules = append(fwd.Rules, Rule{Match: a, Verdict: Verdict{Kind: Goto, Chain: name}})
		}
		fwdZones = append(fwdZones, b.forwardChain(z, name))
	}
	// A source in no zone (the internet, an unplanned subnet) opens nothing.
	fwd.Rules = append(fwd.Rules, Rule{Counter: ReasonForward, Verdict: Verdict{Kind: Drop}})
	rs.Chains = append(rs.Chains, fwd)
	rs.Chains = append(rs.Chains, fwdZones...)

	if b.cfg.Masquerade {
		post := Chain{Name: "postrouting", Base: &Base{Type: TypeNAT, Hook: HookPostrouting, Priority: prioSrcNAT}}
		post.Rules = append(post.Rules, Rule{
			Match:   []Match{{Kind: MatchOIfName, Name: b.cfg.WANInterface}},
			Verdict: Verdict{Kind: Masquerade},
		})
		rs.Chains = append(rs.Chains, post)
	}

	if g := b.cfg.DropLogGroup; g != 0 {
		for _, c := range rs.Chains {
			for i := range c.Rules {
				if r := &c.Rules[i]; r.Verdict.Kind == Drop && r.Counter != "" {
					r.LogGroup = g
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			if r.Counter != "" && !seen[r.Counter] {
				seen[r.Counter] = true
				rs.Counters = append(rs.Counters, r.Counter)
			}
		}
	}
	sort.Strings(rs.Counters)
	return rs
}

// commonHead starts the input and forward chains.
func (b *builder) commonHead(input bool) []Rule {
	var rules []Rule
	if input {
		// The gateway talking to itself.
		rules = append(rules, Rule{Match: []Match{{Kind: MatchIIfName, Name: "lo"}}, Verdict: Verdict{Kind: Accept}})
	}
	rules = append(rules,
		Rule{Match: []Match{{Kind: MatchCtState, State: CtEstablished | CtRelated}}, Verdict: Verdict{Kind: Accept}},
		Rule{Match: []Match{{Kind: MatchCtState, State: CtInvalid}}, Counter: ReasonInvalid, Verdict: Verdict{Kind: Drop}},
	)
	if input {
		// Ping, path MTU discovery and IPv6 neighbour discovery keep the
		// network working; they open no service.
		rules = append(rules,
			Rule{Match: []Match{{Kind: MatchL4Proto, Proto: ProtoICMP}}, Verdict: Verdict{Kind: Accept}},
			Rule{Match: []Match{{Kind: MatchL4Proto, Proto: ProtoICMPv6}}, Verdict: Verdict{Kind: Accept}},
		)
	}
	return rules
}

// dnatChain redirects a filtered zone's DNS (whatever the resolver it
// asked) to the edge's filter, and its web traffic to the internet (and to
// the gateway's block page) to the edge's transparent proxy.
func (b *builder) dnatChain(z *zone, name string) Chain {
	c := Chain{Name: name}
	redirect := func(proto uint8, port, to uint16) Rule {
		return Rule{
			Match:   []Match{{Kind: MatchL4Proto, Proto: proto}, {Kind: MatchDPort, Ports: PortRange{port, port}}},
			Verdict: Verdict{Kind: Redirect, Port: to},
		}
	}
	// DNS first, before the exemption below: a pupil asking any resolver,
	// inside the school or out, is answered by the filter. A zone whose
	// lines do not open DNS resolves nothing: its port 53 then meets the
	// forward chain's default drop (counted as "dns").
	if b.internetAllows(z, ProtoUDP, 53) {
		c.Rules = append(c.Rules, redirect(ProtoUDP, 53, b.cfg.DNSPort))
	}
	if b.internetAllows(z, ProtoTCP, 53) {
		c.Rules = append(c.Rules, redirect(ProtoTCP, 53, b.cfg.DNSPort))
	}
	// Web traffic to the gateway itself is the block page's: the DNS filter
	// answers blocked names with the gateway's address, and the proxy
	// serves the page (it refuses any other host there, so this opens
	// nothing).
	for _, p := range []struct{ port, to uint16 }{{80, b.cfg.HTTPPort}, {443, b.cfg.HTTPSPort}} {
		if !b.internetAllows(z, ProtoTCP, p.port) {
			continue
		}
		r := redirect(ProtoTCP, p.port, p.to)
		r.Match = append([]Match{{Kind: MatchLocalDst}}, r.Match...)
		c.Rules = append(c.Rules, r)
	}
	// Web traffic between zones is the matrix's business, not the proxy's.
	if b.lan4 != "" {
		c.Rules = append(c.Rules, Rule{Match: []Match{{Kind: MatchDAddr, Name: b.lan4, Family: IPv4}}, Verdict: Verdict{Kind: Accept}})
	}
	if b.lan6 != "" {
		c.Rules = append(c.Rules, Rule{Match: []Match{{Kind: MatchDAddr, Name: b.lan6, Family: IPv6}}, Verdict: Verdict{Kind: Accept}})
	}
	// Only what the matrix lets out goes to the proxy: the proxy dials from
	// the gateway itself, so redirecting a zone that may not reach the
	// internet would open the internet to it.
	if b.internetAllows(z, ProtoTCP, 80) {
		c.Rules = append(c.Rules, redirect(ProtoTCP, 80, b.cfg.HTTPPort))
	}
	if b.internetAllows(z, ProtoTCP, 443) {
		c.Rules = append(c.Rules, redirect(ProtoTCP, 443, b.cfg.HTTPSPort))
	}
	return c
}

// inputChain is what a zone may reach on the gateway itself.
func (b *builder) inputChain(z *zone, name string) Chain {
	c := Chain{Name: name}
	// The edge's own services, where redirected traffic arrives (and where
	// clients configured with the gateway as resolver or proxy go), for
	// the zones whose lines open them: the filter and the proxy reach the
	// internet on the zone's behalf, so they are the zone's egress too.
	type svc struct {
		proto uint8
		port  uint16
	}
	var open []svc
	if b.internetAllows(z, ProtoUDP, 53) {
		open = append(open, svc{ProtoUDP, b.cfg.DNSPort})
	}
	if b.internetAllows(z, ProtoTCP, 53) {
		open = append(open, svc{ProtoTCP, b.cfg.DNSPort})
	}
	if b.internetAllows(z, ProtoTCP, 80) || b.internetAllows(z, ProtoTCP, 443) {
		open = append(open, svc{ProtoTCP, b.cfg.HTTPPort}, svc{ProtoTCP, b.cfg.HTTPSPort})
		if b.cfg.ExplicitPort != 0 {
			open = append(open, svc{ProtoTCP, b.cfg.ExplicitPort})
		}
	}
	seen := map[svc]bool{}
	for _, s := range open {
		if seen[s] {
			continue
		}
		seen[s] = true
		c.Rules = append(c.Rules, Rule{
			Match:   []Match{{Kind: MatchL4Proto, Proto: s.proto}, {Kind: MatchDPort, Ports: PortRange{s.port, s.port}}},
			Verdict: Verdict{Kind: Accept},
		})
	}
	for _, f := range b.mgmt {
		if f.from == z {
			c.Rules = append(c.Rules, b.mgmtRules(f, inZone, ReasonInput+"."+z.name)...)
		}
	}
	c.Rules = append(c.Rules, Rule{Counter: ReasonInput + "." + z.name, Verdict: Verdict{Kind: Drop}})
	return c
}

// forwardChain is what a zone may reach through the gateway.
func (b *builder) forwardChain(z *zone, name string) Chain {
	c := Chain{Name: name}
	zoneDrop := ReasonZone + "." + z.name
	// The matrix between zones, in the policy's order: first match wins.
	for _, f := range b.flows {
		if f.from == z {
			c.Rules = append(c.Rules, b.flowRules(f, inZone, b.dstAlts(f.to), zoneDrop, f.comment)...)
		}
	}
	// Default deny between zones: whatever is addressed to a zone, by
	// address or by its interface, and was not allowed above.
	drop := func(m Match) {
		c.Rules = append(c.Rules, Rule{Match: []Match{m}, Counter: zoneDrop, Verdict: Verdict{Kind: Drop}})
	}
	if b.lan4 != "" {
		drop(Match{Kind: MatchDAddr, Name: b.lan4, Family: IPv4})
	}
	if b.lan6 != "" {
		drop(Match{Kind: MatchDAddr, Name: b.lan6, Family: IPv6})
	}
	for _, oz := range b.zones {
		for _, ifn := range oz.ifaces {
			drop(Match{Kind: MatchOIfName, Name: ifn})
		}
	}
	// Bypass resistance: a filtered zone may not speak QUIC (the proxy
	// sees only TCP) nor DNS over TLS (the filter sees only port 53).
	if z.filtered {
		port := func(proto uint8, p uint16, reason string) {
			c.Rules = append(c.Rules, Rule{
				Match:   []Match{{Kind: MatchL4Proto, Proto: proto}, {Kind: MatchDPort, Ports: PortRange{p, p}}},
				Counter: reason + "." + z.name, Verdict: Verdict{Kind: Drop},
			})
		}
		port(ProtoUDP, 443, ReasonQUIC)
		port(ProtoTCP, 853, ReasonDoT)
		port(ProtoUDP, 853, ReasonDoT)
	}
	// The zone's internet lines, then nothing else.
	var out []Match
	if b.cfg.WANInterface != "" {
		out = []Match{{Kind: MatchOIfName, Name: b.cfg.WANInterface}}
	}
	for _, f := range b.internet {
		if f.from != z {
			continue
		}
		for _, ef := range b.expandServices(f, z) {
			c.Rules = append(c.Rules, b.flowRules(ef, inZone, [][]Match{out}, ReasonInternet+"."+z.name, ef.comment)...)
		}
	}
	// Default deny to the internet, counted by what the traffic looks
	// like: the known ways around the filter first, then the rest.
	for _, d := range egressDrops {
		for _, pr := range d.ports {
			c.Rules = append(c.Rules, Rule{
				Match:   []Match{{Kind: MatchL4Proto, Proto: d.proto}, {Kind: MatchDPort, Ports: PortRange{pr, pr}}},
				Counter: d.reason + "." + z.name, Verdict: Verdict{Kind: Drop},
			})
		}
	}
	c.Rules = append(c.Rules, Rule{Counter: ReasonInternet + "." + z.name, Verdict: Verdict{Kind: Drop}})
	return c
}

// egressDrops are the named reasons of the internet default deny: the
// bypasses a pupil tries first. Unnamed traffic counts as "internet".
var egressDrops = []struct {
	reason string
	proto  uint8
	ports  []uint16
}{
	{ReasonDNS, ProtoUDP, []uint16{53}},
	{ReasonDNS, ProtoTCP, []uint16{53}},
	{ReasonVPN, ProtoUDP, []uint16{500, 1194, 4500, 51820}},
	{ReasonVPN, ProtoTCP, []uint16{1194, 1723}},
	{ReasonSSH, ProtoTCP, []uint16{22}},
	{ReasonProxy, ProtoTCP, []uint16{1080, 3128, 8080, 8118}},
}

// serviceTraffic is what each service means on the wire.
func serviceTraffic(s string, metricsPort uint16) []struct {
	proto uint8
	port  uint16
} {
	type pp = struct {
		proto uint8
		port  uint16
	}
	switch s {
	case ServiceWeb:
		return []pp{{ProtoTCP, 80}, {ProtoTCP, 443}, {ProtoUDP, 443}}
	case ServiceDNS:
		return []pp{{ProtoUDP, 53}, {ProtoTCP, 53}}
	case ServiceNTP:
		return []pp{{ProtoUDP, 123}}
	case ServiceMetrics:
		if metricsPort != 0 {
			return []pp{{ProtoTCP, metricsPort}}
		}
	}
	return nil
}

// expandServices turns a services line into the plain lines the forward
// chain needs for zone z; other lines are returned as they are. A
// filtered zone's web and DNS never cross the forward chain (prerouting
// sends them to the edge, which dials out itself), so they expand to
// nothing there, and QUIC stays dropped above.
func (b *builder) expandServices(f flow, z *zone) []flow {
	if len(f.services) == 0 {
		return []flow{f}
	}
	var out []flow
	for _, s := range f.services {
		if z != nil && z.filtered && (s == ServiceWeb || s == ServiceDNS) {
			continue
		}
		comment := f.comment
		if comment == "" {
			comment = "service " + s
		}
		for _, t := range serviceTraffic(s, b.cfg.MetricsPort) {
			out = append(out, flow{from: f.from, fromInternet: f.fromInternet, fromSet4: f.fromSet4, fromSet6: f.fromSet6,
				protos: []uint8{t.proto}, ports: []PortRange{{t.port, t.port}}, accept: true, comment: comment})
		}
	}
	return out
}

// mgmtRules expands a management line (services included) into rules of
// the input chain.
func (b *builder) mgmtRules(f flow, src [][]Match, dropCounter string) []Rule {
	var rules []Rule
	for _, ef := range b.expandServices(f, nil) {
		rules = append(rules, b.flowRules(ef, src, nil, dropCounter, ef.comment)...)
	}
	return rules
}

// inZone is the source match inside a zone's own chain: the base chain
// already checked the source when it jumped there.
var inZone = [][]Match{nil}

// wanIn is the source match of management from outside the school.
func (b *builder) wanIn() [][]Match {
	if b.cfg.WANInterface == "" {
		return [][]Match{nil}
	}
	return [][]Match{{{Kind: MatchIIfName, Name: b.cfg.WANInterface}}}
}

// srcAlts are the ways a packet is from zone z: one of its interfaces
// and, when it has prefixes, one of them (both must hold, so an address
// arriving on the wrong leg is not trusted).
func (b *builder) srcAlts(z *zone) [][]Match {
	return alts(z, MatchIIfName, MatchSAddr)
}

// dstAlts are the ways a packet is addressed to zone z.
func (b *builder) dstAlts(z *zone) [][]Match {
	return alts(z, MatchOIfName, MatchDAddr)
}

func alts(z *zone, ifKind, addrKind MatchKind) [][]Match {
	var ifs, addrs []Match
	for _, n := range z.ifaces {
		ifs = append(ifs, Match{Kind: ifKind, Name: n})
	}
	if z.set4 != "" {
		addrs = append(addrs, Match{Kind: addrKind, Name: z.set4, Family: IPv4})
	}
	if z.set6 != "" {
		addrs = append(addrs, Match{Kind: addrKind, Name: z.set6, Family: IPv6})
	}
	var out [][]Match
	switch {
	case len(ifs) > 0 && len(addrs) > 0:
		for _, i := range ifs {
			for _, a := range addrs {
				out = append(out, []Match{i, a})
			}
		}
	case len(ifs) > 0:
		for _, i := range ifs {
			out = append(out, []Match{i})
		}
	default:
		for _, a := range addrs {
			out = append(out, []Match{a})
		}
	}
	return out
}

// flowRules expands one line of the matrix into rules: every way of being
// from the source times every way of reaching the destination times each
// protocol and port range. Combinations that can never match (an IPv4
// source with an IPv6 destination, ICMPv4 to an IPv6 set) are left out.
// dst nil means no destination match (the gateway itself).
func (b *builder) flowRules(f flow, src, dst [][]Match, dropCounter, comment string) []Rule {
	if dst == nil {
		dst = [][]Match{nil}
	}
	protos := f.protos
	if protos == nil {
		protos = []uint8{0}
	}
	ports := f.ports
	if ports == nil {
		ports = []PortRange{{}}
	}
	verdict := Verdict{Kind: Accept}
	counter := ""
	if !f.accept {
		verdict, counter = Verdict{Kind: Drop}, dropCounter
	}
	var rules []Rule
	for _, s := range src {
		for _, d := range dst {
			fam, ok := family(0, s)
			if !ok {
				continue
			}
			if fam, ok = family(fam, d); !ok {
				continue
			}
			for _, p := range protos {
				if (p == ProtoICMP && fam == IPv6) || (p == ProtoICMPv6 && fam == IPv4) {
					continue
				}
				for _, pr := range ports {
					m := append(append([]Match{}, s...), d...)
					if p != 0 {
						m = append(m, Match{Kind: MatchL4Proto, Proto: p})
					}
					if pr.Lo != 0 {
						m = append(m, Match{Kind: MatchDPort, Ports: pr})
					}
					rules = append(rules, Rule{Match: m, Counter: counter, Verdict: verdict, Comment: comment})
				}
			}
		}
	}
	return rules
}

// family folds the address family of ms into fam (0: none yet); ok is
// false when they conflict.
func family(fam Family, ms []Match) (Family, bool) {
	for _, m := range ms {
		if m.Kind != MatchSAddr && m.Kind != MatchDAddr {
			continue
		}
		if fam != 0 && fam != m.Family {
			return fam, false
		}
		fam = m.Family
	}
	return fam, true
}

// internetAllows evaluates a zone's internet lines for one protocol and
// port, first match wins, default deny: the same answer the forward chain
// would give.
func (b *builder) internetAllows(z *zone, proto uint8, port uint16) bool {
	for _, f := range b.internet {
		if f.from != z {
			continue
		}
		if len(f.services) > 0 {
			for _, s := range f.services {
				for _, t := range serviceTraffic(s, 0) {
					if t.proto == proto && t.port == port {
						return true
					}
				}
			}
			continue
		}
		if f.protos != nil && !containsProto(f.protos, proto) {
			continue
		}
		if f.ports != nil && !containsPort(f.ports, port) {
			continue
		}
		return f.accept
	}
	return false
}

func containsProto(ps []uint8, p uint8) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func containsPort(rs []PortRange, p uint16) bool {
	for _, r := range rs {
		if r.Lo <= p && p <= r.Hi {
			return true
		}
	}
	return false
}
