//go:build linux

package flows

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"

	"vigie/journal"
	"vigie/testlab/netns"
	"vigie/tstest"
)

// needRoot stops the test without root or nft (tstest: a skip, a
// failure under CI).
func needRoot(t testing.TB) {
	t.Helper()
	tstest.RequireRoot(t)
	tstest.RequireCommand(t, "nft", "nftables")
}

// inNetns runs fn on a thread inside network namespace name (see
// testlab/netns); sockets made there stay in it.
func inNetns(t testing.TB, name string, fn func()) {
	if err := netns.DoIn(name, func() error { fn(); return nil }); err != nil {
		t.Errorf("%v", err)
	}
}

// kernelLab is a pupil (10.10.0.10) behind a gateway (10.10.0.1,
// 198.51.100.1) that masquerades towards a lab internet host
// (198.51.100.2).
type kernelLab struct{ client, gw, wan string }

func newKernelLab(t testing.TB) *kernelLab {
	needRoot(t)
	var b [3]byte
	rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	l := &kernelLab{client: "vf-c-" + sfx, gw: "vf-g-" + sfx, wan: "vf-w-" + sfx}
	sh := func(script string) {
		t.Helper()
		if out, err := exec.Command("sh", "-ec", script).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	for _, n := range []string{l.client, l.gw, l.wan} {
		sh("ip netns add " + n)
		n := n
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
	}
	sh(strings.NewReplacer("C", l.client, "G", l.gw, "W", l.wan, "X", sfx).Replace(`
ip link add lX netns C type veth peer name lan0 netns G
ip link add wX netns W type veth peer name wan0 netns G
ip -n C addr add 10.10.0.10/24 dev lX; ip -n C link set lX up; ip -n C link set lo up
ip -n C route add default via 10.10.0.1
ip -n G addr add 10.10.0.1/24 dev lan0; ip -n G link set lan0 up
ip -n G addr add 198.51.100.1/24 dev wan0; ip -n G link set wan0 up; ip -n G link set lo up
ip -n W addr add 198.51.100.2/24 dev wX; ip -n W link set wX up; ip -n W link set lo up
ip netns exec G sysctl -qw net.ipv4.ip_forward=1
ip netns exec G sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 || true
printf 'table ip t {\n chain forward { type filter hook forward priority 0; policy accept;\n  udp dport 51820 log prefix "internet.pedagogique" group 7 drop\n }\n chain postrouting { type nat hook postrouting priority 100; oifname "wan0" masquerade; }\n}\n' | ip netns exec G nft -f -
`))
	return l
}

func TestKernelFlowRecorded(t *testing.T) {
	l := newKernelLab(t)
	var ln net.Listener
	inNetns(t, l.wan, func() {
		var err error
		ln, err = net.Listen("tcp", "198.51.100.2:8443")
		if err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Write([]byte("bonjour"))
			c.Close()
		}
	}()

	mem := &journal.Memory{}
	r, err := New(Config{UAI: "0671234X", ReapInterval: time.Second}, Deps{Journal: mem,
		Local: func(a netip.Addr) bool {
			return a == netip.MustParseAddr("10.10.0.1") || a == netip.MustParseAddr("198.51.100.1")
		},
		Zone: func(netip.Addr) string { return "pedagogique" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go inNetns(t, l.gw, func() { done <- r.Run(ctx) })
	defer func() { cancel(); <-done }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("recorder: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("recorder not subscribed")
	}

	var local netip.AddrPort
	inNetns(t, l.client, func() {
		c, err := net.DialTimeout("tcp", "198.51.100.2:8443", 5*time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		local = netip.MustParseAddrPort(c.LocalAddr().String())
		c.Write([]byte("hello from the pupil"))
		c.(*net.TCPConn).CloseWrite()
		io.ReadAll(c)
		c.Close()
	})
	var rec journal.Record
	if !tstest.WaitFor(60*time.Second, func() bool {
		for _, rec = range mem.Records() {
			if rec.Client == local {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no record of the flow from %s; have %+v", local, mem.Records())
	}
	if rec.Proto != "tcp" || rec.Dest != netip.MustParseAddrPort("198.51.100.2:8443") ||
		rec.NAT.Addr() != netip.MustParseAddr("198.51.100.1") || rec.NAT.Port() == 0 ||
		rec.BytesOut == 0 || rec.BytesIn == 0 || rec.Verdict != "allow" || rec.Zone != "pedagogique" {
		t.Fatalf("flow record %+v", rec)
	}
	t.Logf("flow %s → %s as %s, %d/%d bytes, %s", rec.Client, rec.Dest, rec.NAT, rec.BytesOut, rec.BytesIn, rec.Duration)
}

func TestKernelDropRecorded(t *testing.T) {
	l := newKernelLab(t)
	mem := &journal.Memory{}
	r, err := New(Config{UAI: "0671234X"}, Deps{Journal: mem, Zone: func(netip.Addr) string { return "pedagogique" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go inNetns(t, l.gw, func() { done <- r.RunDrops(ctx, 7) })
	defer func() { cancel(); <-done }()
	select {
	case <-r.DropsReady():
	case err := <-done:
		t.Fatalf("nflog: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("nflog not bound")
	}
	var local netip.AddrPort
	inNetns(t, l.client, func() {
		c, err := net.Dial("udp", "198.51.100.2:51820")
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		local = netip.MustParseAddrPort(c.LocalAddr().String())
		for i := 0; i < 3; i++ { // retransmissions fold into one record
			c.Write([]byte("wireguard handshake"))
		}
	})
	tstest.Eventually(t, 10*time.Second, func() bool { return len(mem.Records()) > 0 }, "no record of the dropped flow")
	time.Sleep(200 * time.Millisecond)
	recs := mem.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records for one dropped flow: %+v", len(recs), recs)
	}
	rec := recs[0]
	if rec.Client != local || rec.Dest != netip.MustParseAddrPort("198.51.100.2:51820") || rec.Proto != "udp" ||
		rec.Verdict != "drop" || rec.Reason != "internet.pedagogique" || rec.Zone != "pedagogique" {
		t.Fatalf("drop record %+v", rec)
	}
}

// BenchmarkConntrackFlood floods the gateway with b.N new UDP flows from
// the pupil (distinct source ports) while the recorder and the kernel's
// own tool, "conntrack -E -e NEW" (Debian's conntrack package), listen to
// the same events side by side. It reports the flood's rate and the share
// of its flows each of them saw (1 means nothing lost). Root only:
//
//	go test ./proxy/flows -run '^$' -bench ConntrackFlood -benchtime 20000x
func BenchmarkConntrackFlood(b *testing.B) {
	l := newKernelLab(b)
	if _, err := exec.LookPath("conntrack"); err != nil {
		b.Fatalf("the conntrack command is needed (apt-get install conntrack): %v", err)
	}
	r, err := New(Config{UAI: "0671234X", Rate: 1e9, Burst: 1 << 30, ReapInterval: -1}, Deps{Journal: journal.Discard{},
		Local: func(a netip.Addr) bool {
			return a == netip.MustParseAddr("10.10.0.1") || a == netip.MustParseAddr("198.51.100.1")
		}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go inNetns(b, l.gw, func() { done <- r.Run(ctx) })
	defer func() { cancel(); <-done }()
	<-r.Ready()
	cmd := exec.Command("ip", "netns", "exec", l.gw, "conntrack", "-E", "-e", "NEW", "-b", "33554432")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var peer atomic.Int64
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			peer.Add(1)
		}
	}()
	defer func() { cmd.Process.Kill(); cmd.Wait(); <-peerDone }()
	time.Sleep(500 * time.Millisecond) // both subscribed
	newEvents := func() float64 { return testutil.ToFloat64(r.m.events.WithLabelValues("new")) }
	base, peerBase := newEvents(), peer.Load()
	b.ResetTimer()
	start := time.Now()
	// The kernel picks source ports at random: a port drawn again while
	// its flow is in the table is the same flow, so the flows are the
	// distinct ports.
	ports := map[string]bool{}
	inNetns(b, l.client, func() {
		for i := 0; i < b.N; i++ {
			c, err := net.Dial("udp", "198.51.100.2:9")
			if err != nil {
				continue
			}
			c.Write([]byte("x"))
			ports[c.LocalAddr().String()] = true
			c.Close()
		}
	})
	gen := time.Since(start)
	b.StopTimer()
	// Let both drain what the kernel queued.
	for last, idle := -1.0, 0; idle < 10; idle++ {
		time.Sleep(100 * time.Millisecond)
		if n := newEvents(); n != last {
			last, idle = n, 0
		}
	}
	seen, peerSeen := newEvents()-base, float64(peer.Load()-peerBase)
	flows := float64(len(ports))
	b.ReportMetric(flows/gen.Seconds(), "new-flows/s")
	b.ReportMetric(seen/flows, "recorder-seen-ratio")
	b.ReportMetric(peerSeen/flows, "conntrack-E-seen-ratio")
	b.ReportMetric(testutil.ToFloat64(r.m.lost.WithLabelValues(LossENOBUFS)), "enobufs-overruns")
}

// TestKernelOverrunDeclared overruns a deliberately small receive buffer:
// the flood's destroy events (a table flush ends all its flows at once)
// cannot all be queued, and every flow the kernel made must then be either
// recorded or declared lost in a gap record, exactly.
func TestKernelOverrunDeclared(t *testing.T) {
	l := newKernelLab(t)
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatalf("the conntrack command is needed (Debian package conntrack): %v", err)
	}
	// Flows stay in the table until the flush, however slow the flood.
	if out, err := exec.Command("ip", "netns", "exec", l.gw, "sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=600").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v: %s", err, out)
	}
	mem := &journal.Memory{}
	r, err := New(Config{UAI: "0671234X", Rate: 1e9, Burst: 1 << 30, ReapInterval: -1, ReadBuffer: 4096}, Deps{Journal: mem,
		Local: func(a netip.Addr) bool {
			return a == netip.MustParseAddr("10.10.0.1") || a == netip.MustParseAddr("198.51.100.1")
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go inNetns(t, l.gw, func() { done <- r.Run(ctx) })
	defer func() { cancel(); <-done }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("recorder: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("recorder not subscribed")
	}
	const n = 5000
	inNetns(t, l.client, func() {
		for i := 0; i < n; i++ {
			c, err := net.Dial("udp", "198.51.100.2:9")
			if err != nil {
				t.Errorf("flow %d: %v", i, err)
				return
			}
			c.Write([]byte("x"))
			c.Close()
		}
	})
	// The kernel's own count of the flows it made (a source port drawn
	// twice while its flow lives is one flow).
	out, err := exec.Command("ip", "netns", "exec", l.gw, "conntrack", "-C").Output()
	if err != nil {
		t.Fatalf("conntrack -C: %v", err)
	}
	var made int64
	if _, err := fmt.Sscan(string(out), &made); err != nil || made < n/2 {
		t.Fatalf("conntrack -C: %q: %v", out, err)
	}
	if out, err := exec.Command("ip", "netns", "exec", l.gw, "conntrack", "-F").CombinedOutput(); err != nil {
		t.Fatalf("conntrack -F: %v: %s", err, out)
	}
	destroys := func() float64 { return testutil.ToFloat64(r.m.events.WithLabelValues("destroy")) }
	for last, idle := -1.0, 0; idle < 10; idle++ {
		time.Sleep(100 * time.Millisecond)
		if d := destroys(); d != last {
			last, idle = d, 0
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("recorder: %v", err)
	}
	done <- nil // for the deferred receive
	var recorded, lost int64
	for _, rec := range mem.Records() {
		if rec.Verdict == "gap" {
			if rec.Reason != "conntrack."+LossENOBUFS {
				t.Errorf("gap record %+v", rec)
			}
			lost += rec.Lost
			continue
		}
		recorded++
	}
	t.Logf("kernel made %d flows: %d recorded, %d declared lost", made, recorded, lost)
	if lost == 0 {
		t.Fatalf("the %d-byte buffer did not overrun: the test proves nothing", 4096)
	}
	if recorded+lost != made {
		t.Fatalf("recorded %d + declared lost %d = %d, the kernel made %d flows", recorded, lost, recorded+lost, made)
	}
	if m := int64(testutil.ToFloat64(r.m.lost.WithLabelValues(LossENOBUFS))); m != lost {
		t.Fatalf("metric says %d lost, the chain %d", m, lost)
	}
}

// TestKernelDecodeMatchesLibrary takes the kernel's own new and destroy
// messages for TCP (masqueraded, with bytes) and UDP flows and checks
// that decodeEvent reads each one as github.com/ti-mo/conntrack does.
func TestKernelDecodeMatchesLibrary(t *testing.T) {
	l := newKernelLab(t)
	var socks []*eventSock
	inNetns(t, l.gw, func() {
		EnableAccounting()
		for _, g := range []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTDestroy} {
			s, err := openEvents(g, 1<<20, slog.Default())
			if err != nil {
				t.Error(err)
				return
			}
			socks = append(socks, s)
		}
	})
	for _, s := range socks {
		defer s.close()
	}
	if len(socks) != 2 {
		t.FailNow()
	}
	var ln net.Listener
	inNetns(t, l.wan, func() { ln, _ = net.Listen("tcp", "198.51.100.2:8443") })
	if ln == nil {
		t.Fatal("no listener")
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			io.Copy(io.Discard, c)
			c.Write([]byte("bonjour"))
			c.Close()
		}
	}()
	inNetns(t, l.client, func() {
		if c, err := net.DialTimeout("tcp", "198.51.100.2:8443", 5*time.Second); err == nil {
			c.Write([]byte("hello"))
			c.(*net.TCPConn).CloseWrite()
			io.ReadAll(c)
			c.Close()
		}
		for i := 0; i < 3; i++ {
			if c, err := net.Dial("udp", "198.51.100.2:9"); err == nil {
				c.Write([]byte("x"))
				c.Close()
			}
		}
	})
	if out, err := exec.Command("ip", "netns", "exec", l.gw, "conntrack", "-F").CombinedOutput(); err != nil {
		t.Fatalf("conntrack -F: %v: %s", err, out)
	}
	kinds := map[int]int{}
	buf := make([]byte, 1<<16)
	for _, s := range socks {
		for {
			n, _, err := unix.Recvfrom(s.fd, buf, 0)
			if err != nil {
				break // the socket's read timeout: nothing more queued
			}
			for b := buf[:n]; len(b) >= nlHdrLen; {
				l := int(binary.NativeEndian.Uint32(b))
				if l < nlHdrLen || l > len(b) {
					t.Fatalf("bad netlink length %d", l)
				}
				sameAsLibrary(t, b[:l])
				var ev ctEvent
				decodeEvent(b[:l], &ev)
				kinds[ev.kind]++
				if ev.kind == evDestroy && ev.f.Proto == "tcp" && (ev.f.BytesOrig == 0 || ev.f.ReplyDst.Addr() != netip.MustParseAddr("198.51.100.1") || ev.f.Start.IsZero()) {
					t.Errorf("tcp destroy %+v", ev.f)
				}
				b = b[(l+3)&^3:]
			}
		}
	}
	if kinds[evNew] < 4 || kinds[evDestroy] < 4 {
		t.Fatalf("messages by kind: %v", kinds)
	}
	t.Logf("messages by kind (1 new, 2 destroy): %v", kinds)
}
