package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"vigie/rules/policy"
)

// Config is what the edge adds to the policy: where its own listeners are
// and how it reaches the internet.
type Config struct {
	// DNSPort, HTTPPort and HTTPSPort are where the edge's DNS filter and
	// its transparent HTTP and HTTPS proxy listen: filtered zones' port 53,
	// 80 and 443 are redirected there.
	DNSPort, HTTPPort, HTTPSPort uint16
	// WANInterface is the gateway's internet leg. When set, internet
	// flows leave only through it, "from: internet" management enters only
	// through it, and masquerading uses it.
	WANInterface string
	// Masquerade rewrites the source of what leaves through WANInterface
	// to the gateway's address (schools behind a single public address).
	Masquerade bool
	// DropLogGroup, when set, makes every counted drop rule log what it
	// drops to this NFLOG group (prefix: the counter name), for the
	// journal's dropped-flow records.
	DropLogGroup uint16
	// ExplicitPort is the edge's explicit proxy (0: none). Zones allowed
	// the web service may reach it, as they reach the transparent ports.
	ExplicitPort uint16
	// MetricsPort is the edge's metrics listener (0: none, or loopback
	// only). Only management lines naming the metrics service open it.
	MetricsPort uint16
}

// Limits keep a policy from producing a batch the kernel or a reviewer
// cannot take; real schools are far below them.
const (
	maxZones          = 64
	maxPrefixesInZone = 1 << 16
	maxRules          = 20000
	maxCommentBytes   = 127 // nft refuses comments of 128 bytes and more
)

// Counter reasons: the first part of a named counter ("quic.pedagogique").
const (
	ReasonQUIC     = "quic"     // UDP 443 from a filtered zone
	ReasonDoT      = "dot"      // TCP/UDP 853 from a filtered zone
	ReasonZone     = "zone"     // between zones, outside the matrix
	ReasonInternet = "internet" // to the internet, outside the matrix
	ReasonInput    = "input"    // to the gateway itself, outside management
	ReasonForward  = "forward"  // forwarded from no known zone
	ReasonInvalid  = "invalid"  // conntrack state invalid
	// Egress a zone's internet lines do not open, by what it looks like:
	// the usual ways around the filter get their own counters, so that a
	// dashboard shows a VPN attempt as such rather than as "internet".
	ReasonDNS   = "dns"   // TCP/UDP 53 to a resolver other than the filter
	ReasonVPN   = "vpn"   // OpenVPN, WireGuard, IPsec, PPTP
	ReasonSSH   = "ssh"   // TCP 22
	ReasonProxy = "proxy" // web proxies and SOCKS (1080, 3128, 8080, 8118)
)

// Services a matrix line may name instead of protocols and ports.
const (
	// ServiceWeb is HTTP and HTTPS, through the edge's proxy for filtered
	// zones (redirected), straight out for unfiltered ones.
	ServiceWeb = "web"
	// ServiceDNS is name resolution, through the edge's DNS filter for
	// filtered zones (redirected), straight out for unfiltered ones.
	ServiceDNS = "dns"
	// ServiceNTP is time synchronisation (UDP 123).
	ServiceNTP = "ntp"
	// ServiceMetrics is the edge's metrics listener (management only).
	ServiceMetrics = "metrics"
)

// internetServices and managementServices are what each section accepts.
var (
	internetServices   = []string{ServiceWeb, ServiceDNS, ServiceNTP}
	managementServices = []string{ServiceMetrics}
)

var (
	// zoneName matches the policy's identifiers; zone names become parts
	// of nftables set, chain and counter names.
	zoneName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	// ifName accepts what Linux accepts (no '/', ':' or space, 15 bytes at
	// most) minus what would need quoting rules of its own in nft text.
	ifName = regexp.MustCompile(`^[A-Za-z0-9_.@+-]{1,15}$`)
)

// zone is a validated zone of the school.
type zone struct {
	name       string
	ifaces     []string
	v4, v6     []netip.Prefix
	set4, set6 string
	filtered   bool
}

// flow is a validated line of the matrix.
type flow struct {
	from *zone
	// fromInternet is a management line reaching the gateway from outside.
	fromInternet bool
	// fromSet4 and fromSet6 name the address sets of a management line
	// whose source is a prefix (the académie's Prometheus, say).
	fromSet4, fromSet6 string
	// services are what a services line opens (web, dns, ntp, metrics);
	// such a line has no protos nor ports of its own.
	services []string
	to       *zone
	protos   []uint8     // nil: any protocol
	ports    []PortRange // nil: any port
	accept   bool
	comment  string
}

type builder struct {
	cfg      Config
	src      Source
	zones    []*zone
	byName   map[string]*zone
	flows    []flow // zone to zone
	internet []flow
	mgmt     []flow
	lan4     string
	lan6     string
	// mgmtSets hold the prefixes of management lines from a prefix.
	mgmtSets []Set
	errs     []error
}

func (b *builder) bad(field, format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

// Build validates a school's zones and flow matrix and compiles them into
// a Ruleset. Every problem is reported, each naming its field.
func Build(src Source, cfg Config) (*Ruleset, error) {
	b := &builder{cfg: cfg, src: src, byName: map[string]*zone{}}
	b.checkConfig()
	b.readZones()
	b.flows = b.readFlows("firewall.flows", src.Firewall.Flows, "zone")
	b.internet = b.readFlows("firewall.internet", src.Firewall.Internet, "internet")
	b.mgmt = b.readFlows("firewall.management", src.Firewall.Management, "edge")
	if len(b.errs) > 0 {
		return nil, fmt.Errorf("firewall: school %s: %w", src.School.UAI, errors.Join(b.errs...))
	}
	rs := b.assemble()
	if n := rs.Rules(); n > maxRules {
		return nil, fmt.Errorf("firewall: school %s: the matrix expands to %d rules, more than %d", src.School.UAI, n, maxRules)
	}
	return rs, nil
}

// Problems splits an error of Build into its problems, each starting with
// the field it names ("firewall.internet[0]: ..."), for callers that show
// them one by one or point at the policy's lines.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := errors.Unwrap(err).(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Validate checks the edge's side alone (Build checks it too).
func (c Config) Validate() error {
	b := &builder{cfg: c}
	b.checkConfig()
	if len(b.errs) > 0 {
		return fmt.Errorf("firewall: %w", errors.Join(b.errs...))
	}
	return nil
}

func (b *builder) checkConfig() {
	for _, p := range []struct {
		name string
		port uint16
	}{{"dns_port", b.cfg.DNSPort}, {"http_port", b.cfg.HTTPPort}, {"https_port", b.cfg.HTTPSPort}} {
		if p.port == 0 {
			b.bad("config."+p.name, "required (the port the edge listens on)")
		}
	}
	if b.cfg.WANInterface != "" && !validIfName(b.cfg.WANInterface) {
		b.bad("config.wan_interface", "%q is not a valid interface name (1-15 characters, no '/', ':' or space)", b.cfg.WANInterface)
	}
	if b.cfg.Masquerade && b.cfg.WANInterface == "" {
		b.bad("config.masquerade", "needs wan_interface (the interface to masquerade on)")
	}
}

func validIfName(s string) bool { return ifName.MatchString(s) && s != "." && s != ".." }

func (b *builder) readZones() {
	type owned struct {
		p    netip.Prefix
		zone string
	}
	var seen []owned
	ifOwner := map[string]string{}
	if len(b.src.School.Zones) > maxZones {
		b.bad("zones", "%d zones, at most %d", len(b.src.School.Zones), maxZones)
		return
	}
	for i, pz := range b.src.School.Zones {
		f := fmt.Sprintf("schools[%s].zones[%d]", b.src.School.UAI, i)
		if !zoneName.MatchString(pz.Name) {
			b.bad(f+".name", "%q is not a valid zone name (a-z, 0-9, _ . -, 64 characters at most)", pz.Name)
			continue
		}
		if b.byName[pz.Name] != nil {
			b.bad(f+".name", "duplicate zone %q", pz.Name)
			continue
		}
		z := &zone{name: pz.Name, filtered: !b.src.Unfiltered[pz.Profile]}
		if len(pz.CIDRs) > maxPrefixesInZone {
			b.bad(f+".cidrs", "%d prefixes, at most %d", len(pz.CIDRs), maxPrefixesInZone)
			continue
		}
		for k, c := range pz.CIDRs {
			cf := fmt.Sprintf("%s.cidrs[%d]", f, k)
			p, err := netip.ParsePrefix(c)
			switch {
			case err != nil:
				b.bad(cf, "%q is not a CIDR prefix", c)
				continue
			case p.Masked() != p:
				b.bad(cf, "%q has host bits set (did you mean %s?)", c, p.Masked())
				continue
			case p.Addr().Is4In6():
				b.bad(cf, "%q is an IPv4-mapped IPv6 prefix: write the IPv4 form", c)
				continue
			case p.Addr().Zone() != "":
				b.bad(cf, "%q has an IPv6 zone", c)
				continue
			case p.Bits() == 0:
				b.bad(cf, "%q is the whole address space, not a zone of a school", c)
				continue
			}
			for _, o := range seen {
				if o.zone != z.name && o.p.Overlaps(p) {
					b.bad(cf, "%s overlaps %s of zone %q", p, o.p, o.zone)
				}
			}
			seen = append(seen, owned{p, z.name})
			if p.Addr().Is4() {
				z.v4 = append(z.v4, p)
			} else {
				z.v6 = append(z.v6, p)
			}
		}
		for k, ifn := range pz.Interfaces {
			inf := fmt.Sprintf("%s.interfaces[%d]", f, k)
			switch {
			case !validIfName(ifn):
				b.bad(inf, "%q is not a valid interface name (1-15 characters, no '/', ':' or space)", ifn)
			case ifn == b.cfg.WANInterface:
				b.bad(inf, "%q is the WAN interface", ifn)
			case ifOwner[ifn] != "" && ifOwner[ifn] != z.name:
				b.bad(inf, "interface %q already belongs to zone %q", ifn, ifOwner[ifn])
			case ifOwner[ifn] == z.name:
				b.bad(inf, "duplicate interface %q", ifn)
			default:
				ifOwner[ifn] = z.name
				z.ifaces = append(z.ifaces, ifn)
			}
		}
		if len(pz.CIDRs) == 0 && len(pz.Interfaces) == 0 {
			b.bad(f, "zone %q needs cidrs or interfaces", pz.Name)
		}
		if len(z.v4) > 0 {
			z.set4 = "zone_" + z.name + "_v4"
		}
		if len(z.v6) > 0 {
			z.set6 = "zone_" + z.name + "_v6"
		}
		b.byName[z.name] = z
		b.zones = append(b.zones, z)
	}
}

// readFlows validates one section of the matrix. kind says what "to" may
// be: a zone (flows), the internet, or the gateway itself (management).
func (b *builder) readFlows(section string, in []policy.Flow, kind string) []flow {
	var out []flow
	for i, pf := range in {
		f := fmt.Sprintf("%s[%d]", section, i)
		fl := flow{comment: sanitizeComment(pf.Comment)}
		ok, elsewhere := true, false
		switch {
		case pf.From == "":
			b.bad(f+".from", "required (a zone of school %s)", b.src.School.UAI)
			ok = false
		case pf.From == "internet" && kind == "edge":
			fl.fromInternet = true
		case kind == "edge" && isPrefixSource(pf.From):
			if !b.sourcePrefix(f+".from", pf.From, i, &fl) {
				ok = false
			}
		case b.byName[pf.From] == nil && b.src.OtherSchoolsZones[pf.From]:
			// The académie's matrix names a zone this school does not
			// have: the line concerns other schools. It is still checked
			// here, so that a bad line is refused wherever it is built.
			elsewhere = true
		case b.byName[pf.From] == nil:
			b.bad(f+".from", "unknown zone %q (%s)", pf.From, b.zoneList())
			ok = false
		default:
			fl.from = b.byName[pf.From]
		}
		switch kind {
		case "zone":
			switch {
			case pf.To == "":
				b.bad(f+".to", "required (a zone of school %s)", b.src.School.UAI)
				ok = false
			case b.byName[pf.To] == nil && b.src.OtherSchoolsZones[pf.To]:
				elsewhere = true
			case b.byName[pf.To] == nil:
				b.bad(f+".to", "unknown zone %q (%s)", pf.To, b.zoneList())
				ok = false
			default:
				fl.to = b.byName[pf.To]
			}
		case "internet":
			if pf.To != "" && pf.To != "internet" {
				b.bad(f+".to", "must be empty or \"internet\" in the internet section, got %q", pf.To)
				ok = false
			}
		case "edge":
			if pf.To != "" {
				b.bad(f+".to", "must be empty in the management section (the gateway itself), got %q", pf.To)
				ok = false
			}
		}
		switch pf.Action {
		case "", "allow":
			fl.accept = true
		case "deny":
		default:
			b.bad(f+".action", "must be allow or deny, got %q", pf.Action)
			ok = false
		}
		if len(pf.Services) > 0 && !b.readServices(f, kind, pf, &fl) {
			ok = false
		}
		if kind == "internet" && fl.accept && len(pf.Services) == 0 && len(pf.Ports) == 0 &&
			(pf.Proto == "" || pf.Proto == "any" || pf.Proto == "tcp" || pf.Proto == "udp") {
			// The pre-services form "{from: X, action: allow}" opened every
			// port. Mapping it silently to web, dns and ntp would change what
			// a published policy means; refusing it, with the form to write,
			// lets the RSSI decide.
			what := "every port"
			if pf.Proto == "tcp" || pf.Proto == "udp" {
				what = "every " + strings.ToUpper(pf.Proto) + " port"
			}
			b.bad(f, "opens %s to the internet, and egress is default-deny: write {from: %s, services: [web, dns, ntp]} "+
				"(browsing through the proxy, names through the filter, time), and a line with proto and ports for anything "+
				"else, such as {from: %s, proto: tcp, ports: [\"22\"]}", what, pf.From, pf.From)
			ok = false
		}
		for k, s := range pf.Ports {
			pr, err := parsePortRange(s)
			if err != nil {
				b.bad(fmt.Sprintf("%s.ports[%d]", f, k), "%v", err)
				ok = false
				continue
			}
			fl.ports = append(fl.ports, pr)
		}
		switch pf.Proto {
		case "", "any":
			if len(pf.Ports) > 0 {
				fl.protos = []uint8{ProtoTCP, ProtoUDP}
			}
		case "tcp":
			fl.protos = []uint8{ProtoTCP}
		case "udp":
			fl.protos = []uint8{ProtoUDP}
		case "icmp":
			fl.protos = []uint8{ProtoICMP, ProtoICMPv6}
			if len(pf.Ports) > 0 {
				b.bad(f+".ports", "icmp has no ports")
				ok = false
			}
		default:
			b.bad(f+".proto", "must be tcp, udp, icmp or any, got %q", pf.Proto)
			ok = false
		}
		if ok && !elsewhere {
			out = append(out, fl)
		}
	}
	return out
}

// readServices validates a services line: services belong to the internet
// and management sections, stand alone (no proto nor ports on the same
// line) and only open.
func (b *builder) readServices(f, kind string, pf policy.Flow, fl *flow) bool {
	known := map[string][]string{"internet": internetServices, "edge": managementServices}[kind]
	if known == nil {
		b.bad(f+".services", "services apply to the internet and management sections; between zones, write proto and ports")
		return false
	}
	ok := true
	if pf.Proto != "" || len(pf.Ports) > 0 {
		b.bad(f+".services", "give services or proto and ports, not both (write two lines)")
		ok = false
	}
	if !fl.accept {
		b.bad(f+".action", "a services line opens them (what no line opens is dropped already)")
		ok = false
	}
	seen := map[string]bool{}
	for k, s := range pf.Services {
		switch {
		case !slices.Contains(known, s):
			b.bad(fmt.Sprintf("%s.services[%d]", f, k), "unknown service %q (%s)", s, strings.Join(known, ", "))
			ok = false
		case seen[s]:
			b.bad(fmt.Sprintf("%s.services[%d]", f, k), "duplicate service %q", s)
			ok = false
		default:
			seen[s] = true
			fl.services = append(fl.services, s)
		}
	}
	return ok
}

// isPrefixSource tells a management source given as an address or prefix
// from a zone name (zone names never hold '/' or ':', and an address is
// read as an address).
func isPrefixSource(s string) bool {
	if strings.ContainsAny(s, "/:") {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// sourcePrefix reads a management line's source prefix into its own set.
func (b *builder) sourcePrefix(field, s string, line int, fl *flow) bool {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			b.bad(field, "%q is neither a zone, \"internet\", nor an address or CIDR prefix", s)
			return false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	switch {
	case p.Masked() != p:
		b.bad(field, "%q has host bits set (did you mean %s?)", s, p.Masked())
		return false
	case p.Addr().Is4In6():
		b.bad(field, "%q is an IPv4-mapped IPv6 prefix: write the IPv4 form", s)
		return false
	case p.Addr().Zone() != "":
		b.bad(field, "%q has an IPv6 zone", s)
		return false
	case p.Bits() == 0:
		b.bad(field, "%q is every address: name the académie's prefixes (or \"internet\")", s)
		return false
	}
	set := Set{Name: fmt.Sprintf("mgmt%d_v4", line), Family: IPv4, Ranges: mergePrefixes([]netip.Prefix{p})}
	if p.Addr().Is6() {
		set.Name, set.Family = fmt.Sprintf("mgmt%d_v6", line), IPv6
		fl.fromSet6 = set.Name
	} else {
		fl.fromSet4 = set.Name
	}
	b.mgmtSets = append(b.mgmtSets, set)
	return true
}

func (b *builder) zoneList() string {
	if len(b.zones) == 0 {
		return fmt.Sprintf("school %s has no zones", b.src.School.UAI)
	}
	names := make([]string, len(b.zones))
	for i, z := range b.zones {
		names[i] = z.name
	}
	return "zones of " + b.src.School.UAI + ": " + strings.Join(names, ", ")
}

// parsePortRange reads "443" or "8000-8100".
func parsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo)
	if err != nil {
		return PortRange{}, fmt.Errorf("%q: %w", s, err)
	}
	if !isRange {
		return PortRange{a, a}, nil
	}
	z, err := parsePort(hi)
	if err != nil {
		return PortRange{}, fmt.Errorf("%q: %w", s, err)
	}
	if z < a {
		return PortRange{}, fmt.Errorf("%q: the range ends before it starts", s)
	}
	return PortRange{a, z}, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a port number (1-65535 or a range like 8000-8100)")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s is outside 1-65535", s)
	}
	return uint16(n), nil
}

// sanitizeComment makes a policy comment safe to carry in a rule: no
// quotes or control characters (nft text has no escapes), bounded length.
func sanitizeComment(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			r = '\''
		case r == '\\':
			r = '/'
		case r < ' ' || r == 0x7f || r == utf8.RuneError:
			r = ' '
		}
		if sb.Len()+utf8.RuneLen(r) > maxCommentBytes {
			break
		}
		sb.WriteRune(r)
	}
	return strings.TrimSpace(sb.String())
}

// mergePrefixes turns prefixes into sorted, merged inclusive ranges: the
// form the kernel keeps in an interval set, and what nft lists.
func mergePrefixes(ps []netip.Prefix) []Range {
	rs := make([]Range, 0, len(ps))
	for _, p := range ps {
		rs = append(rs, Range{p.Addr(), lastAddr(p)})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].From.Less(rs[j].From) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			// r joins the last range when it starts inside it or right
			// after it (or the last range already reaches the top).
			next := last.To.Next()
			if !next.IsValid() || r.From.Compare(next) <= 0 {
				if r.To.Compare(last.To) > 0 {
					last.To = r.To
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// lastAddr is the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range a {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits {
				a[i] |= 0x80 >> bit
			}
		}
	}
	out, _ := netip.AddrFromSlice(a)
	return out
}

func (b *builder) allSets() []Set {
	var sets []Set
	var all4, all6 []netip.Prefix
	for _, z := range b.zones {
		if z.set4 != "" {
			sets = append(sets, Set{Name: z.set4, Family: IPv4, Ranges: mergePrefixes(z.v4)})
			all4 = append(all4, z.v4...)
		}
		if z.set6 != "" {
			sets = append(sets, Set{Name: z.set6, Family: IPv6, Ranges: mergePrefixes(z.v6)})
			all6 = append(all6, z.v6...)
		}
	}
	if len(all4) > 0 {
		b.lan4 = "lan_v4"
		sets = append(sets, Set{Name: b.lan4, Family: IPv4, Ranges: mergePrefixes(all4)})
	}
	if len(all6) > 0 {
		b.lan6 = "lan_v6"
		sets = append(sets, Set{Name: b.lan6, Family: IPv6, Ranges: mergePrefixes(all6)})
	}
	sets = append(sets, b.mgmtSets...)
	slices.SortFunc(sets, func(a, b Set) int { return strings.Compare(a.Name, b.Name) })
	return sets
}
