// Package firewall plans a school's firewall: it validates the school's
// zones and the académie's flow matrix and compiles them into a Ruleset, a
// small model of one nftables table ("inet vigie"), and renders it as nft
// text for review. It has no netlink: the control plane checks and shows
// rulesets with it, and the edge's proxy/firewall applies them.
//
// The ruleset is what makes the edge's filtering unavoidable: a filtered
// zone's DNS goes to the DNS filter whatever resolver it asked, its web
// traffic to the transparent proxy, QUIC and DNS over TLS are dropped,
// zones reach each other only as the matrix says, and egress is
// default-deny: a zone reaches the internet only through the services
// (web, dns, ntp) and ports its lines name; the rest is dropped and
// counted per zone and reason.
package firewall

import (
	"net/netip"
)

// TableName is the one nftables table Vigie owns (family inet). Nothing
// else in the kernel's ruleset is ever read for writing, replaced or flushed.
const TableName = "vigie"

// Ruleset is one school's firewall, compiled and validated: what Render
// prints and Apply sends. It is a small model of nftables itself (sets,
// counters, chains of rules), so that the text a person reviews and the
// netlink batch the kernel receives come from the same value.
type Ruleset struct {
	// UAI is the school this ruleset was built for.
	UAI string
	// Counters are the named counters, sorted; drops count on them.
	Counters []string
	// Sets are the zones' address sets (interval sets of prefixes).
	Sets []Set
	// Chains in creation order: base chains first, then the per-zone ones.
	Chains []Chain
}

// Family is the address family of a set or of an address match.
type Family uint8

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Set is a named interval set of addresses.
type Set struct {
	Name   string
	Family Family
	// Ranges are inclusive, sorted, merged (never adjacent nor overlapping).
	Ranges []Range
}

// Range is an inclusive address range.
type Range struct{ From, To netip.Addr }

// ChainType, Hook and Policy describe a base chain.
type ChainType string

const (
	TypeFilter ChainType = "filter"
	TypeNAT    ChainType = "nat"
)

type Hook string

const (
	HookPrerouting  Hook = "prerouting"
	HookInput       Hook = "input"
	HookForward     Hook = "forward"
	HookPostrouting Hook = "postrouting"
)

// Base makes a chain a base chain attached to a netfilter hook.
type Base struct {
	Type     ChainType
	Hook     Hook
	Priority int32
	// Drop is the chain's policy: drop when true, accept otherwise.
	Drop bool
}

// Chain is a chain of rules; Base is nil for a regular chain (reached by goto).
type Chain struct {
	Name  string
	Base  *Base
	Rules []Rule
}

// Rule is a conjunction of matches, an optional named counter, a verdict.
type Rule struct {
	Match   []Match
	Counter string
	// LogGroup, on a drop rule, also sends the dropped packet to this
	// NFLOG group with the counter name as prefix (the edge journals
	// dropped flows from it); 0 logs nothing.
	LogGroup uint16
	Verdict  Verdict
	Comment  string
}

// MatchKind enumerates the few matches Vigie's rulesets use.
type MatchKind uint8

const (
	// MatchIIfName and MatchOIfName compare the input or output interface name.
	MatchIIfName MatchKind = iota + 1
	MatchOIfName
	// MatchSAddr and MatchDAddr look the source or destination address up in Set.
	MatchSAddr
	MatchDAddr
	// MatchL4Proto compares the transport protocol.
	MatchL4Proto
	// MatchDPort compares the transport destination port (after MatchL4Proto).
	MatchDPort
	// MatchCtState tests conntrack state bits.
	MatchCtState
	// MatchLocalDst is true when the destination is one of the gateway's
	// own addresses (fib daddr type local).
	MatchLocalDst
)

// Match is one condition of a rule.
type Match struct {
	Kind MatchKind
	// Not inverts an address lookup (daddr != @set).
	Not bool
	// Name is the interface name or the set name.
	Name string
	// Family is the set's family for address matches.
	Family Family
	// Proto is the IP protocol number for MatchL4Proto.
	Proto uint8
	// Ports is the destination port range for MatchDPort.
	Ports PortRange
	// State holds conntrack state bits for MatchCtState.
	State uint32
}

// PortRange is an inclusive port range; Lo == Hi for a single port.
type PortRange struct{ Lo, Hi uint16 }

// Conntrack state bits, as the kernel defines them.
const (
	CtInvalid     uint32 = 1
	CtEstablished uint32 = 2
	CtRelated     uint32 = 4
	CtNew         uint32 = 8
)

// IP protocol numbers used in rules.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// VerdictKind enumerates the verdicts Vigie's rulesets use.
type VerdictKind uint8

const (
	Accept VerdictKind = iota + 1
	Drop
	// Goto continues in Chain and does not come back.
	Goto
	// Redirect sends the packet to the gateway itself, on Port.
	Redirect
	// Masquerade rewrites the source to the output interface's address.
	Masquerade
)

// Verdict ends a rule.
type Verdict struct {
	Kind  VerdictKind
	Chain string
	Port  uint16
}

// Rules counts the rules of every chain.
func (rs *Ruleset) Rules() int {
	n := 0
	for _, c := range rs.Chains {
		n += len(c.Rules)
	}
	return n
}

// Chain returns the chain of that name, or nil.
func (rs *Ruleset) Chain(name string) *Chain {
	for i := range rs.Chains {
		if rs.Chains[i].Name == name {
			return &rs.Chains[i]
		}
	}
	return nil
}
