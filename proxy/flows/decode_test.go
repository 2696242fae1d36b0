package flows

import (
	"encoding/binary"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
)

// flowOf is the flow as the library's decoder sees it: decodeEvent must
// agree with it.
func flowOf(cf *conntrack.Flow) Flow {
	o, p := cf.TupleOrig, cf.TupleReply
	f := Flow{
		Proto:      ProtoName(o.Proto.Protocol),
		OrigSrc:    addrPort(o.IP.SourceAddress, o.Proto.SourcePort),
		OrigDst:    addrPort(o.IP.DestinationAddress, o.Proto.DestinationPort),
		ReplySrc:   addrPort(p.IP.SourceAddress, p.Proto.SourcePort),
		ReplyDst:   addrPort(p.IP.DestinationAddress, p.Proto.DestinationPort),
		Start:      cf.Timestamp.Start,
		End:        cf.Timestamp.Stop,
		BytesOrig:  cf.CountersOrig.Bytes,
		BytesReply: cf.CountersReply.Bytes,
	}
	return f
}

// libraryEvent decodes m with github.com/ti-mo/conntrack.
func libraryEvent(m []byte) (kind int, id uint32, f Flow, ok bool) {
	if len(m) < nlHdrLen {
		return 0, 0, Flow{}, false
	}
	msg := netlink.Message{Header: netlink.Header{Length: binary.NativeEndian.Uint32(m),
		Type: netlink.HeaderType(binary.NativeEndian.Uint16(m[4:])), Flags: netlink.HeaderFlags(binary.NativeEndian.Uint16(m[6:]))},
		Data: m[nlHdrLen:]}
	var ev conntrack.Event
	if err := ev.Unmarshal(msg); err != nil || ev.Flow == nil {
		return 0, 0, Flow{}, false
	}
	switch ev.Type {
	case conntrack.EventNew:
		kind = evNew
	case conntrack.EventDestroy:
		kind = evDestroy
	default:
		return evOther, 0, Flow{}, true
	}
	return kind, ev.Flow.ID, flowOf(ev.Flow), true
}

// sameAsLibrary fails t when decodeEvent and the library disagree on a
// message the library accepts.
func sameAsLibrary(t *testing.T, m []byte) {
	t.Helper()
	kind, id, f, ok := libraryEvent(m)
	var ev ctEvent
	err := decodeEvent(m, &ev)
	if !ok {
		return
	}
	if err != nil {
		t.Fatalf("decodeEvent: %v; the library decodes %+v", err, f)
	}
	if ev.kind != kind || (kind != evOther && (ev.id != id || ev.f != f)) {
		t.Fatalf("decodeEvent: kind %d id %d %+v\nlibrary:     kind %d id %d %+v", ev.kind, ev.id, ev.f, kind, id, f)
	}
}

// ctMessage builds a conntrack event message from nested attributes.
func ctMessage(typ, flags uint16, attrs ...[]byte) []byte {
	m := make([]byte, nlHdrLen+nfGenLen)
	binary.NativeEndian.PutUint16(m[4:], typ)
	binary.NativeEndian.PutUint16(m[6:], flags)
	m[nlHdrLen] = 2 // AF_INET
	for _, a := range attrs {
		m = append(m, a...)
	}
	binary.NativeEndian.PutUint32(m, uint32(len(m)))
	return m
}

func nla(t uint16, v ...[]byte) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, x...)
	}
	h := make([]byte, 4, 4+len(b)+3)
	binary.NativeEndian.PutUint16(h, uint16(4+len(b)))
	binary.NativeEndian.PutUint16(h[2:], t)
	h = append(h, b...)
	for len(h)%4 != 0 {
		h = append(h, 0)
	}
	return h
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func sampleDestroy() []byte {
	tup := func(t uint16, src, dst []byte, sp, dp uint16) []byte {
		return nla(t|0x8000, nla(ctaTupleIP|0x8000, nla(ctaIPv4Src, src), nla(ctaIPv4Dst, dst)),
			nla(ctaTupleProto|0x8000, nla(ctaProtoNum, []byte{6}), nla(ctaProtoSrc, be16(sp)), nla(ctaProtoDst, be16(dp))))
	}
	return ctMessage(subsysCT<<8|msgCTDelete, 0,
		tup(ctaTupleOrig, []byte{10, 10, 0, 10}, []byte{203, 0, 113, 7}, 40123, 8443),
		tup(ctaTupleReply, []byte{203, 0, 113, 7}, []byte{198, 51, 100, 1}, 8443, 61000),
		nla(ctaCountOrig|0x8000, nla(1, be64(3)), nla(ctaCountBytes, be64(500))),
		nla(ctaCountReply|0x8000, nla(1, be64(4)), nla(ctaCountBytes, be64(9000))),
		nla(ctaID, be32(77)),
		nla(ctaTimestamp|0x8000, nla(ctaTSStart, be64(1_773_320_000_000_000_000)), nla(ctaTSStop, be64(1_773_320_001_000_000_000))))
}

func TestDecodeEvent(t *testing.T) {
	m := sampleDestroy()
	var ev ctEvent
	if err := decodeEvent(m, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.kind != evDestroy || ev.id != 77 || ev.f.Proto != "tcp" || ev.f.OrigSrc != ap("10.10.0.10:40123") ||
		ev.f.ReplyDst != ap("198.51.100.1:61000") || ev.f.BytesOrig != 500 || ev.f.BytesReply != 9000 ||
		ev.f.End.Sub(ev.f.Start).Seconds() != 1 {
		t.Fatalf("decoded %+v", ev)
	}
	sameAsLibrary(t, m)
	for i := range m { // every truncation: an error or a partial event, never a crash
		decodeEvent(m[:i], &ev)
	}
	if allocs := testing.AllocsPerRun(100, func() { decodeEvent(m, &ev) }); allocs != 0 {
		t.Fatalf("decodeEvent allocates %.0f times per event", allocs)
	}
}

// FuzzDecodeEvent feeds decodeEvent any bytes: an error or an event,
// never a crash. (It is not compared with the library here: on malformed
// input the library reads some attribute types modulo 256; real kernel
// messages are compared in TestKernelDecodeMatchesLibrary.)
func FuzzDecodeEvent(f *testing.F) {
	f.Add(sampleDestroy())
	f.Fuzz(func(t *testing.T, m []byte) {
		if len(m) >= 4 {
			binary.NativeEndian.PutUint32(m, uint32(len(m)))
		}
		var ev ctEvent
		if err := decodeEvent(m, &ev); err != nil && ev.kind != evOther {
			t.Fatalf("error %v with kind %d", err, ev.kind)
		}
	})
}
