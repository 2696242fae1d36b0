package testlab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Internet is the lab's internet: servers bound to documentation
// addresses inside the internet namespace. Each counts what reaches it,
// so a scenario can prove that something did not get through.
type Internet struct {
	// CA signs the origins' certificates; clients of the lab trust it.
	CA     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAPool *x509.CertPool

	// AuthQueries counts queries to the authoritative server (the edge's
	// upstream), AuthQueries6 those of them that came over IPv6;
	// PublicQueries those to the public resolver.
	AuthQueries, AuthQueries6, PublicQueries atomic.Int64
	// HTTPRequests and HTTPSRequests count requests served by the origins.
	HTTPRequests, HTTPSRequests atomic.Int64
	// UDPDatagrams counts datagrams received per UDP port of the origin.
	UDPDatagrams sync.Map // port (int) -> *atomic.Int64
	// DoTConns counts TCP connections accepted on port 853.
	DoTConns atomic.Int64
	// ShellConns counts TCP connections accepted on ShellPort.
	ShellConns atomic.Int64

	servedMu sync.Mutex
	// served records, per host, the addresses its requests arrived at.
	served map[string][]netip.Addr

	certMu sync.Mutex
	certs  map[string]*tls.Certificate
	// Leaves records every leaf the HTTPS origin served, by server name.
	leaves sync.Map // name -> []byte (DER)
}

// DirectHTTPPort is the origin's HTTP port that no rule redirects.
const DirectHTTPPort = 8080

// ShellPort is a TCP service of the origin that is not the web (an SSH
// server, say): an echo, which no zone's web access may reach through the
// proxy.
const ShellPort = 2222

// originPool is how many addresses, per family, the lab's names are
// spread over.
const originPool = 8

// originAddrs are every address the origin serves HTTP and HTTPS on.
func originAddrs() []string {
	out := []string{OriginAddr, OriginAddr6, SafeSearchAddr, SafeSearchAddr6}
	for i := range originPool {
		v4, v6 := poolAddrs(i)
		out = append(out, v4.String(), v6.String())
	}
	return out
}

func poolAddrs(i int) (v4, v6 netip.Addr) {
	v4 = netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i)})
	v6 = netip.MustParseAddr(fmt.Sprintf("2001:db8:100::1%02d", i))
	return v4, v6
}

// LabAddrs are the addresses the lab's authoritative server gives name:
// forcesafesearch.google.com its own; the names of the lab's own services,
// under .test (RFC 2606: a control plane a test runs at the origin's
// address, the lab's download site), OriginAddr and no IPv6 address;
// every other name one pair
// of the origin's pool picked by a hash of the name, so that different
// names of the real internet mostly get different addresses, as they do
// there.
func LabAddrs(name string) (v4, v6 netip.Addr) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	switch {
	case name == "forcesafesearch.google.com":
		return netip.MustParseAddr(SafeSearchAddr), netip.MustParseAddr(SafeSearchAddr6)
	case name == "test" || strings.HasSuffix(name, ".test"):
		// IPv4 only (no AAAA), as the services tests run there listen.
		return netip.MustParseAddr(OriginAddr), netip.Addr{}
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return poolAddrs(int(h.Sum32() % originPool))
}

// UDPPorts are the origin's UDP listeners: 443 (QUIC, which filtered zones
// must not reach) and 8443 (a control any zone may reach).
var UDPPorts = []int{443, 8443}

func startInternet(l *Lab) (*Internet, error) {
	in := &Internet{certs: map[string]*tls.Certificate{}, served: map[string][]netip.Addr{}}
	if err := in.newCA(); err != nil {
		return nil, err
	}
	ns := l.Internet
	// DNS: the authoritative server for every name, and the public resolver.
	for _, s := range []struct {
		addr    string
		handler dns.Handler
	}{
		{AuthDNSAddr, dns.HandlerFunc(in.authoritative)},
		{AuthDNSAddr6, dns.HandlerFunc(in.authoritative)},
		{PublicResolverAddr, dns.HandlerFunc(in.publicResolver)},
	} {
		pc, err := ns.ListenPacket("udp", net.JoinHostPort(s.addr, "53"))
		if err != nil {
			return nil, fmt.Errorf("testlab: internet: %w", err)
		}
		ln, err := ns.Listen("tcp", net.JoinHostPort(s.addr, "53"))
		if err != nil {
			pc.Close()
			return nil, fmt.Errorf("testlab: internet: %w", err)
		}
		for _, srv := range []*dns.Server{{PacketConn: pc, Handler: s.handler, UDPSize: 4096}, {Listener: ln, Handler: s.handler}} {
			srv := srv
			go srv.ActivateAndServe()
			l.onDown(srv.Shutdown)
		}
	}
	// HTTP and HTTPS origins, on every address a name may resolve to.
	mux := in.recordServed(http.HandlerFunc(in.origin))
	hs := &http.Server{Handler: countRequests(&in.HTTPRequests, mux), ReadHeaderTimeout: 10 * time.Second}
	ts := &http.Server{Handler: countRequests(&in.HTTPSRequests, mux), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{GetCertificate: in.certificate}}
	l.onDown(hs.Close)
	l.onDown(ts.Close)
	for _, a := range originAddrs() {
		hl, err := ns.Listen("tcp", net.JoinHostPort(a, "80"))
		if err != nil {
			return nil, fmt.Errorf("testlab: internet: %w", err)
		}
		go hs.Serve(hl)
		tl, err := ns.Listen("tcp", net.JoinHostPort(a, "443"))
		if err != nil {
			return nil, fmt.Errorf("testlab: internet: %w", err)
		}
		go ts.ServeTLS(tl, "", "")
	}
	// The same origin on a port the firewall does not redirect: a control
	// showing that a zone reaches the internet directly where allowed.
	hl2, err := ns.Listen("tcp", net.JoinHostPort(OriginAddr, strconv.Itoa(DirectHTTPPort)))
	if err != nil {
		return nil, fmt.Errorf("testlab: internet: %w", err)
	}
	hs2 := &http.Server{Handler: countRequests(&in.HTTPRequests, mux), ReadHeaderTimeout: 10 * time.Second}
	go hs2.Serve(hl2)
	l.onDown(hs2.Close)
	// A service that is not the web.
	sl, err := ns.Listen("tcp", net.JoinHostPort(OriginAddr, strconv.Itoa(ShellPort)))
	if err != nil {
		return nil, fmt.Errorf("testlab: internet: %w", err)
	}
	l.onDown(sl.Close)
	go func() {
		for {
			c, err := sl.Accept()
			if err != nil {
				return
			}
			in.ShellConns.Add(1)
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	// UDP listeners (QUIC's port, and a control port).
	for _, port := range UDPPorts {
		pc, err := ns.ListenPacket("udp", net.JoinHostPort(OriginAddr, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("testlab: internet: %w", err)
		}
		n := new(atomic.Int64)
		in.UDPDatagrams.Store(port, n)
		l.onDown(pc.Close)
		go echoUDP(pc, n)
	}
	// DNS over TLS at the public resolver.
	dl, err := ns.Listen("tcp", net.JoinHostPort(PublicResolverAddr, "853"))
	if err != nil {
		return nil, fmt.Errorf("testlab: internet: %w", err)
	}
	l.onDown(dl.Close)
	go func() {
		for {
			c, err := dl.Accept()
			if err != nil {
				return
			}
			in.DoTConns.Add(1)
			go func() {
				tc := tls.Server(c, &tls.Config{GetCertificate: in.certificate})
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				tc.Handshake()
				tc.Close()
			}()
		}
	}()
	return in, nil
}

// UDPCount is how many datagrams reached the origin's UDP port.
func (in *Internet) UDPCount(port int) int64 {
	if v, ok := in.UDPDatagrams.Load(port); ok {
		return v.(*atomic.Int64).Load()
	}
	return -1
}

func echoUDP(pc net.PacketConn, n *atomic.Int64) {
	buf := make([]byte, 2048)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		n.Add(1)
		pc.WriteTo(buf[:k], from)
	}
}

// authoritative answers A and AAAA questions for every name with its
// LabAddrs: any name of the real UT1 lists resolves, and leads to the lab
// origin.
func (in *Internet) authoritative(w dns.ResponseWriter, q *dns.Msg) {
	in.AuthQueries.Add(1)
	if ap, err := netip.ParseAddrPort(w.LocalAddr().String()); err == nil && ap.Addr().Is6() && !ap.Addr().Is4In6() {
		in.AuthQueries6.Add(1)
	}
	var v4, v6 netip.Addr
	if len(q.Question) == 1 {
		v4, v6 = LabAddrs(q.Question[0].Name)
	}
	answer(w, q, v4, v6)
}

// publicResolver answers with WrongAddr: a client that gets it asked this
// server directly and was not redirected to the filter.
func (in *Internet) publicResolver(w dns.ResponseWriter, q *dns.Msg) {
	in.PublicQueries.Add(1)
	answer(w, q, netip.MustParseAddr(WrongAddr), netip.MustParseAddr(WrongAddr6))
}

func answer(w dns.ResponseWriter, q *dns.Msg, v4, v6 netip.Addr) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) == 1 {
		hdr := dns.RR_Header{Name: q.Question[0].Name, Rrtype: q.Question[0].Qtype, Class: dns.ClassINET, Ttl: 60}
		switch q := q.Question[0].Qtype; {
		case q == dns.TypeA && v4.IsValid():
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: v4.AsSlice()})
		case q == dns.TypeAAAA && v6.IsValid():
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: v6.AsSlice()})
		}
	}
	w.WriteMsg(m)
}

// recordServed notes where each host's requests arrived.
func (in *Internet) recordServed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if ap, err := netip.ParseAddrPort(la.String()); err == nil {
				host := r.Host
				if h, _, err := net.SplitHostPort(host); err == nil {
					host = h
				}
				in.servedMu.Lock()
				in.served[strings.ToLower(host)] = append(in.served[strings.ToLower(host)], ap.Addr().Unmap())
				in.servedMu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	})
}

// ServedAt returns the addresses requests for host arrived at, in order.
func (in *Internet) ServedAt(host string) []netip.Addr {
	in.servedMu.Lock()
	defer in.servedMu.Unlock()
	return append([]netip.Addr(nil), in.served[strings.ToLower(host)]...)
}

// OriginBody is what the origin answers for host and path: a scenario
// recognises the origin's own bytes by it.
func OriginBody(host, path string) string {
	return "origine du laboratoire: " + host + path + "\n"
}

// origin serves every host. /big?size=N&chunk=C&every=D streams N bytes in
// chunks of C every D (a long download); anything else is OriginBody.
func (in *Internet) origin(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	w.Header().Set("X-Lab-Origin", "1")
	if r.URL.Path == "/big" {
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		chunk, _ := strconv.Atoi(r.URL.Query().Get("chunk"))
		every, _ := time.ParseDuration(r.URL.Query().Get("every"))
		if size <= 0 || size > 1<<30 || chunk <= 0 || every < 0 || every > time.Second {
			http.Error(w, "bad /big parameters", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		buf := []byte(strings.Repeat("v", chunk))
		fl, _ := w.(http.Flusher)
		for sent := 0; sent < size; sent += chunk {
			n := min(chunk, size-sent)
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
			select {
			case <-time.After(every):
			case <-r.Context().Done():
				return
			}
		}
		return
	}
	io.WriteString(w, OriginBody(host, r.URL.Path))
}

func countRequests(n *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}

func (in *Internet) newCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Autorité du laboratoire Vigie (internet simulé)"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	in.CA, _ = x509.ParseCertificate(der)
	in.caKey = key
	in.CAPool = x509.NewCertPool()
	in.CAPool.AddCert(in.CA)
	return nil
}

// certificate issues (once per name) the origin's certificate for the
// client's server name.
func (in *Internet) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(hello.ServerName)
	if name == "" {
		return nil, errors.New("testlab: the lab origin needs a server name")
	}
	in.certMu.Lock()
	defer in.certMu.Unlock()
	if c, ok := in.certs[name]; ok {
		return c, nil
	}
	c, err := in.issue(name)
	if err != nil {
		return nil, err
	}
	in.certs[name] = c
	in.leaves.Store(name, c.Certificate[0])
	return c, nil
}

// issue makes a certificate for a name or an IP address, signed by the lab CA.
func (in *Internet) issue(name string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if a, err := netip.ParseAddr(name); err == nil {
		tpl.IPAddresses = []net.IP{a.AsSlice()}
	} else {
		tpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, in.CA, &key.PublicKey, in.caKey)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Leaf is the certificate the HTTPS origin served for name (nil if none).
func (in *Internet) Leaf(name string) []byte {
	if v, ok := in.leaves.Load(strings.ToLower(name)); ok {
		return v.([]byte)
	}
	return nil
}
