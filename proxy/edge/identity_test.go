package edge

import (
	"context"
	"crypto/ed25519"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
	"vigie/proxy/generation"
	"vigie/tstest"
)

func TestIdentityConfigDecoding(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "edge.yaml")
		os.WriteFile(p, []byte("uai: 0671234X\nstate_dir: "+dir+"\npublic_key: k.pub\n"+body), 0o644)
		return p
	}
	c, err := LoadConfig(write(`identity:
  radius:
    listen: "10.20.0.1:1813"
    clients: [{address: 10.20.0.2, secret: s3cret}, {address: 10.20.8.0/24, secret: autre}]
  leases: [{path: /var/lib/misc/dnsmasq.leases, format: dnsmasq}]
  neighbours: true
flows: {enabled: true, rate: 5000, read_buffer_mb: 64}
`))
	if err != nil {
		t.Fatal(err)
	}
	nas, err := c.Identity.RADIUS.nas()
	if err != nil || len(nas) != 2 || nas[0].Prefix.String() != "10.20.0.2/32" || string(nas[1].Secret) != "autre" {
		t.Fatalf("nas %+v, %v", nas, err)
	}
	if !c.Flows.Enabled || c.Flows.Rate != 5000 || c.Flows.ReadBufferMB != 64 {
		t.Fatalf("flows %+v", c.Flows)
	}
	for _, tc := range []struct{ body, err string }{
		{"identity:\n  radius: {listen: ':1813', clients: [{address: 10.20.0.2, secrte: x}]}\n", "secrte"},
		{"flows: {enabled: true, rat: 1}\n", "rat"},
	} {
		if _, err := LoadConfig(write(tc.body)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one naming %q", tc.body, err, tc.err)
		}
	}
	for _, tc := range []struct {
		c   RADIUSConfig
		err string
	}{
		{RADIUSConfig{Listen: ":1813"}, "without clients"},
		{RADIUSConfig{Listen: ":1813", Clients: []RADIUSClientConfig{{Address: "wifi"}}}, "clients[0].address"},
		{RADIUSConfig{Listen: ":1813", Clients: []RADIUSClientConfig{{Address: "10.0.0.1"}}}, "clients[0]: a shared secret"},
		{RADIUSConfig{Listen: ":1813", Clients: []RADIUSClientConfig{{Address: "10.0.0.1", SecretFile: "/nonexistent"}}}, "clients[0].secret_file"},
	} {
		if _, err := tc.c.nas(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: error %v, want %q", tc.c, err, tc.err)
		}
	}
}

// TestIdentityStampsRecords runs the identity component as the edge wires
// it: a RADIUS session sent with radclient and a dnsmasq lease file,
// then DNS queries: each record carries the MAC and user known when it
// was made, and a record made before the session carries none.
func TestIdentityStampsRecords(t *testing.T) {
	if _, err := exec.LookPath("radclient"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must have radclient (freeradius-utils)")
		}
		t.Skip("radclient (freeradius-utils) is not installed")
	}
	up, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	dir := t.TempDir()
	leases := filepath.Join(dir, "dnsmasq.leases")
	os.WriteFile(leases, []byte("0 02:00:5e:00:00:77 127.0.0.2 tablette *\n"), 0o644)
	radiusPort := freeDNSPort(t)
	pub, _, _ := ed25519.GenerateKey(nil)
	jr := &journal.Memory{}
	e, err := New(Config{
		UAI: "0671234X", StateDir: dir,
		DNS: DNSConfig{Upstreams: []string{up.LocalAddr().String()}},
		Identity: IdentityConfig{
			RADIUS:       RADIUSConfig{Listen: "127.0.0.1:" + radiusPort, Clients: []RADIUSClientConfig{{Address: "127.0.0.0/8", Secret: "s3cret-wifi"}}},
			Leases:       []LeaseFileConfig{{Path: leases, Format: "dnsmasq"}},
			PollInterval: 50 * time.Millisecond,
		},
	}, Deps{PublicKey: pub, Registry: prometheus.NewRegistry(), Journal: jr})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := StrictRuleset("0671234X")
	if err != nil {
		t.Fatal(err)
	}
	e.gen.Store(&generation.Generation{Rules: rs, Fallback: true})
	port := freeDNSPort(t)
	e.cfg.DNS.Listen = "127.0.0.1:" + port
	ctx := context.Background()
	if err := e.startIdentity(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(ctx)
	if err := e.startDNS(ctx); err != nil {
		t.Fatal(err)
	}
	query := func(from string) {
		t.Helper()
		m := new(mdns.Msg)
		m.SetQuestion("use-application-dns.net.", mdns.TypeA)
		c := &mdns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		if _, _, err := c.Exchange(m, "127.0.0.1:"+port); err != nil {
			t.Fatal(err)
		}
	}
	query("127.0.0.1") // before the session: nobody known
	cmd := exec.Command("radclient", "-r", "2", "-t", "2", "127.0.0.1:"+radiusPort, "acct", "s3cret-wifi")
	cmd.Stdin = strings.NewReader("User-Name=eleve.dupont,Acct-Status-Type=Start,Acct-Session-Id=s1,Framed-IP-Address=127.0.0.1,Calling-Station-Id=02-00-5E-00-00-10\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Accounting-Response") {
		t.Fatalf("radclient: %v\n%s", err, out)
	}
	query("127.0.0.1")
	if !tstest.WaitFor(5*time.Second, func() bool {
		query("127.0.0.2")
		recs := jr.Records()
		return recs[len(recs)-1].MAC == "02:00:5e:00:00:77"
	}) {
		recs := jr.Records()
		t.Fatalf("the lease file's MAC never reached the journal: %+v", recs[len(recs)-1])
	}
	recs := jr.Records()
	if recs[0].MAC != "" || recs[0].User != "" {
		t.Errorf("a record made before the session was stamped: %+v", recs[0])
	}
	if recs[1].MAC != "02:00:5e:00:00:10" || recs[1].User != "eleve.dupont" {
		t.Errorf("a record made during the session: MAC %q user %q", recs[1].MAC, recs[1].User)
	}
	// Nothing is backfilled: the first record is still as it was made.
	if again := jr.Records()[0]; again.User != "" {
		t.Errorf("the first record was changed afterwards: %+v", again)
	}
}
