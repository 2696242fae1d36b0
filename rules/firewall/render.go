package firewall

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Render writes the ruleset as nft text, for review and for "nft -f".
// The first lines make loading it atomic, as Apply is: the table is
// created if missing, deleted and recreated in one transaction. The body
// is laid out as "nft list table inet vigie" prints it.
func Render(w io.Writer, rs *Ruleset) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Vigie firewall of school %s, generated: review it here, apply it with\n", rs.UAI)
	b.WriteString("# \"vigie firewall apply\" or \"nft -f FILE\" (it replaces table inet vigie only).\n")
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n\n", TableName, TableName)
	b.WriteString(RenderTable(rs))
	_, err := io.WriteString(w, b.String())
	return err
}

// RenderTable is the table alone, in "nft list table" layout.
func RenderTable(rs *Ruleset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", TableName)
	first := true
	block := func() {
		if !first {
			b.WriteString("\n")
		}
		first = false
	}
	for _, c := range rs.Counters {
		block()
		fmt.Fprintf(&b, "\tcounter %s {\n\t}\n", c)
	}
	for _, s := range rs.Sets {
		block()
		typ := "ipv4_addr"
		if s.Family == IPv6 {
			typ = "ipv6_addr"
		}
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n", s.Name, typ)
		if len(s.Ranges) > 0 {
			elems := make([]string, len(s.Ranges))
			for i, r := range s.Ranges {
				elems[i] = rangeText(r)
			}
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
		}
		b.WriteString("\t}\n")
	}
	for _, c := range rs.Chains {
		block()
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Base != nil {
			policy := "accept"
			if c.Base.Drop {
				policy = "drop"
			}
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy %s;\n", c.Base.Type, c.Base.Hook, priorityText(c.Base), policy)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", RuleText(r))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func priorityText(base *Base) string {
	switch {
	case base.Type == TypeFilter && base.Priority == prioFilter:
		return "filter"
	case base.Type == TypeNAT && base.Priority == prioDstNAT:
		return "dstnat"
	case base.Type == TypeNAT && base.Priority == prioSrcNAT:
		return "srcnat"
	}
	return fmt.Sprint(base.Priority)
}

// RuleText is one rule in nft syntax.
func RuleText(r Rule) string {
	var parts []string
	for i := 0; i < len(r.Match); i++ {
		m := r.Match[i]
		switch m.Kind {
		case MatchIIfName:
			parts = append(parts, fmt.Sprintf("iifname %q", m.Name))
		case MatchOIfName:
			parts = append(parts, fmt.Sprintf("oifname %q", m.Name))
		case MatchSAddr, MatchDAddr:
			fam, dir, not := "ip", "saddr", ""
			if m.Family == IPv6 {
				fam = "ip6"
			}
			if m.Kind == MatchDAddr {
				dir = "daddr"
			}
			if m.Not {
				not = "!= "
			}
			parts = append(parts, fmt.Sprintf("%s %s %s@%s", fam, dir, not, m.Name))
		case MatchL4Proto:
			// "tcp dport 80" carries its protocol; nft prints the pair so.
			if i+1 < len(r.Match) && r.Match[i+1].Kind == MatchDPort {
				parts = append(parts, fmt.Sprintf("%s dport %s", protoName(m.Proto), portText(r.Match[i+1].Ports)))
				i++
				continue
			}
			parts = append(parts, "meta l4proto "+protoName(m.Proto))
		case MatchDPort:
			parts = append(parts, "th dport "+portText(m.Ports))
		case MatchCtState:
			parts = append(parts, "ct state "+ctStateText(m.State))
		case MatchLocalDst:
			parts = append(parts, "fib daddr type local")
		}
	}
	if r.Counter != "" {
		parts = append(parts, fmt.Sprintf("counter name %q", r.Counter))
	}
	if r.LogGroup != 0 {
		parts = append(parts, fmt.Sprintf("log prefix %q group %d", r.Counter, r.LogGroup))
	}
	switch r.Verdict.Kind {
	case Accept:
		parts = append(parts, "accept")
	case Drop:
		parts = append(parts, "drop")
	case Goto:
		parts = append(parts, "goto "+r.Verdict.Chain)
	case Redirect:
		parts = append(parts, fmt.Sprintf("redirect to :%d", r.Verdict.Port))
	case Masquerade:
		parts = append(parts, "masquerade")
	}
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "ipv6-icmp"
	}
	return fmt.Sprint(p)
}

func portText(p PortRange) string {
	if p.Lo == p.Hi {
		return fmt.Sprint(p.Lo)
	}
	return fmt.Sprintf("%d-%d", p.Lo, p.Hi)
}

func ctStateText(s uint32) string {
	var names []string
	for _, b := range []struct {
		bit  uint32
		name string
	}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}, {CtNew, "new"}} {
		if s&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, ",")
}

// rangeText prints a range as nft does: a single address, a prefix when
// the range is exactly one, else first-last.
func rangeText(r Range) string {
	if r.From == r.To {
		return r.From.String()
	}
	for bits := 0; bits <= r.From.BitLen(); bits++ {
		p := netip.PrefixFrom(r.From, bits)
		if p.Masked().Addr() == r.From && lastAddr(p) == r.To {
			return p.String()
		}
	}
	return r.From.String() + "-" + r.To.String()
}
