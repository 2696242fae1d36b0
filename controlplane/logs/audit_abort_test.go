package logs_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"vigie/journal/export"
	"vigie/tstest"
)

// rawExport sends an export request on a bare TCP connection so that the
// test controls exactly how the client goes away.
func rawExport(t *testing.T, base, token string, body any) *net.TCPConn {
	t.Helper()
	return rawPost(t, base, export.Path, token, body)
}

// rawPost sends a POST to path on a raw connection, for the tests to
// misbehave as a client.
func rawPost(t *testing.T, base, path, token string, body any) *net.TCPConn {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, u.Host, token, len(b), b)
	return c.(*net.TCPConn)
}

// waitAudit waits until the audit log holds an entry whose action and
// actor are want, and returns its detail.
func (e *env) waitAudit(t *testing.T, want string) map[string]any {
	t.Helper()
	var d map[string]any
	tstest.Eventually(t, 10*time.Second, func() bool {
		entries, err := e.st.AuditEntries(context.Background(), 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if en.Action+" "+en.Actor == want {
				json.Unmarshal(en.After, &d)
				return true
			}
		}
		return false
	}, "no audit entry %q", want)
	return d
}

// TestExportAuditedWhenClientHangsUp is the first case: the chef
// reads 300 KB of the ZIP and closes the connection. The export's start
// entry exists, and its end entry says where it was interrupted.
func TestExportAuditedWhenClientHangsUp(t *testing.T) {
	e := newEnv(t)
	_, edgeKey, _ := ed25519.GenerateKey(rand.Reader)
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	if err := e.edge(t, edgeKey, 40000, start).Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := export.APIRequest{UAI: monnet, From: start.Format(time.RFC3339), To: time.Now().Format(time.RFC3339), Reference: "PV 300K", Motive: "test"}
	c := rawExport(t, e.http.URL, e.tokens["chef"], req)
	br := bufio.NewReader(c)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, "200") {
		t.Fatalf("status line %q", status)
	}
	n, err := io.CopyN(io.Discard, br, 300<<10)
	if err != nil {
		t.Fatalf("read %d bytes: %v (the export must exceed 300 KB for this test)", n, err)
	}
	c.SetLinger(0) // a reset, as a killed client leaves
	c.Close()

	e.waitAudit(t, "export.start chef")
	d := e.waitAudit(t, "export.interrupted chef")
	if s, _ := d["status"].(string); !strings.HasPrefix(s, "interrompue après ") {
		t.Fatalf("interrupted entry: %v", d)
	}
	if contains(e.auditActions(t), "export chef") {
		t.Fatal("an interrupted export is audited as complete")
	}
}

// TestAuditedWhenClientHalfCloses: a client that sends its request and
// shuts its write side (the server then sees EOF and cancels the request's
// context) still leaves the denial, and a completed export, in the log.
func TestAuditedWhenClientHalfCloses(t *testing.T) {
	e := newEnv(t)
	_, edgeKey, _ := ed25519.GenerateKey(rand.Reader)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := e.edge(t, edgeKey, 2000, start).Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := export.APIRequest{UAI: monnet, From: start.Format(time.RFC3339), To: time.Now().Format(time.RFC3339), Reference: "PV half", Motive: "test"}
	for _, tc := range []struct{ who, want string }{
		{"tech", "export.denied tech"},
		{"chef-autre", "export.denied chef-autre"},
		{"chef", "export.start chef"},
	} {
		t.Run(tc.who, func(t *testing.T) {
			c := rawExport(t, e.http.URL, e.tokens[tc.who], req)
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, c)
			c.Close()
			e.waitAudit(t, tc.want)
		})
	}
	// The chef's export either completed or was cut: its end is audited.
	tstest.Eventually(t, 10*time.Second, func() bool {
		acts := e.auditActions(t)
		return contains(acts, "export chef") || contains(acts, "export.interrupted chef")
	}, "export end not audited")
}
