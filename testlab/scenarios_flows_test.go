package testlab

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/export"
	"vigie/journal/who"
	"vigie/rules/policy"
)

// The flow and identity scenarios: the edge journals every flow from
// conntrack, with its NAT mapping, and stamps each record with the MAC
// and user known when it is made (RADIUS accounting sent with Debian's
// radclient, a dnsmasq lease file).

// startFlowLab builds a lab whose edge journals flows with the given rate
// bound, short conntrack timeouts (so that ended flows are reported
// within the test), and a dnsmasq lease file naming the secretary's
// device.
func startFlowLab(t *testing.T, rate float64) *Lab {
	t.Helper()
	if _, err := exec.LookPath("radclient"); err != nil {
		t.Fatalf("radclient (freeradius-utils) is needed: %v", err)
	}
	o := labOptions(t)
	o.NoEdge = true
	l := Start(t, o)
	ctx := context.Background()
	for _, kv := range []string{"net.netfilter.nf_conntrack_udp_timeout=2", "net.netfilter.nf_conntrack_udp_timeout_stream=2",
		"net.netfilter.nf_conntrack_tcp_timeout_time_wait=1", "net.netfilter.nf_conntrack_tcp_timeout_close_wait=1"} {
		if out, err := l.Edge.Run(ctx, "sysctl", "-qw", kv); err != nil {
			t.Fatalf("sysctl %s: %v %s", kv, err, out)
		}
	}
	if err := os.WriteFile(l.LeaseFile(), []byte("0 02:00:5e:00:20:10 "+SecretariatAddr+" poste-secretariat *\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Egress is default-deny: open the lab server's port 8443 to the
	// pupils, as a school would for one application.
	p, err := Policy(o.Lists)
	if err != nil {
		t.Fatal(err)
	}
	p.Firewall.Internet = append(p.Firewall.Internet,
		policy.Flow{From: "pedagogique", Proto: "tcp", Ports: []string{"8443"}, Comment: "Serveur d'application du labo"},
		policy.Flow{From: "pedagogique", Proto: "udp", Ports: []string{"8443"}, Comment: "Serveur d'application du labo"})
	if _, err := l.Publish(p); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteEdgeConfig(l.FlowSections(rate)); err != nil {
		t.Fatal(err)
	}
	if err := l.StartEdge(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

// radclient sends one accounting request from the edge namespace, as the
// school's Wi-Fi controller would.
func radclient(t *testing.T, l *Lab, attrs string) {
	t.Helper()
	cmd := l.Edge.Command(context.Background(), "radclient", "-r", "2", "-t", "2", RADIUSAddr, "acct", RADIUSSecret)
	cmd.Stdin = strings.NewReader(attrs + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Accounting-Response") {
		t.Fatalf("radclient: %v\n%s", err, out)
	}
}

// exchange opens a TCP connection, sends and reads a little, and returns
// the client's address and port.
func exchange(t *testing.T, c *Client, addr string) netip.AddrPort {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := c.NS.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	local := netip.MustParseAddrPort(nc.LocalAddr().String())
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte("bonjour du collège\n"))
	nc.(*net.TCPConn).CloseWrite()
	io.ReadAll(nc)
	nc.Close()
	return local
}

// serve answers every connection on addr (in the internet namespace)
// with a few bytes.
func serve(t *testing.T, l *Lab, addr string) {
	t.Helper()
	ln, err := l.Internet.Listen("tcp", addr)
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
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c)
				c.Write([]byte("réponse du serveur du labo\n"))
			}()
		}
	}()
}

// findFlow returns the connexions record of the flow from client.
func findFlow(recs []journal.Record, client netip.AddrPort) *journal.Record {
	for i := range recs {
		if recs[i].Client == client && recs[i].Lost == 0 {
			return &recs[i]
		}
	}
	return nil
}

func TestScenarioFlowsAndIdentity(t *testing.T) {
	t.Parallel() // each lab has its own namespaces
	l := startFlowLab(t, 0)
	ctx := context.Background()
	serve(t, l, addr(OriginAddr, 8443))
	serve(t, l, addr(OriginAddr, 22))

	// The pupil's Wi-Fi session, as the controller accounts it.
	radclient(t, l, "User-Name=eleve.dupont,Acct-Status-Type=Start,Acct-Session-Id=labo-1,Framed-IP-Address="+EleveAddr+
		",Calling-Station-Id=02-00-5E-00-10-10:college-wifi")
	pupil, secretary := l.Pupil(), l.Secretary()
	pupilFlow := exchange(t, pupil, addr(OriginAddr, 8443))
	// One DNS query, redirected to the edge's filter (a navigation record).
	if _, err := pupil.Query(ctx, PublicResolverAddr, "www.education.gouv.fr", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	// A staff member's SSH flow, allowed by the matrix.
	sshFlow := exchange(t, secretary, addr(OriginAddr, 22))
	if _, err := secretary.Query(ctx, EdgeAdmAddr, "www.education.gouv.fr", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	// QUIC from the pupil: dropped by the firewall, journalled as dropped.
	before := snapshot(t, l)
	if n, _ := pupil.SendUDP(ctx, addr(OriginAddr, 443), 2, 300*time.Millisecond); n != 0 {
		t.Fatal("QUIC went through")
	}
	counterDelta(t, l, before, "quic.pedagogique", 2)
	// WireGuard from the pupil: egress is default-deny, so it is dropped,
	// and journalled with the counter of the rule that dropped it.
	wgBefore := snapshot(t, l)
	if n, _ := pupil.SendUDP(ctx, addr(OriginAddr, 51820), 1, 300*time.Millisecond); n != 0 {
		t.Fatal("udp/51820 went through")
	}
	time.Sleep(4 * time.Second) // UDP and TCP timeouts of 1-2 s, then the reaper's pass
	wgReason := ""
	for name, n := range snapshot(t, l) {
		if strings.HasSuffix(name, ".pedagogique") && n > wgBefore[name] {
			wgReason = name
		}
	}
	if wgReason == "" {
		t.Fatal("no drop counter of pedagogique moved for udp/51820")
	}
	if err := l.StopEdge(); err != nil {
		t.Fatal(err)
	}
	recs, batches, pub, err := l.EdgeJournal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, nav := recs[journal.Connexions], recs[journal.Navigation]

	f := findFlow(conn, pupilFlow)
	if f == nil {
		t.Fatalf("no record of the pupil's flow from %s among %d connexions records", pupilFlow, len(conn))
	}
	if f.Proto != "tcp" || f.Dest.String() != addr(OriginAddr, 8443) || f.NAT.Addr().String() != EdgeWANAddr || f.NAT.Port() == 0 ||
		f.User != "eleve.dupont" || f.MAC != "02:00:5e:00:10:10" || f.Zone != "pedagogique" || f.Verdict != "allow" || f.BytesIn == 0 || f.BytesOut == 0 {
		t.Fatalf("pupil's flow record %+v", *f)
	}
	var dnsRec *journal.Record
	for i := range nav {
		if nav[i].Client.Addr().String() == EleveAddr && nav[i].Proto == "dns" {
			dnsRec = &nav[i]
		}
	}
	if dnsRec == nil || dnsRec.User != "eleve.dupont" || dnsRec.MAC != "02:00:5e:00:10:10" {
		t.Fatalf("the pupil's DNS query is not stamped with their identity: %+v", dnsRec)
	}
	// DHCP identity: the secretary's device is known only from the lease file.
	ssh := findFlow(conn, sshFlow)
	if ssh == nil || ssh.MAC != "02:00:5e:00:20:10" || ssh.Verdict != "allow" || ssh.BytesIn == 0 || ssh.Duration <= 0 || ssh.Zone != "administratif" {
		t.Fatalf("staff SSH flow record %+v", ssh)
	}
	quic, wg := false, false
	for _, r := range conn {
		if r.Client.Addr().String() == EleveAddr && r.Dest.Port() == 443 && r.Proto == "udp" {
			quic = quic || (r.Verdict == "drop" && r.Reason == "quic.pedagogique")
		}
		if r.Client.Addr().String() == EleveAddr && r.Dest.Port() == 51820 {
			wg = wg || (r.Verdict == "drop" && r.Reason == wgReason)
		}
	}
	if !quic {
		t.Error("the pupil's QUIC attempt is not journalled as dropped by quic.pedagogique")
	}
	if !wg {
		t.Errorf("the pupil's udp/51820 attempt is not journalled as dropped by %s", wgReason)
	}

	// The archive answers the requisition: the public address and port
	// lead to the pupil, and the export shows the flow with its NAT
	// mapping and the user on both streams.
	st := ingest(t, batches, pub)
	ans, err := who.Find(ctx, st, who.Query{Addr: f.NAT.Addr(), Port: f.NAT.Port(), At: f.Time.Add(f.Duration / 2), Schools: []string{UAI}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Matches) != 1 || ans.Matches[0].Flow.User != "eleve.dupont" || ans.Matches[0].Client().String() != EleveAddr {
		t.Fatalf("who: %+v", ans.Matches)
	}
	zipData := exportOf(t, st, export.Request{UAI: UAI, From: f.Time.Add(-time.Minute), To: time.Now().Add(time.Minute),
		Client: netip.MustParseAddr(EleveAddr), Reference: "PV labo", Motive: "scénario", Exporter: "testlab", Role: "rssi"})
	connCSV, navCSV := zipFile(t, zipData, "connexions.csv"), zipFile(t, zipData, "navigation.csv")
	natField := ";" + f.NAT.Addr().String() + ";" + itoa(f.NAT.Port()) + ";tcp;"
	if !strings.Contains(connCSV, natField) || !strings.Contains(connCSV, "eleve.dupont") {
		t.Fatalf("connexions.csv lacks the NAT mapping %q or the user:\n%s", natField, connCSV)
	}
	if !strings.Contains(navCSV, "eleve.dupont") || !strings.Contains(navCSV, "02:00:5e:00:10:10") {
		t.Fatalf("navigation.csv lacks the user or MAC:\n%s", navCSV)
	}
}

// Flood: a burst of new flows far beyond the bounded rate. Filtering
// keeps working during it, and what the journal could not take is
// declared in the chain (a gap record counting it) and in the export.
func TestScenarioFlowFlood(t *testing.T) {
	t.Parallel()
	l := startFlowLab(t, 200)
	ctx := context.Background()
	pupil := l.Pupil()
	stop := make(chan struct{})
	sent := make(chan int, 1)
	// Source ports the kernel picked: a port reused while its flow is
	// still in conntrack's table is the same flow, so the distinct ports
	// are a lower bound of the flows the edge saw.
	ports := map[string]bool{}
	go func() {
		n := 0
		defer func() { sent <- n }()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			nc, err := pupil.NS.Dial(ctx, "udp", addr(OriginAddr, 8443))
			if err != nil {
				continue
			}
			nc.Write([]byte("x"))
			ports[nc.LocalAddr().String()] = true
			nc.Close()
			n++
		}
	}()
	// During the burst, the filter still answers, and blocks.
	time.Sleep(2 * time.Second)
	m, err := pupil.Query(ctx, PublicResolverAddr, "pornhub.com", dns.TypeA)
	if err != nil {
		close(stop)
		t.Fatalf("the DNS filter does not answer during the flood: %v", err)
	}
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok && a.A.String() == WrongAddr {
			t.Error("a blocked name resolved during the flood")
		}
	}
	n := <-sent
	t.Logf("%d flows opened in 10 s", n)
	if n < 3000 {
		t.Fatalf("only %d flows in the burst: not beyond the bound of 200/s", n)
	}
	time.Sleep(5 * time.Second)
	if err := l.StopEdge(); err != nil {
		t.Fatal(err)
	}
	recs, batches, pub, err := l.EdgeJournal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lost int64
	flows := 0
	for _, r := range recs[journal.Connexions] {
		if r.Lost > 0 {
			lost += r.Lost
			if !strings.HasPrefix(r.Reason, "conntrack.") {
				t.Errorf("gap record without its cause: %+v", r)
			}
		} else if r.Dest.Port() == 8443 {
			flows++
		}
	}
	t.Logf("journalled %d flows, declared %d lost", flows, lost)
	if lost == 0 {
		t.Fatal("the flood's overflow is not declared in the chain")
	}
	if int64(flows)+lost < int64(len(ports)) {
		t.Errorf("at least %d distinct flows, %d journalled and %d declared lost: some vanished silently", len(ports), flows, lost)
	}
	st := ingest(t, batches, pub)
	zipData := exportOf(t, st, export.Request{UAI: UAI, From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute),
		Reference: "PV labo", Motive: "scénario", Exporter: "testlab", Role: "rssi"})
	if csv := zipFile(t, zipData, "connexions.csv"); !strings.Contains(csv, ";gap;") {
		t.Fatal("the export does not show the declared loss")
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// ingest puts the edge's sealed batches into a throwaway archive, as the
// control plane does on receipt.
func ingest(t *testing.T, batches [][]byte, pub ed25519.PublicKey) *archive.SQLite {
	t.Helper()
	st, err := archive.OpenSQLite(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arch, err := archive.New(archive.Options{Store: st, EdgeKey: func(context.Context, string) (ed25519.PublicKey, error) { return pub, nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if _, err := arch.Ingest(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func exportOf(t *testing.T, st archive.Store, req export.Request) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := export.Write(context.Background(), &buf, st, req, export.Options{Key: ed25519.NewKeyFromSeed(make([]byte, 32)), TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipFile(t *testing.T, data []byte, name string) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}
