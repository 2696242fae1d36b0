package dns

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// authServer is a real authoritative server on loopback, the upstream of
// the tests. It answers every name with synthetic records unless a zone
// entry says otherwise, and counts what it is asked.
type authServer struct {
	t    testing.TB
	addr string
	udp  *mdns.Server
	tcp  *mdns.Server

	mu     sync.Mutex
	asked  map[string]int // "name/TYPE/proto" -> count
	delay  time.Duration
	silent atomic.Bool // read queries, answer nothing
	rcode  int         // when non-zero, answer every query with it
	// hold, when set, delays the answer for nameSlow until it is closed.
	hold chan struct{}
	// lastOPT is the OPT record of the last query received.
	lastOPT *mdns.OPT
	// udpPorts are the source ports of the UDP queries, in order.
	udpPorts []int
}

// Test zone names. Real blocked names come from the UT1 lists (see
// policy_test.go); these are the upstream's own.
const (
	nameAllowed   = "www.exemple-autorise.test"
	nameShortTTL  = "court.exemple-autorise.test"
	nameNX        = "absent.exemple-autorise.test"
	nameNoData    = "vide.exemple-autorise.test"
	nameCloak     = "cdn.exemple-autorise.test"
	nameCloakDeep = "chaine.exemple-autorise.test"
	nameHTTPS     = "ech.exemple-autorise.test"
	nameBig       = "gros.exemple-autorise.test"
	nameSlow      = "lent.exemple-autorise.test"
)

// The addresses of forcesafesearch.google.com at the test upstream.
const (
	safeSearchV4 = "198.51.100.8"
	safeSearchV6 = "2001:db8::8"
)

// cloakTarget is a real domain of the adult-top1m list, which the demo
// profile for pupils blocks.
var cloakTarget = "www.pornhub.com"

func startAuth(t testing.TB) *authServer {
	t.Helper()
	a := &authServer{t: t, asked: map[string]int{}}
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		a.addr = pc.LocalAddr().String()
		if ln, err = net.Listen("tcp", a.addr); err != nil {
			pc.Close() // the port is taken for TCP: try another
			if attempt == 20 {
				t.Fatal(err)
			}
		}
	}
	a.udp = &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(a.serveUDP)}
	a.tcp = &mdns.Server{Listener: ln, Handler: mdns.HandlerFunc(a.serveTCP)}
	for _, s := range []*mdns.Server{a.udp, a.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
	}
	t.Cleanup(func() {
		a.udp.Shutdown()
		a.tcp.Shutdown()
	})
	return a
}

func (a *authServer) count(name string, qtype uint16, proto string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked[strings.ToLower(mdns.Fqdn(name))+"/"+mdns.TypeToString[qtype]+"/"+proto]
}

func (a *authServer) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.asked {
		n += c
	}
	return n
}

func (a *authServer) serveUDP(w mdns.ResponseWriter, q *mdns.Msg) { a.serve(w, q, "udp") }
func (a *authServer) serveTCP(w mdns.ResponseWriter, q *mdns.Msg) { a.serve(w, q, "tcp") }

func (a *authServer) serve(w mdns.ResponseWriter, q *mdns.Msg, proto string) {
	if len(q.Question) != 1 {
		return
	}
	qq := q.Question[0]
	name := strings.ToLower(qq.Name)
	a.mu.Lock()
	a.asked[name+"/"+mdns.TypeToString[qq.Qtype]+"/"+proto]++
	a.lastOPT = q.IsEdns0()
	if ua, ok := w.RemoteAddr().(*net.UDPAddr); ok && proto == "udp" {
		a.udpPorts = append(a.udpPorts, ua.Port)
	}
	delay, rcode, hold := a.delay, a.rcode, a.hold
	a.mu.Unlock()
	if a.silent.Load() {
		return
	}
	if hold != nil && name == nameSlow+"." {
		<-hold
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	m := new(mdns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if rcode != 0 {
		m.Rcode = rcode
		w.WriteMsg(m)
		return
	}
	rr := func(s string) mdns.RR {
		r, err := mdns.NewRR(s)
		if err != nil {
			a.t.Errorf("test zone: %v", err)
		}
		return r
	}
	soa := rr("exemple-autorise.test. 3600 IN SOA ns.exemple-autorise.test. hostmaster.exemple-autorise.test. 1 7200 900 1209600 120")
	synth := func(owner string, ttl int) {
		switch qq.Qtype {
		case mdns.TypeA:
			m.Answer = append(m.Answer, rr(owner+" "+itoa(ttl)+" IN A 198.51.100.7"))
		case mdns.TypeAAAA:
			m.Answer = append(m.Answer, rr(owner+" "+itoa(ttl)+" IN AAAA 2001:db8::7"))
		default:
			m.Ns = append(m.Ns, soa)
		}
	}
	switch name {
	case nameNX + ".":
		m.Rcode = mdns.RcodeNameError
		m.Ns = append(m.Ns, soa)
	case nameNoData + ".":
		m.Ns = append(m.Ns, soa)
	case nameShortTTL + ".":
		synth(name, 300)
	case nameCloak + ".":
		m.Answer = append(m.Answer, rr(name+" 600 IN CNAME "+cloakTarget+"."))
		synth(cloakTarget+".", 600)
	case nameCloakDeep + ".":
		m.Answer = append(m.Answer, rr(name+" 600 IN CNAME step.exemple-autorise.test."),
			rr("step.exemple-autorise.test. 600 IN CNAME "+cloakTarget+"."))
		synth(cloakTarget+".", 600)
	case nameHTTPS + ".":
		if qq.Qtype == mdns.TypeHTTPS {
			m.Answer = append(m.Answer, rr(name+` 300 IN HTTPS 1 . alpn="h2,h3" ech="AEX+DQBBpQAgACB/dmvbdpR3kYHqaqY/BKdBD8dhTFz4LdDmT7Ih6gpOEABYAAQAAQABABJjb3Zlci5leGFtcGxlLnRlc3QAAA=="`))
		} else {
			synth(name, 300)
		}
	case nameBig + ".":
		for i := 0; i < 40; i++ {
			m.Answer = append(m.Answer, rr(name+` 300 IN TXT "`+strings.Repeat("x", 60)+itoa(i)+`"`))
		}
		if proto == "udp" {
			// Like a real server: never more than the asked buffer.
			size := 512
			if o := q.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
	case "forcesafesearch.google.com.":
		// Its own addresses, as on the real internet: what a SafeSearch
		// rewrite leads to is visible in the address.
		switch qq.Qtype {
		case mdns.TypeA:
			m.Answer = append(m.Answer, rr(name+" 300 IN A "+safeSearchV4))
		case mdns.TypeAAAA:
			m.Answer = append(m.Answer, rr(name+" 300 IN AAAA "+safeSearchV6))
		}
	default:
		synth(name, 3600)
	}
	w.WriteMsg(m)
}

func itoa(i int) string { return strconv.Itoa(i) }
