package edge

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/journal"
	"vigie/tstest"
)

func TestIdentityConfigDecoding(t *testing.T) {
	load := configLoader(t)
	c, err := load(`identity:
  radius:
    listen: "10.20.0.1:1813"
    clients: [{address: 10.20.0.2, secret: s3cret}, {address: 10.20.8.0/24, secret: autre}]
  leases: [{path: /var/lib/misc/dnsmasq.leases, format: dnsmasq}]
  neighbours: true
flows: {enabled: true, rate: 5000, read_buffer_mb: 64}
`)
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
	wantConfigErrors(t, load, []configError{
		{"identity:\n  radius: {listen: ':1813', clients: [{address: 10.20.0.2, secrte: x}]}\n", "secrte"},
		{"flows: {enabled: true, rat: 1}\n", "rat"},
	})
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
	tstest.RequireCommand(t, "radclient", "freeradius-utils")
	dir := t.TempDir()
	leases := filepath.Join(dir, "dnsmasq.leases")
	os.WriteFile(leases, []byte("0 02:00:5e:00:00:77 127.0.0.2 tablette *\n"), 0o644)
	radiusPort := freeDNSPort(t)
	jr := &journal.Memory{}
	e, port := dnsEdge(t, Config{StateDir: dir,
		Identity: IdentityConfig{
			RADIUS:       RADIUSConfig{Listen: "127.0.0.1:" + radiusPort, Clients: []RADIUSClientConfig{{Address: "127.0.0.0/8", Secret: "s3cret-wifi"}}},
			Leases:       []LeaseFileConfig{{Path: leases, Format: "dnsmasq"}},
			PollInterval: 50 * time.Millisecond,
		},
	}, prometheus.NewRegistry(), jr)
	ctx := context.Background()
	if err := e.startIdentity(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(ctx)
	if err := e.startDNS(ctx); err != nil {
		t.Fatal(err)
	}
	query := func(from string) { t.Helper(); queryCanary(t, port, from) }
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
