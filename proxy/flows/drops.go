package flows

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// Dropped flows never reach conntrack's table (a dropped first packet is
// never confirmed), so conntrack cannot report them. The firewall's drop
// rules instead send the packet they drop to an NFLOG group, with the
// rule's counter name as prefix ("internet.pedagogique"), and the recorder
// reads that group: one record per dropped flow, repeats of the same
// 5-tuple (retransmissions) within a minute folded into it.

// DropRepeatWindow folds retransmissions of one dropped flow.
const DropRepeatWindow = time.Minute

// ParseIPPacket reads the protocol, addresses and ports of an IPv4 or
// IPv6 packet (ports are zero for protocols without them).
func ParseIPPacket(b []byte) (proto uint8, src, dst netip.AddrPort, err error) {
	if len(b) < 1 {
		return 0, src, dst, errors.New("flows: empty packet")
	}
	var l4 []byte
	var sa, da netip.Addr
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return 0, src, dst, errors.New("flows: short IPv4 header")
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return 0, src, dst, errors.New("flows: bad IPv4 header length")
		}
		proto = b[9]
		sa = netip.AddrFrom4([4]byte(b[12:16]))
		da = netip.AddrFrom4([4]byte(b[16:20]))
		// A later fragment carries no ports.
		if binary.BigEndian.Uint16(b[6:8])&0x1fff == 0 {
			l4 = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return 0, src, dst, errors.New("flows: short IPv6 header")
		}
		sa = netip.AddrFrom16([16]byte(b[8:24]))
		da = netip.AddrFrom16([16]byte(b[24:40]))
		next, rest := b[6], b[40:]
		// Walk the extension headers, a bounded number of them.
		for i := 0; i < 8; i++ {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 || len(rest) < (int(rest[1])+1)*8 {
					return next, netip.AddrPortFrom(sa, 0), netip.AddrPortFrom(da, 0), nil
				}
				next, rest = rest[0], rest[(int(rest[1])+1)*8:]
				continue
			case 44: // fragment
				if len(rest) < 8 {
					return next, netip.AddrPortFrom(sa, 0), netip.AddrPortFrom(da, 0), nil
				}
				first := binary.BigEndian.Uint16(rest[2:4])&0xfff8 == 0
				next, rest = rest[0], rest[8:]
				if !first {
					rest = nil
				}
				continue
			}
			break
		}
		proto, l4 = next, rest
	default:
		return 0, src, dst, errors.New("flows: not an IP packet")
	}
	var sp, dp uint16
	switch proto {
	case 6, 17, 33, 132, 136:
		if len(l4) >= 4 {
			sp, dp = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		}
	}
	return proto, netip.AddrPortFrom(sa, sp), netip.AddrPortFrom(da, dp), nil
}

type dropKey struct {
	proto    uint8
	src, dst netip.AddrPort
}

// dropSeen remembers recent dropped 5-tuples, bounded.
type dropSeen struct {
	mu sync.Mutex
	m  map[dropKey]time.Time
}

const maxDropSeen = 1 << 16

// first reports whether k was not seen within the window before now.
func (d *dropSeen) first(k dropKey, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[dropKey]time.Time{}
	}
	if t, ok := d.m[k]; ok && now.Sub(t) < DropRepeatWindow {
		return false
	}
	if len(d.m) >= maxDropSeen {
		for kk, t := range d.m {
			if now.Sub(t) >= DropRepeatWindow {
				delete(d.m, kk)
			}
		}
		if len(d.m) >= maxDropSeen {
			// A flood of distinct tuples: forget them all rather than grow;
			// at worst a retransmission is written twice.
			clear(d.m)
		}
	}
	d.m[k] = now
	return true
}

// Dropped records one packet the firewall dropped, reason being the
// rule's counter name; repeats of a flow within the window are folded.
func (r *Recorder) Dropped(packet []byte, reason string, at time.Time) error {
	proto, src, dst, err := ParseIPPacket(packet)
	if err != nil {
		return err
	}
	if !r.drops.first(dropKey{proto, src, dst}, at) {
		return nil
	}
	r.Record(&Flow{Proto: ProtoName(proto), OrigSrc: src, OrigDst: dst, Start: at, Dropped: true, Reason: reason})
	return nil
}
