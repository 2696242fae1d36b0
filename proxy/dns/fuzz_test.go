package dns

import (
	"net"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// discardConn is the TCP connection of fuzzed queries: answers go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServe feeds arbitrary bytes to the whole chain, as a UDP or a TCP
// query, with the real-list policy and a real upstream. Whatever comes in,
// the server must not panic, and what it answers must be a well-formed DNS
// response to that query that fits the client's buffer.
func FuzzServe(f *testing.F) {
	for _, q := range [][]byte{
		rawQuery(1, nameAllowed, typeA),
		rawQuery(2, "pornhub.com", typeAAAA),
		rawQuery(3, "www.google.fr", typeA),
		rawQuery(4, nameCloak, typeA),
		rawQuery(5, nameBig, typeTXT),
		rawQuery(6, nameHTTPS, typeHTTPS),
		rawQuery(7, dohCanary, typeA),
		rawQuery(8, "", typeNS),
		withOPT(rawQuery(9, nameAllowed, typeA), 0, []byte{0, 8, 0, 4, 0, 1, 0, 0}),
		withOPT(rawQuery(10, "xn--80ak6aa92e.com", typeA), 1, nil),
		append(appendHeader(nil, 7, 0, 1, 0, 0, 0), 0xC0, 0x0C, 0, 1, 0, 1),
	} {
		f.Add(q, false)
		f.Add(q, true)
	}
	h := newHarness(f, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	self, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { self.Close() })
	sink := &udpListener{s: h.srv, conn: self}
	client := netip.MustParseAddrPort(self.LocalAddr().String())
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		r := h.srv.pool.Get().(*request)
		defer h.srv.pool.Put(r)
		n := copy(r.in, pkt)
		r.pkt, r.client, r.tcp, r.oob = r.in[:n], client, tcp, nil
		if tcp {
			r.udp, r.conn = nil, &tcpConn{c: discardConn{}}
		} else {
			r.udp, r.conn = sink, nil
		}
		h.srv.serve(r)
		if len(r.out) == 0 {
			return
		}
		if len(r.out) > r.limit() {
			t.Fatalf("answer of %d bytes for a limit of %d", len(r.out), r.limit())
		}
		var m mdns.Msg
		if err := m.Unpack(r.out); err != nil {
			t.Fatalf("answer does not parse: %v\n%x", err, r.out)
		}
		if !m.Response || len(pkt) < 2 || m.Id != uint16(pkt[0])<<8|uint16(pkt[1]) {
			t.Fatalf("answer header %+v for query %x", m.MsgHdr, pkt)
		}
	})
}

// FuzzParseQuestion checks the fast-path parser against miekg/dns: a query
// it accepts must be one miekg reads the same way.
func FuzzParseQuestion(f *testing.F) {
	f.Add(rawQuery(1, nameAllowed, typeA))
	f.Add(withOPT(rawQuery(2, "Pornhub.COM", typeAAAA), 0, []byte{0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8}))
	f.Add(rawQuery(3, "", typeNS))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var q question
		var name [256]byte
		n, fault := parseQuestion(pkt, &q, &name)
		if fault != faultNone {
			return
		}
		var m mdns.Msg
		if err := m.Unpack(pkt); err != nil {
			// miekg is stricter about the additional section (TSIG and
			// the like are skipped here): only the question must agree.
			if _, _, err := mdns.UnpackDomainName(pkt, headerLen); err != nil {
				t.Fatalf("accepted a question miekg cannot read: %v", err)
			}
			return
		}
		if len(m.Question) != 1 {
			t.Fatalf("accepted %d questions", len(m.Question))
		}
		mq := m.Question[0]
		if mq.Qtype != q.qtype || mq.Qclass != q.qclass || m.Id != q.id {
			t.Fatalf("question %v, parsed %+v", mq, q)
		}
		got := string(name[:n])
		want := mdns.CanonicalName(mq.Name)
		if want == "." {
			want = ""
		} else {
			want = want[:len(want)-1]
		}
		// miekg escapes bytes that are not printable; compare those names
		// through the wire form instead.
		if got != want {
			w1 := appendName(nil, got)
			w2 := make([]byte, 256)
			off, err := mdns.PackDomainName(mdns.CanonicalName(mq.Name), w2, 0, nil, false)
			if err != nil || string(w1) != string(w2[:off]) {
				t.Fatalf("name %q, miekg reads %q", got, want)
			}
		}
		if o := m.IsEdns0(); (o != nil) != q.edns || o != nil && (o.UDPSize() != q.ednsSize || o.Do() != q.do) {
			t.Fatalf("EDNS %v, parsed %+v", o, q)
		}
	})
}

// FuzzUpstreamAnswer feeds arbitrary bytes as an upstream's answer: they
// come from the network and must never crash the filter or reach a client
// in a form that does not parse.
func FuzzUpstreamAnswer(f *testing.F) {
	for _, build := range []func(m *mdns.Msg){
		func(m *mdns.Msg) {
			m.Answer = append(m.Answer, mustRR("www.exemple-autorise.test. 300 IN A 198.51.100.7"))
		},
		func(m *mdns.Msg) {
			m.Answer = append(m.Answer, mustRR("www.exemple-autorise.test. 300 IN CNAME www.pornhub.com."), mustRR("www.pornhub.com. 30 IN A 198.51.100.8"))
		},
		func(m *mdns.Msg) {
			m.Rcode = mdns.RcodeNameError
			m.Ns = append(m.Ns, mustRR("exemple-autorise.test. 3600 IN SOA a. b. 1 2 3 4 5"))
		},
		func(m *mdns.Msg) {
			m.Answer = append(m.Answer, mustRR(`www.exemple-autorise.test. 300 IN HTTPS 1 . alpn="h2" ech="AEX+DQBBpQAgACB/dmvbdpR3kYHqaqY/BKdBD8dhTFz4LdDmT7Ih6gpOEABYAAQAAQABABJjb3Zlci5leGFtcGxlLnRlc3QAAA=="`))
		},
	} {
		m := new(mdns.Msg)
		m.SetQuestion("www.exemple-autorise.test.", mdns.TypeA)
		m.Response = true
		build(m)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	h := newHarness(f, nil)
	f.Fuzz(func(t *testing.T, resp []byte) {
		a, err := prepareAnswer(resp, "www.exemple-autorise.test", typeA, ttlPolicy{max: 86400, negMax: 3600, negDefault: 60})
		if err != nil {
			return
		}
		e := &entry{answer: *a}
		r := h.srv.pool.Get().(*request)
		defer h.srv.pool.Put(r)
		q := withOPT(rawQuery(0x4242, "WWW.exemple-autorise.test", typeA), 0, nil)
		r.reset()
		r.pkt = append(r.in[:0], q...)
		if _, fault := parseQuestion(r.pkt, &r.q, &r.nameBuf); fault != faultNone {
			t.Fatal(fault)
		}
		r.entry, r.tcp = e, false
		for _, rewrite := range []string{"", "forcesafesearch.google.com"} {
			r.rewrite = rewrite
			h.srv.renderEntry(r)
			var m mdns.Msg
			if err := m.Unpack(r.out); err != nil {
				t.Fatalf("rendered answer does not parse: %v", err)
			}
			if m.Id != 0x4242 || len(r.out) > r.limit() {
				t.Fatalf("rendered answer: id %x, %d bytes", m.Id, len(r.out))
			}
		}
	})
}

func mustRR(s string) mdns.RR {
	rr, err := mdns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}
