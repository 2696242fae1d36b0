package firewall

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	plan "vigie/rules/firewall"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// elementsPerMessage bounds one NEWSETELEM message: its element list is a
// single netlink attribute whose length field is 16 bits, so a big zone
// sent whole would overflow it. 1024 IPv6 interval elements take ~40 KiB.
const elementsPerMessage = 1024

// socketBuffer is the netlink socket's send and receive buffer. The whole
// batch goes out in one sendmsg (it must fit the send buffer) and the
// kernel queues one acknowledgement per message before we read any (they
// must fit the receive buffer, or the kernel reports ENOBUFS after having
// committed the batch).
const socketBuffer = 32 << 20

// table is Vigie's table as the netlink library names it.
func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: plan.TableName}
}

// objects are the netlink objects of a ruleset, built once and used both
// to send the batch and to check what the kernel reports back.
type objects struct {
	table    *nftables.Table
	counters []*nftables.NamedObj
	sets     []*nftables.Set
	elements map[string][]nftables.SetElement
	chains   []*nftables.Chain
	rules    map[string][]*nftables.Rule
}

// toObjects converts a ruleset into netlink objects. Set IDs are assigned
// here (the library's own allocator is a package global).
func toObjects(rs *plan.Ruleset) (*objects, error) {
	t := table()
	o := &objects{table: t, elements: map[string][]nftables.SetElement{}, rules: map[string][]*nftables.Rule{}}
	for _, name := range rs.Counters {
		o.counters = append(o.counters, &nftables.NamedObj{Table: t, Name: name, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}})
	}
	sets := map[string]*nftables.Set{}
	for i, s := range rs.Sets {
		key := nftables.TypeIPAddr
		if s.Family == plan.IPv6 {
			key = nftables.TypeIP6Addr
		}
		ns := &nftables.Set{Table: t, ID: uint32(i + 1), Name: s.Name, KeyType: key, Interval: true, KeyByteOrder: binaryutil.BigEndian}
		o.sets = append(o.sets, ns)
		o.elements[s.Name] = intervalElements(s)
		sets[s.Name] = ns
	}
	chains := map[string]*nftables.Chain{}
	for _, c := range rs.Chains {
		nc := &nftables.Chain{Table: t, Name: c.Name}
		if c.Base != nil {
			hook, err := hookNum(c.Base.Hook)
			if err != nil {
				return nil, err
			}
			prio := nftables.ChainPriority(c.Base.Priority)
			policy := nftables.ChainPolicyAccept
			if c.Base.Drop {
				policy = nftables.ChainPolicyDrop
			}
			nc.Hooknum, nc.Priority, nc.Policy = hook, &prio, &policy
			nc.Type = nftables.ChainTypeFilter
			if c.Base.Type == plan.TypeNAT {
				nc.Type = nftables.ChainTypeNAT
			}
		}
		o.chains = append(o.chains, nc)
		chains[c.Name] = nc
	}
	for _, c := range rs.Chains {
		for i, r := range c.Rules {
			exprs, err := ruleExprs(r, sets, chains)
			if err != nil {
				return nil, fmt.Errorf("chain %s rule %d: %w", c.Name, i+1, err)
			}
			nr := &nftables.Rule{Table: t, Chain: chains[c.Name], Exprs: exprs}
			if r.Comment != "" {
				nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
			}
			o.rules[c.Name] = append(o.rules[c.Name], nr)
		}
	}
	return o, nil
}

func hookNum(h plan.Hook) (*nftables.ChainHook, error) {
	switch h {
	case plan.HookPrerouting:
		return nftables.ChainHookPrerouting, nil
	case plan.HookInput:
		return nftables.ChainHookInput, nil
	case plan.HookForward:
		return nftables.ChainHookForward, nil
	case plan.HookPostrouting:
		return nftables.ChainHookPostrouting, nil
	}
	return nil, fmt.Errorf("unknown hook %q", h)
}

// intervalElements encodes ranges the way nft does: each range is a start
// element and an IntervalEnd element at the first address after it (none
// when the range reaches the top of the address space), and a set that
// does not start at the zero address opens with an IntervalEnd at zero.
func intervalElements(s plan.Set) []nftables.SetElement {
	var els []nftables.SetElement
	if len(s.Ranges) > 0 && !s.Ranges[0].From.IsUnspecified() {
		zero := netip.IPv4Unspecified()
		if s.Family == plan.IPv6 {
			zero = netip.IPv6Unspecified()
		}
		els = append(els, nftables.SetElement{Key: zero.AsSlice(), IntervalEnd: true})
	}
	for _, r := range s.Ranges {
		els = append(els, nftables.SetElement{Key: r.From.AsSlice()})
		if next := r.To.Next(); next.IsValid() {
			els = append(els, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return els
}

// ifname is an interface name as the kernel compares it: 16 bytes,
// NUL-padded.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// ruleExprs encodes a rule as the expressions nft itself generates for
// the same text, so that "nft list" prints back what Render wrote.
func ruleExprs(r plan.Rule, sets map[string]*nftables.Set, chains map[string]*nftables.Chain) ([]expr.Any, error) {
	var ex []expr.Any
	var nfproto plan.Family // the family check already emitted, if any
	var l4 uint8            // the transport protocol already matched, if any
	for _, m := range r.Match {
		switch m.Kind {
		case plan.MatchIIfName, plan.MatchOIfName:
			key := expr.MetaKeyIIFNAME
			if m.Kind == plan.MatchOIfName {
				key = expr.MetaKeyOIFNAME
			}
			ex = append(ex,
				&expr.Meta{Key: key, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(m.Name)})
		case plan.MatchSAddr, plan.MatchDAddr:
			set, ok := sets[m.Name]
			if !ok {
				return nil, fmt.Errorf("unknown set %q", m.Name)
			}
			if nfproto == 0 {
				proto := byte(unix.NFPROTO_IPV4)
				if m.Family == plan.IPv6 {
					proto = unix.NFPROTO_IPV6
				}
				ex = append(ex,
					&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
				nfproto = m.Family
			} else if nfproto != m.Family {
				return nil, fmt.Errorf("IPv4 and IPv6 matches in one rule")
			}
			off, size := uint32(12), uint32(4) // IPv4 source
			if m.Family == plan.IPv6 {
				off, size = 8, 16
			}
			if m.Kind == plan.MatchDAddr {
				off += size
			}
			ex = append(ex,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size},
				&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID, Invert: m.Not})
		case plan.MatchL4Proto:
			ex = append(ex,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{m.Proto}})
			l4 = m.Proto
		case plan.MatchDPort:
			if l4 != plan.ProtoTCP && l4 != plan.ProtoUDP {
				return nil, fmt.Errorf("destination port without tcp or udp")
			}
			ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
			if m.Ports.Lo == m.Ports.Hi {
				ex = append(ex, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(m.Ports.Lo)})
			} else {
				ex = append(ex,
					&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: be16(m.Ports.Lo)},
					&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: be16(m.Ports.Hi)})
			}
		case plan.MatchCtState:
			ex = append(ex,
				&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
					Mask: binaryutil.NativeEndian.PutUint32(m.State), Xor: binaryutil.NativeEndian.PutUint32(0)},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}})
		case plan.MatchLocalDst:
			ex = append(ex,
				&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
		default:
			return nil, fmt.Errorf("unknown match kind %d", m.Kind)
		}
	}
	if r.Counter != "" {
		ex = append(ex, &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: r.Counter})
	}
	if r.LogGroup != 0 {
		ex = append(ex, &expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: r.LogGroup, Data: []byte(r.Counter)})
	}
	switch r.Verdict.Kind {
	case plan.Accept:
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictAccept})
	case plan.Drop:
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictDrop})
	case plan.Goto:
		if _, ok := chains[r.Verdict.Chain]; !ok {
			return nil, fmt.Errorf("goto unknown chain %q", r.Verdict.Chain)
		}
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictGoto, Chain: r.Verdict.Chain})
	case plan.Redirect:
		ex = append(ex,
			&expr.Immediate{Register: 1, Data: be16(r.Verdict.Port)},
			&expr.Redir{RegisterProtoMin: 1, RegisterProtoMax: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED})
	case plan.Masquerade:
		ex = append(ex, &expr.Masq{})
	default:
		return nil, fmt.Errorf("unknown verdict kind %d", r.Verdict.Kind)
	}
	return ex, nil
}

// queue adds the replacement of Vigie's table to c's batch: create it (a
// no-op when it exists), delete it, and build it anew. The kernel applies
// the whole batch or none of it, so no packet ever meets a half-built
// table, and no other table is touched.
func queue(c *nftables.Conn, o *objects) error {
	c.AddTable(o.table)
	c.DelTable(o.table)
	c.AddTable(o.table)
	for _, obj := range o.counters {
		c.AddObj(obj)
	}
	for _, s := range o.sets {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		els := o.elements[s.Name]
		for len(els) > 0 {
			n := min(len(els), elementsPerMessage)
			if err := c.SetAddElements(s, els[:n]); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
			els = els[n:]
		}
	}
	// Every chain before any rule: rules jump to chains declared later.
	for _, ch := range o.chains {
		c.AddChain(ch)
	}
	for _, ch := range o.chains {
		for _, r := range o.rules[ch.Name] {
			c.AddRule(r)
		}
	}
	return nil
}

// bigBuffers raises the netlink socket's buffers (see socketBuffer). The
// FORCE options need CAP_NET_ADMIN, which applying a ruleset needs anyway;
// without it the plain options still raise them up to the sysctl limits.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], socketBuffer) != nil {
				if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], socketBuffer); e != nil {
					serr = e
				}
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
