package firewall

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
	plan "vigie/rules/firewall"

	"vigie/rules/policy"
	"vigie/testlab/netns"
)

// TestEgressDefaultDenyKernel routes a pupil, over IPv4 and over IPv6, through a
// real gateway namespace to an "internet" namespace: NTP (a service of the
// zone) gets through, while a VPN (udp/1194, udp/51820) and SSH (tcp/22)
// are dropped and counted under their reasons, for both families. The
// same listeners answer the unfiltered server zone, so the drops are the
// policy's and not a routing accident.
func TestEgressDefaultDenyKernel(t *testing.T) {
	gw, pupil, srv, inet := newNS(t), newNS(t), newNS(t), newNS(t)
	ctx := context.Background()
	for _, v := range []struct {
		a     *netns.NS
		aName string
		b     *netns.NS
		bName string
	}{{gw, "lan-ped", pupil, "eth0"}, {gw, "lan-srv", srv, "eth0"}, {gw, "wan0", inet, "eth0"}} {
		if err := netns.Veth(ctx, v.a, v.aName, v.b, v.bName); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		ns   *netns.NS
		args []string
	}{
		{gw, []string{"addr", "add", "10.10.0.1/24", "dev", "lan-ped"}},
		{gw, []string{"addr", "add", "fd00:10::1/64", "dev", "lan-ped", "nodad"}},
		{gw, []string{"addr", "add", "10.40.0.1/24", "dev", "lan-srv"}},
		{gw, []string{"addr", "add", "fd00:40::1/64", "dev", "lan-srv", "nodad"}},
		{gw, []string{"addr", "add", "198.51.100.1/24", "dev", "wan0"}},
		{gw, []string{"addr", "add", "2001:db8:100::1/64", "dev", "wan0", "nodad"}},
		{pupil, []string{"addr", "add", "10.10.0.10/24", "dev", "eth0"}},
		{pupil, []string{"addr", "add", "fd00:10::10/64", "dev", "eth0", "nodad"}},
		{srv, []string{"addr", "add", "10.40.0.10/24", "dev", "eth0"}},
		{srv, []string{"addr", "add", "fd00:40::10/64", "dev", "eth0", "nodad"}},
		{inet, []string{"addr", "add", "198.51.100.2/24", "dev", "eth0"}},
		{inet, []string{"addr", "add", "2001:db8:100::2/64", "dev", "eth0", "nodad"}},
	}
	for _, n := range []*netns.NS{gw, pupil, srv, inet} {
		steps = append(steps, struct {
			ns   *netns.NS
			args []string
		}{n, []string{"link", "set", "lo", "up"}})
	}
	for _, l := range []struct {
		ns  *netns.NS
		dev string
	}{{gw, "lan-ped"}, {gw, "lan-srv"}, {gw, "wan0"}, {pupil, "eth0"}, {srv, "eth0"}, {inet, "eth0"}} {
		steps = append(steps, struct {
			ns   *netns.NS
			args []string
		}{l.ns, []string{"link", "set", l.dev, "up"}})
	}
	for _, r := range []struct {
		ns   *netns.NS
		args []string
	}{
		{pupil, []string{"route", "add", "default", "via", "10.10.0.1"}},
		{pupil, []string{"-6", "route", "add", "default", "via", "fd00:10::1"}},
		{srv, []string{"route", "add", "default", "via", "10.40.0.1"}},
		{srv, []string{"-6", "route", "add", "default", "via", "fd00:40::1"}},
		{inet, []string{"route", "add", "10.0.0.0/8", "via", "198.51.100.1"}},
		{inet, []string{"-6", "route", "add", "fd00::/8", "via", "2001:db8:100::1"}},
	} {
		steps = append(steps, r)
	}
	for _, step := range steps {
		if err := step.ns.IP(ctx, step.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := gw.Do(func() error {
		for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	src := plan.Source{
		School: policy.School{UAI: "0670005E", Zones: []policy.Zone{
			{Name: "pedagogique", CIDRs: []string{"10.10.0.0/24", "fd00:10::/64"}, Interfaces: []string{"lan-ped"}, Profile: "eleves"},
			{Name: "serveurs", CIDRs: []string{"10.40.0.0/24", "fd00:40::/64"}, Interfaces: []string{"lan-srv"}, Profile: "serveurs"},
		}},
		Firewall: policy.Firewall{Internet: []policy.Flow{
			{From: "pedagogique", Services: []string{"web", "dns", "ntp"}},
			{From: "serveurs", Services: []string{"ntp"}},
			{From: "serveurs", Proto: "udp", Ports: []string{"1194", "51820"}},
			{From: "serveurs", Proto: "tcp", Ports: []string{"22"}},
		}},
		Unfiltered: map[string]bool{"serveurs": true},
	}
	cfg := testConfig
	cfg.WANInterface = "wan0"
	rs, err := plan.Build(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := New(Options{NetNS: gw.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Apply(rs); err != nil {
		t.Fatal(err)
	}

	// The internet's listeners: UDP echo on 123, 1194, 51820 and TCP on 22,
	// on both families.
	for _, addr := range []string{"198.51.100.2", "2001:db8:100::2"} {
		for _, port := range []string{"123", "1194", "51820"} {
			pc, err := inet.ListenPacket("udp", net.JoinHostPort(addr, port))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 1500)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					pc.WriteTo(buf[:n], from)
				}
			}()
		}
		ln, err := inet.Listen("tcp", net.JoinHostPort(addr, "22"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("SSH-2.0-lab\r\n"))
				c.Close()
			}
		}()
	}

	// The first IPv6 packet of a path can be lost while neighbour
	// discovery runs, so what must pass gets ten tries; what must be
	// dropped is sent once, and counted exactly.
	pass := func(probe func(*netns.NS, string) error, ns *netns.NS, addr string) (err error) {
		for try := 0; try < 10; try++ {
			if err = probe(ns, addr); err == nil {
				return nil
			}
		}
		return err
	}
	for _, host := range []string{"198.51.100.2", "2001:db8:100::2"} {
		// Allowed: the zone's NTP, and the unfiltered zone's explicit lines.
		if err := pass(udpEcho, pupil, net.JoinHostPort(host, "123")); err != nil {
			t.Errorf("pupil NTP to %s: %v", host, err)
		}
		for _, port := range []string{"1194", "51820"} {
			if err := pass(udpEcho, srv, net.JoinHostPort(host, port)); err != nil {
				t.Errorf("server zone udp/%s to %s: %v", port, host, err)
			}
		}
		if err := pass(tcpBanner, srv, net.JoinHostPort(host, "22")); err != nil {
			t.Errorf("server zone ssh to %s: %v", host, err)
		}
		// Dropped: the pupil's VPN and SSH.
		for _, port := range []string{"1194", "51820"} {
			if err := udpEcho(pupil, net.JoinHostPort(host, port)); err == nil {
				t.Errorf("pupil reached udp/%s on %s", port, host)
			}
		}
		if err := tcpBanner(pupil, net.JoinHostPort(host, "22")); err == nil {
			t.Errorf("pupil reached ssh on %s", host)
		}
	}
	// Each family sent one packet per VPN port and at least one SYN.
	got, err := fw.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if n := got["vpn.pedagogique"].Packets; n != 4 {
		t.Errorf("vpn.pedagogique = %d packets, want 4 (udp/1194 and udp/51820, IPv4 and IPv6); all: %v", n, got)
	}
	if n := got["ssh.pedagogique"].Packets; n < 2 {
		t.Errorf("ssh.pedagogique = %d packets, want at least 2 (a SYN per family); all: %v", n, got)
	}
	if n := got["internet.serveurs"].Packets + got["vpn.serveurs"].Packets + got["ssh.serveurs"].Packets; n != 0 {
		t.Errorf("the server zone's explicit lines were dropped: %v", got)
	}
}

// udpEcho sends one datagram and waits briefly for its echo.
func udpEcho(ns *netns.NS, addr string) error {
	c, err := ns.Dial(context.Background(), "udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 16))
	return err
}

// tcpBanner connects and reads the server's first bytes.
func tcpBanner(ns *netns.NS, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c, err := ns.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = c.Read(make([]byte, 16))
	return err
}
