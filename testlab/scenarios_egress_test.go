package testlab

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"vigie/rules/policy"
	"vigie/tstest"
)

// Egress is default-deny per zone: a pupil's VPN (OpenVPN udp/1194,
// WireGuard udp/51820) and SSH (tcp/22) to the internet are dropped and
// counted under their reasons, and nothing reaches the listeners; the
// staff zone, whose matrix has an explicit SSH line, gets through; its
// own VPN, which no line opens, does not.
func TestEgressBypassesDropped(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil, secretary := l.Pupil(), l.Secretary()
	listeners := map[string]*Hits{}
	for _, port := range []int{1194, 51820, 123} {
		h, err := EchoUDP(l.Internet, addr(OriginAddr, port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		listeners[fmt.Sprintf("udp/%d", port)] = h
	}
	ssh, err := BannerTCP(l.Internet, addr(OriginAddr, 22), "SSH-2.0-labo\r\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ssh.Close() })
	before := snapshot(t, l)

	for _, port := range []int{1194, 51820} {
		if n, err := pupil.SendUDP(ctx, addr(OriginAddr, port), 3, time.Second); err != nil || n != 0 {
			t.Errorf("pupil udp/%d: %d echoes, err %v; want none", port, n, err)
		}
	}
	if err := pupil.Connect(ctx, addr(OriginAddr, 22), 1500*time.Millisecond); err == nil {
		t.Error("the pupil opened an SSH connection to the internet")
	}
	// Control: the pupils' NTP is a service of their zone.
	if n, err := pupil.SendUDP(ctx, addr(OriginAddr, 123), 3, 3*time.Second); err != nil || n != 3 {
		t.Fatalf("control: pupil NTP got %d echoes of 3, err %v", n, err)
	}
	counterDelta(t, l, before, "vpn.pedagogique", 6)
	counterDelta(t, l, before, "ssh.pedagogique", 1)
	for _, name := range []string{"udp/1194", "udp/51820"} {
		if n := listeners[name].Count(); n != 0 {
			t.Errorf("%d pupil datagrams reached %s on the internet", n, name)
		}
	}
	if n := ssh.Count(); n != 0 {
		t.Errorf("%d pupil connections reached SSH on the internet", n)
	}

	// The staff zone: an explicit ssh line opens tcp/22, and only it.
	if err := secretary.Connect(ctx, addr(OriginAddr, 22), 3*time.Second); err != nil {
		t.Errorf("the secretariat's explicit SSH line: %v", err)
	}
	// The connection is up once the handshake is done; the server's
	// goroutine counts it a moment later.
	tstest.Eventually(t, 2*time.Second, func() bool { return ssh.Count() > 0 }, "the secretariat's SSH connection never reached the server")
	if n, err := secretary.SendUDP(ctx, addr(OriginAddr, 1194), 2, time.Second); err != nil || n != 0 {
		t.Errorf("secretariat udp/1194: %d echoes, err %v; want none", n, err)
	}
	counterDelta(t, l, before, "vpn.administratif", 2)
}

// Monitoring by design: the edge's metrics listener, on the
// administrative leg, is open only to the sources a management line
// names (here the secretariat's supervision host, by prefix), and what it
// serves counts the pupil's VPN attempts by reason and zone.
func TestEgressMetricsOnlyToManagementSources(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil, secretary := l.Pupil(), l.Secretary()
	metricsAddr := addr(EdgeAdmAddr, 9153)

	if err := l.StopEdge(); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteEdgeConfig(map[string]any{"metrics": map[string]any{"listen": metricsAddr}}); err != nil {
		t.Fatal(err)
	}
	if err := l.StartEdge(ctx); err != nil {
		t.Fatal(err)
	}
	// The lab policy has no metrics line: nobody reaches the port.
	before := snapshot(t, l)
	if err := secretary.Connect(ctx, metricsAddr, 1500*time.Millisecond); err == nil {
		t.Fatal("the metrics port is open without a management line")
	}
	counterDelta(t, l, before, "input.administratif", 1)

	p, err := Policy(listsDir)
	if err != nil {
		t.Fatal(err)
	}
	p.Firewall.Management = append(p.Firewall.Management, policy.Flow{From: SecretariatAddr + "/32", Services: []string{"metrics"}, Comment: "Supervision"})
	if _, err := l.Publish(p); err != nil {
		t.Fatal(err)
	}
	serial := l.Serial()
	if _, err := l.CP.WaitReport(20*time.Second, 0, func(r Report) bool { return r.Serial == serial && r.Error == "" }); err != nil {
		t.Fatalf("serial %d not applied: %v (reports %+v)", serial, err, l.CP.Reports())
	}
	if n, err := pupil.SendUDP(ctx, addr(OriginAddr, 51820), 2, 500*time.Millisecond); err != nil || n != 0 {
		t.Fatalf("pupil udp/51820: %d echoes, err %v", n, err)
	}
	before = snapshot(t, l)
	if err := pupil.Connect(ctx, metricsAddr, 1500*time.Millisecond); err == nil {
		t.Fatal("a pupil reached the edge's metrics")
	}
	counterDelta(t, l, before, "input.pedagogique", 1)

	resp, body, err := secretary.Get(ctx, "http://"+metricsAddr+"/metrics")
	if err != nil {
		t.Fatalf("the management source cannot scrape: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	line := metricLine(body, `vigie_firewall_dropped_packets_total{reason="vpn",zone="pedagogique"}`)
	if line == "" || strings.HasSuffix(line, " 0") {
		t.Fatalf("the metrics do not count the pupil's VPN attempt: %q", line)
	}
}

func metricLine(body, prefix string) string {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix+" ") {
			return l
		}
	}
	return ""
}

// The egress default-deny holds for an IPv6 pupil: with the zones
// dual-stack, the pupil's VPN and SSH to the internet's IPv6 origin are
// dropped and counted like over IPv4, and its NTP gets through.
func TestEgressIPv6PupilDropped(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil := l.Pupil()
	p, err := Policy(listsDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Schools[0].Zones {
		z := &p.Schools[0].Zones[i]
		switch z.Name {
		case "pedagogique":
			z.CIDRs = append(z.CIDRs, "fd00:10::/64")
		case "administratif":
			z.CIDRs = append(z.CIDRs, "fd00:20::/64")
		}
	}
	if _, err := l.Publish(p); err != nil {
		t.Fatal(err)
	}
	serial := l.Serial()
	if _, err := l.CP.WaitReport(20*time.Second, 0, func(r Report) bool { return r.Serial == serial && r.Error == "" }); err != nil {
		t.Fatalf("serial %d not applied: %v (reports %+v)", serial, err, l.CP.Reports())
	}
	vpn, err := EchoUDP(l.Internet, addr(OriginAddr6, 1194))
	if err != nil {
		t.Fatal(err)
	}
	defer vpn.Close()
	ntp, err := EchoUDP(l.Internet, addr(OriginAddr6, 123))
	if err != nil {
		t.Fatal(err)
	}
	defer ntp.Close()
	ssh, err := BannerTCP(l.Internet, addr(OriginAddr6, 22), "SSH-2.0-labo\r\n")
	if err != nil {
		t.Fatal(err)
	}
	defer ssh.Close()

	// Control first: it also settles neighbour discovery on the path.
	if n, err := pupil.SendUDP(ctx, addr(OriginAddr6, 123), 3, 3*time.Second); err != nil || n == 0 {
		t.Fatalf("control: IPv6 pupil NTP got %d echoes, err %v", n, err)
	}
	before := snapshot(t, l)
	if n, err := pupil.SendUDP(ctx, addr(OriginAddr6, 1194), 3, time.Second); err != nil || n != 0 {
		t.Errorf("IPv6 pupil udp/1194: %d echoes, err %v; want none", n, err)
	}
	if err := pupil.Connect(ctx, addr(OriginAddr6, 22), 1500*time.Millisecond); err == nil {
		t.Error("the IPv6 pupil opened an SSH connection to the internet")
	}
	counterDelta(t, l, before, "vpn.pedagogique", 3)
	counterDelta(t, l, before, "ssh.pedagogique", 1)
	if n := vpn.Count() + ssh.Count(); n != 0 {
		t.Errorf("%d IPv6 pupil datagrams or connections reached the VPN or SSH server", n)
	}
}
