package testlab

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"vigie/tstest"
)

// The scenarios of the virtual school. Each builds its own lab (unique
// namespace names, torn down even on failure) around the real vigie
// binary, built once by TestMain.

var vigieBin string

// listsDir is the real blocklists folder; its absence is a failure.
const listsDir = "../testdata/blocklists"

func TestMain(m *testing.M) {
	flag.Parse()
	// Scenarios mostly wait (on timeouts that prove a drop, on downloads):
	// run all of them at once rather than GOMAXPROCS at a time, unless
	// the caller chose a parallelism.
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		f.Value.Set("8")
	}
	if os.Geteuid() == 0 {
		// Labs of test binaries that died (a panic skips cleanups).
		Cleanup(false)
		dir, err := os.MkdirTemp("", "vigie-lab-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		vigieBin = filepath.Join(dir, "vigie")
		cmd := exec.Command("go", "build", "-o", vigieBin, "vigie")
		cmd.Dir = ".."
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "testlab: cannot build the vigie binary:", err)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func labOptions(t *testing.T) Options {
	t.Helper()
	if _, err := os.Stat(filepath.Join(listsDir, "ut1", "gambling", "domains")); err != nil {
		t.Fatalf("the real blocklists are missing: %v", err)
	}
	return Options{Binary: vigieBin, Lists: listsDir}
}

func addr(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// counterDelta waits until counter name has grown by at least want
// packets since before, and fails otherwise.
func counterDelta(t *testing.T, l *Lab, before map[string]uint64, name string, want uint64) {
	t.Helper()
	var got uint64
	if !tstest.WaitFor(3*time.Second, func() bool {
		now, err := l.Counters()
		if err != nil {
			t.Fatal(err)
		}
		got = now[name].Packets - before[name]
		return got >= want
	}) {
		t.Fatalf("counter %s moved by %d packets, want at least %d", name, got, want)
	}
}

func snapshot(t *testing.T, l *Lab) map[string]uint64 {
	t.Helper()
	c, err := l.Counters()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for k, v := range c {
		out[k] = v.Packets
	}
	return out
}

// Scenario 5: DoT (853) and QUIC (UDP 443) from the pupil are dropped;
// the drop counters move; nothing reaches the internet's listeners.
func TestScenario5BypassDropped(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	pupil := l.Pupil()
	before := snapshot(t, l)

	if err := pupil.Connect(ctx, addr(PublicResolverAddr, 853), 1500*time.Millisecond); err == nil {
		t.Fatal("the pupil opened a DNS-over-TLS connection")
	}
	if n, err := pupil.SendUDP(ctx, addr(OriginAddr, 443), 5, time.Second); err != nil || n != 0 {
		t.Fatalf("QUIC: %d echoes, err %v; want none", n, err)
	}
	if n, err := pupil.SendUDP(ctx, addr(PublicResolverAddr, 853), 3, 300*time.Millisecond); err != nil || n != 0 {
		t.Fatalf("DoT over UDP: %d echoes, err %v", n, err)
	}
	// Control: the pupils' NTP, a service of their zone, goes through.
	ntp, err := EchoUDP(l.Internet, addr(OriginAddr, 123))
	if err != nil {
		t.Fatal(err)
	}
	defer ntp.Close()
	if n, err := pupil.SendUDP(ctx, addr(OriginAddr, 123), 3, 3*time.Second); err != nil || n != 3 {
		t.Fatalf("control NTP: %d echoes of 3, err %v", n, err)
	}
	counterDelta(t, l, before, "quic.pedagogique", 5)
	counterDelta(t, l, before, "dot.pedagogique", 4) // at least one SYN and 3 datagrams
	if n := l.Net.UDPCount(443); n != 0 {
		t.Fatalf("%d QUIC datagrams reached the internet", n)
	}
	if n := l.Net.DoTConns.Load(); n != 0 {
		t.Fatalf("%d DoT connections reached the public resolver", n)
	}
}

// Scenario 6: pedagogique cannot reach administratif; administratif
// reaches what the matrix allows (port 8000 of the pupils' machines, SSH
// on the gateway) and nothing else.
func TestScenario6ZonesApart(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := Start(t, labOptions(t))
	ctx := context.Background()
	listen := func(ns interface {
		Listen(string, string) (net.Listener, error)
	}, a string) {
		ln, err := ns.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
	}
	listen(l.Secretariat, addr(SecretariatAddr, 8000))
	listen(l.Eleve, addr(EleveAddr, 8000))
	listen(l.Eleve, addr(EleveAddr, 8001))
	listen(l.Edge, ":22")
	pupil, secretary := l.Pupil(), l.Secretary()
	before := snapshot(t, l)

	checks := []struct {
		name  string
		from  *Client
		to    string
		open  bool
		count string
	}{
		{"pupil to the secretariat", pupil, addr(SecretariatAddr, 8000), false, "zone.pedagogique"},
		{"secretariat to the pupils' console port", secretary, addr(EleveAddr, 8000), true, ""},
		{"secretariat to another pupil port", secretary, addr(EleveAddr, 8001), false, "zone.administratif"},
		{"secretariat SSH to the gateway", secretary, addr(EdgeAdmAddr, 22), true, ""},
		{"pupil SSH to the gateway", pupil, addr(EdgePedAddr, 22), false, "input.pedagogique"},
		{"pupil SSH to the gateway's other leg", pupil, addr(EdgeAdmAddr, 22), false, "input.pedagogique"},
		// Egress is default-deny: a web proxy on 8080 outside is a bypass
		// for a pupil, and an explicit line of the matrix for the staff.
		{"pupil to a web proxy on the internet", pupil, addr(OriginAddr, DirectHTTPPort), false, "proxy.pedagogique"},
		{"secretariat to its application on the internet", secretary, addr(OriginAddr, DirectHTTPPort), true, ""},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := c.from.Connect(ctx, c.to, 1500*time.Millisecond)
			if c.open && err != nil {
				t.Fatalf("should connect: %v", err)
			}
			if !c.open && err == nil {
				t.Fatal("connected, the matrix forbids it")
			}
			if c.count != "" {
				counterDelta(t, l, before, c.count, 1)
			}
		})
	}
}
