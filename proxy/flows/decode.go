package flows

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// Conntrack event kinds, as decodeEvent reports them.
const (
	evOther = iota
	evNew
	evDestroy
)

var errShort = errors.New("flows: conntrack message: truncated")

// ctEvent is one decoded conntrack event: only what a record needs. It is
// reused from message to message, so decoding allocates nothing (the
// library's decoder, about a dozen allocations per event, was a fifth of
// the recorder's CPU under a flood).
type ctEvent struct {
	kind int
	id   uint32
	f    Flow
}

// Netlink and ctnetlink numbers (linux/netfilter/nfnetlink_conntrack.h).
const (
	nlHdrLen      = 16
	nfGenLen      = 4
	subsysCT      = 1
	msgCTNew      = 0
	msgCTDelete   = 2
	nlmFCreate    = 0x400
	nlmFExcl      = 0x200
	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaCountOrig  = 9
	ctaCountReply = 10
	ctaID         = 12
	ctaTimestamp  = 20
	ctaTupleIP    = 1
	ctaTupleProto = 2
	ctaIPv4Src    = 1
	ctaIPv4Dst    = 2
	ctaIPv6Src    = 3
	ctaIPv6Dst    = 4
	ctaProtoNum   = 1
	ctaProtoSrc   = 2
	ctaProtoDst   = 3
	ctaCountBytes = 2
	ctaCountBy32  = 4
	ctaTSStart    = 1
	ctaTSStop     = 2
)

// decodeEvent decodes one netlink message (header included) into ev. A
// message that is not a conntrack new or destroy event leaves ev.kind
// evOther.
func decodeEvent(m []byte, ev *ctEvent) error {
	*ev = ctEvent{}
	if len(m) < nlHdrLen+nfGenLen {
		return errShort
	}
	typ, flags := binary.NativeEndian.Uint16(m[4:]), binary.NativeEndian.Uint16(m[6:])
	if typ>>8 != subsysCT {
		return nil
	}
	switch typ & 0xff {
	case msgCTNew:
		if flags&(nlmFCreate|nlmFExcl) == 0 {
			return nil // an update
		}
		ev.kind = evNew
	case msgCTDelete:
		ev.kind = evDestroy
	default:
		return nil
	}
	var (
		o, r       tuple
		start, end uint64
	)
	err := attrs(m[nlHdrLen+nfGenLen:], func(t uint16, v []byte) error {
		switch t {
		case ctaTupleOrig:
			return o.decode(v)
		case ctaTupleReply:
			return r.decode(v)
		case ctaCountOrig:
			return counterBytes(v, &ev.f.BytesOrig)
		case ctaCountReply:
			return counterBytes(v, &ev.f.BytesReply)
		case ctaID:
			if len(v) < 4 {
				return errShort
			}
			ev.id = binary.BigEndian.Uint32(v)
		case ctaTimestamp:
			return attrs(v, func(t uint16, v []byte) error {
				if (t == ctaTSStart || t == ctaTSStop) && len(v) < 8 {
					return errShort
				}
				switch t {
				case ctaTSStart:
					start = binary.BigEndian.Uint64(v)
				case ctaTSStop:
					end = binary.BigEndian.Uint64(v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		ev.kind = evOther
		return err
	}
	ev.f.Proto = ProtoName(o.proto)
	ev.f.OrigSrc, ev.f.OrigDst = addrPort(o.src, o.sport), addrPort(o.dst, o.dport)
	ev.f.ReplySrc, ev.f.ReplyDst = addrPort(r.src, r.sport), addrPort(r.dst, r.dport)
	if start != 0 {
		ev.f.Start = time.Unix(0, int64(start))
	}
	if end != 0 {
		ev.f.End = time.Unix(0, int64(end))
	}
	return nil
}

type tuple struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
}

func (tp *tuple) decode(b []byte) error {
	return attrs(b, func(t uint16, v []byte) error {
		switch t {
		case ctaTupleIP:
			return attrs(v, func(t uint16, v []byte) error {
				switch t {
				case ctaIPv4Src, ctaIPv4Dst:
					if len(v) < 4 {
						return errShort
					}
					a := netip.AddrFrom4([4]byte(v[:4]))
					if t == ctaIPv4Src {
						tp.src = a
					} else {
						tp.dst = a
					}
				case ctaIPv6Src, ctaIPv6Dst:
					if len(v) < 16 {
						return errShort
					}
					a := netip.AddrFrom16([16]byte(v[:16]))
					if t == ctaIPv6Src {
						tp.src = a
					} else {
						tp.dst = a
					}
				}
				return nil
			})
		case ctaTupleProto:
			return attrs(v, func(t uint16, v []byte) error {
				switch t {
				case ctaProtoNum:
					if len(v) < 1 {
						return errShort
					}
					tp.proto = v[0]
				case ctaProtoSrc, ctaProtoDst:
					if len(v) < 2 {
						return errShort
					}
					p := binary.BigEndian.Uint16(v)
					if t == ctaProtoSrc {
						tp.sport = p
					} else {
						tp.dport = p
					}
				}
				return nil
			})
		}
		return nil
	})
}

func counterBytes(b []byte, out *uint64) error {
	return attrs(b, func(t uint16, v []byte) error {
		switch t {
		case ctaCountBytes:
			if len(v) < 8 {
				return errShort
			}
			*out = binary.BigEndian.Uint64(v)
		case ctaCountBy32:
			if len(v) < 4 {
				return errShort
			}
			*out = uint64(binary.BigEndian.Uint32(v))
		}
		return nil
	})
}

// attrs calls fn with the type (flags masked off) and value of each
// netlink attribute in b.
func attrs(b []byte, fn func(t uint16, v []byte) error) error {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return errShort
		}
		if err := fn(binary.NativeEndian.Uint16(b[2:])&0x3fff, b[4:l]); err != nil {
			return err
		}
		b = b[min(len(b), (l+3)&^3):]
	}
	return nil
}
