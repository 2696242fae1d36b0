package logs_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/cli"
	"vigie/controlplane/logs"
	"vigie/journal"
	"vigie/journal/segment"
	"vigie/journal/ship"
	"vigie/journal/who"
)

// shipFlows runs a real edge journal for the demo school holding a
// pupil's flow as 198.51.100.1:40123 and their navigation around it.
func (e *env) shipFlows(t *testing.T, at time.Time) {
	t.Helper()
	e.shipFlowsAndBrowsing(t, at, 0)
}

// shipFlowsAndBrowsing is shipFlows with n more navigation records of the
// same pupil in the minutes around at, to make the who export large.
func (e *env) shipFlowsAndBrowsing(t *testing.T, at time.Time, n int) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	j, err := segment.OpenJournal(segment.Options{Dir: filepath.Join(t.TempDir(), "journal"), UAI: monnet, Key: key, CommitInterval: time.Millisecond, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ap := netip.MustParseAddrPort
	for _, r := range []journal.Record{
		{Stream: journal.Navigation, Time: at.Add(-31 * time.Second), UAI: monnet, Proto: "dns", Client: ap("10.10.0.10:40000"),
			MAC: "02:00:5e:00:00:10", User: "eleve.dupont", Host: "labo.exemple.fr", QType: "A", RCode: "NOERROR", Verdict: "allow"},
		{Stream: journal.Connexions, Time: at.Add(-30 * time.Second), UAI: monnet, Proto: "tcp", Client: ap("10.10.0.10:51000"),
			MAC: "02:00:5e:00:00:10", User: "eleve.dupont", NAT: ap("198.51.100.1:40123"), Dest: ap("203.0.113.80:8443"),
			Duration: 40 * time.Second, BytesIn: 900, BytesOut: 300, Verdict: "allow", Zone: "pedagogique"},
		{Stream: journal.Connexions, Time: at.Add(-20 * time.Second), UAI: monnet, Proto: "udp", Client: ap("10.10.0.10:51001"),
			Dest: ap("203.0.113.80:51820"), Verdict: "drop", Reason: "internet.pedagogique", Zone: "pedagogique"},
	} {
		j.Append(&r)
	}
	for i := 0; i < n; i++ {
		r := journal.Record{Stream: journal.Navigation, Time: at.Add(-4*time.Minute + time.Duration(i)*(8*time.Minute)/time.Duration(n)), UAI: monnet,
			Proto: "dns", Client: ap("10.10.0.10:40000"), MAC: "02:00:5e:00:00:10", User: "eleve.dupont",
			Host: fmt.Sprintf("p%06d-%x.exemple.fr", i, i*2654435761), QType: "A", RCode: "NOERROR", Verdict: "allow"}
		j.Append(&r)
	}
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	sh, err := ship.New(ship.Options{Logs: []*segment.Log{j.Log(journal.Connexions), j.Log(journal.Navigation)}, URL: e.http.URL, Token: e.edgeTok})
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWhoScopeAndAudit(t *testing.T) {
	e := newEnv(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.shipFlows(t, at)
	req := logs.WhoRequest{IP: "198.51.100.1", Port: 40123, At: at.Format(time.RFC3339)}
	for _, tc := range []struct {
		who     string
		uai     string
		status  int
		matches int
		action  string
	}{
		{"tech", "", 403, 0, "logs.who.denied tech"},
		{"audit", "", 403, 0, "logs.who.denied audit"},
		{"chef-autre", monnet, 403, 0, "logs.who.denied chef-autre"},
		{"chef-autre", "", 200, 0, "logs.who chef-autre"},
		{"chef", "", 200, 1, "logs.who chef"},
		{"rssi", "", 200, 1, "logs.who rssi"},
	} {
		t.Run(tc.who+" "+tc.uai, func(t *testing.T) {
			r := req
			r.UAI = tc.uai
			resp, body := post(t, e.http.URL+logs.WhoPath, e.tokens[tc.who], r)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				var ans who.Answer
				if err := json.Unmarshal(body, &ans); err != nil {
					t.Fatal(err)
				}
				if len(ans.Matches) != tc.matches {
					t.Fatalf("%d matches, want %d", len(ans.Matches), tc.matches)
				}
				if tc.matches == 1 {
					m := ans.Matches[0]
					if m.Flow.User != "eleve.dupont" || m.Flow.MAC != "02:00:5e:00:00:10" || m.Flow.Client != "10.10.0.10:51000" ||
						len(m.Navigation) != 1 || m.Navigation[0].Host != "labo.exemple.fr" {
						t.Fatalf("match %+v", m)
					}
				}
			}
			if !contains(e.auditActions(t), tc.action) {
				t.Fatalf("%q not in the audit log", tc.action)
			}
		})
	}
}

// TestWhoThroughCLI is the requisition answered from the CLI, then
// exported as a signed ZIP carrying its reference and verified.
func TestWhoThroughCLI(t *testing.T) {
	e := newEnv(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.shipFlows(t, at)
	var stdout, stderr bytes.Buffer
	args := []string{"logs", "who", "--server", e.http.URL, "--token", e.tokens["chef"], "--ip", "198.51.100.1", "--port", "40123",
		"--at", at.Format(time.RFC3339)}
	if code := cli.Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("vigie logs who: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, s := range []string{"1 correspondance", "Poste 10.10.0.10:51000, MAC 02:00:5e:00:00:10, utilisateur eleve.dupont", "labo.exemple.fr", "traduit en 198.51.100.1:40123"} {
		if !strings.Contains(stdout.String(), s) {
			t.Fatalf("output lacks %q:\n%s", s, stdout.String())
		}
	}
	out := filepath.Join(t.TempDir(), "qui.zip")
	stdout.Reset()
	args = append(args, "--reference", "PV 2026/00777", "-o", out, "--pubkey", e.pubPath)
	if code := cli.Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("vigie logs who -o: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, s := range []string{"Vérification réussie", "PV 2026/00777", "adresse publique 198.51.100.1, port 40123", "client 10.10.0.10", "connexions 2, navigation 1"} {
		if !strings.Contains(stdout.String(), s) {
			t.Fatalf("export output lacks %q:\n%s", s, stdout.String())
		}
	}
	if !contains(e.auditActions(t), "export chef") {
		t.Fatalf("the export is not audited: %v", e.auditActions(t))
	}
}

// TestWhoExportAuditedWhenClientHangsUp: the who export is audited as
// the criteria export is: started before its first byte, then
// interrupted after N bytes when the client resets the connection, never
// complete.
func TestWhoExportAuditedWhenClientHangsUp(t *testing.T) {
	e := newEnv(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.shipFlowsAndBrowsing(t, at, 30000)
	req := logs.WhoRequest{IP: "198.51.100.1", Port: 40123, At: at.Format(time.RFC3339), Reference: "PV qui 64K", Motive: "test"}
	c := rawPost(t, e.http.URL, logs.WhoExportPath, e.tokens["chef"], req)
	br := bufio.NewReader(c)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, "200") {
		t.Fatalf("status line %q", status)
	}
	if n, err := io.CopyN(io.Discard, br, 64<<10); err != nil {
		t.Fatalf("read %d bytes: %v (the export must exceed 64 KB for this test)", n, err)
	}
	c.SetLinger(0) // a reset, as a killed client leaves
	c.Close()

	start := e.waitAudit(t, "export.start chef")
	if start["who"] != true {
		t.Fatalf("start entry does not say it is a who export: %v", start)
	}
	d := e.waitAudit(t, "export.interrupted chef")
	if s, _ := d["status"].(string); !strings.HasPrefix(s, "interrompue après ") || d["who"] != true || d["start_seq"] == nil {
		t.Fatalf("interrupted entry: %v", d)
	}
	if contains(e.auditActions(t), "export chef") {
		t.Fatal("an interrupted who export is audited as complete")
	}
}
