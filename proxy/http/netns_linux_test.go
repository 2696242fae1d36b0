//go:build linux

package httpproxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"vigie/journal"
	"vigie/testlab/netns"
	"vigie/tstest"
)

// inNetns runs fn on a thread inside network namespace name (see
// testlab/netns); sockets made there stay in it.
func inNetns(t testing.TB, name string, fn func()) {
	if err := netns.DoIn(name, func() error { fn(); return nil }); err != nil {
		t.Errorf("%v", err)
	}
}

// lab is a throwaway two-namespace school: a pupil's machine (10.10.0.2,
// zone pedagogique) behind the edge (10.10.0.1), whose nftables redirects
// the pupil's ports 80 and 443 to the proxy. Origins on the lab
// "internet" (198.51.100.10) live on the edge's loopback.
type lab struct {
	client, edge, veth string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	tstest.RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("the network namespace test needs iproute2's ip: %v", err)
	}
	var b [3]byte
	rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	l := &lab{client: "vigie-c-" + sfx, edge: "vigie-e-" + sfx, veth: "vh" + sfx}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", l.client)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.client).Run() })
	run("netns", "add", l.edge)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.edge).Run() })
	run("link", "add", l.veth+"c", "type", "veth", "peer", "name", l.veth+"e")
	run("link", "set", l.veth+"c", "netns", l.client)
	run("link", "set", l.veth+"e", "netns", l.edge)
	run("-n", l.client, "addr", "add", "10.10.0.2/24", "dev", l.veth+"c")
	run("-n", l.client, "link", "set", l.veth+"c", "up")
	run("-n", l.client, "link", "set", "lo", "up")
	run("-n", l.client, "route", "add", "default", "via", "10.10.0.1")
	run("-n", l.edge, "addr", "add", "10.10.0.1/24", "dev", l.veth+"e")
	run("-n", l.edge, "link", "set", l.veth+"e", "up")
	run("-n", l.edge, "link", "set", "lo", "up")
	// The lab internet's addresses sit on the edge's loopback (no dummy
	// interfaces in every kernel): local to the edge, routed to by the pupil.
	run("-n", l.edge, "addr", "add", "198.51.100.10/32", "dev", "lo")
	run("-n", l.edge, "addr", "add", "198.51.100.20/32", "dev", "lo")
	l.redirect(t, map[uint16]uint16{80: 8080, 443: 8443})
	return l
}

// redirect installs, in the edge namespace, the nftables rules the
// firewall component installs at a school: the pupil side's ports to the
// proxy's ports.
func (l *lab) redirect(t *testing.T, ports map[uint16]uint16) {
	fd, err := unix.Open("/run/netns/"+l.edge, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	tbl := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "vigie_test"})
	ch := c.AddChain(&nftables.Chain{Name: "prerouting", Table: tbl, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	ifname := make([]byte, 16)
	copy(ifname, l.veth+"e")
	for from, to := range ports {
		c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(from)},
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(to)},
			&expr.Redir{RegisterProtoMin: 1},
		}})
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("nftables redirect: %v", err)
	}
}

func (l *lab) listen(t *testing.T, ns, addr string) net.Listener {
	var ln net.Listener
	var err error
	inNetns(t, ns, func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (l *lab) dialFromClient(t *testing.T, addr string) net.Conn {
	var c net.Conn
	var err error
	inNetns(t, l.client, func() { c, err = net.DialTimeout("tcp", addr, 5*time.Second) })
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestNetnsTransparent(t *testing.T) {
	l := newLab(t)
	// Origins on the lab internet.
	httpOrigin := httptest.NewUnstartedServer(originHandler())
	httpOrigin.Listener = l.listen(t, l.edge, "198.51.100.10:80")
	httpOrigin.Start()
	defer httpOrigin.Close()
	tlsOrigin := httptest.NewUnstartedServer(originHandler())
	tlsOrigin.Listener = l.listen(t, l.edge, "198.51.100.10:443")
	tlsOrigin.StartTLS()
	defer tlsOrigin.Close()
	roots := originRoots(tlsOrigin)

	e := newEnvNoListen(t, func(c *Config, d *Deps) {
		d.OriginalDst = nil // the real SO_ORIGINAL_DST
		d.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			var err error
			inNetns(t, l.edge, func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) })
			return c, err
		}
	})
	e.names["site.test"] = []netip.Addr{netip.MustParseAddr("198.51.100.10")}
	e.names["example.com"] = e.names["site.test"]
	go e.p.ServeTransparentHTTP(l.listen(t, l.edge, "0.0.0.0:8080"))
	go e.p.ServeTransparentHTTPS(l.listen(t, l.edge, "0.0.0.0:8443"))
	tstest.Eventually(t, 10*time.Second, func() bool { return len(e.p.Addrs()) >= 2 }, "the transparent listeners never started")

	httpGet := func(t *testing.T, dst, host, path string) (*http.Response, string) {
		c := l.dialFromClient(t, dst)
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	t.Run("http allowed reaches the original destination", func(t *testing.T) {
		resp, body := httpGet(t, "198.51.100.10:80", "site.test", "/ok")
		if resp.StatusCode != 200 || body != "bonjour site.test" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		r := e.lastNav("site.test")
		if r.Dest.String() != "198.51.100.10:80" || r.Client.Addr().String() != "10.10.0.2" || r.URL != "http://site.test/ok" {
			t.Errorf("record %+v", r)
		}
	})
	t.Run("http blocked host", func(t *testing.T) {
		resp, body := httpGet(t, "198.51.100.10:80", "pornhub.com", "/")
		if resp.StatusCode != 403 || !strings.Contains(body, "Accès refusé") {
			t.Fatalf("%d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("http forged host to another address", func(t *testing.T) {
		resp, body := httpGet(t, "198.51.100.20:80", "site.test", "/ok")
		if resp.StatusCode != 403 || !strings.Contains(body, "Destination incohérente") {
			t.Fatalf("%d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("http straight to the proxy port is refused", func(t *testing.T) {
		resp, _ := httpGet(t, "10.10.0.1:8080", "site.test", "/ok")
		if resp.StatusCode != 508 && resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	tlsDial := func(t *testing.T, dst string, cfg *tls.Config) (*tls.Conn, error) {
		c := l.dialFromClient(t, dst)
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
	t.Run("https allowed is spliced to the original destination", func(t *testing.T) {
		c, err := tlsDial(t, "198.51.100.10:443", &tls.Config{ServerName: "example.com", RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		resp := getOver(t, c, "example.com", "/ok")
		c.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		r := e.lastNav("example.com")
		if r.Dest.String() != "198.51.100.10:443" || r.Proto != "https" || r.Verdict != "allow" {
			t.Errorf("record %+v", r)
		}
		var conn journal.Record
		for _, rec := range e.records(journal.Connexions, 1) {
			if rec.Dest.String() == "198.51.100.10:443" {
				conn = rec
			}
		}
		if conn.Client.Addr().String() != "10.10.0.2" || conn.BytesIn == 0 || conn.BytesOut == 0 {
			t.Errorf("connection record %+v", conn)
		}
	})
	for _, tc := range []struct{ name, dst, sni string }{
		{"https blocked server name", "198.51.100.10:443", "pornhub.com"},
		{"https forged server name", "198.51.100.20:443", "example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tlsDial(t, tc.dst, &tls.Config{ServerName: tc.sni, RootCAs: roots})
			if err == nil {
				c.Close()
				t.Fatal("handshake succeeded")
			}
			if !strings.Contains(err.Error(), "access denied") {
				t.Errorf("client saw %v", err)
			}
		})
	}
}
