package cli

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// TestAdminEdgesShowsUnknownVersion: an edge that reports a serial and
// hash the control plane never published is shown "version inconnue".
func TestAdminEdgesShowsUnknownVersion(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	body := `{"serial": 9, "hash": "` + strings.Repeat("ab", 32) + `"}`
	req, _ := http.NewRequest("POST", cp.URL+"/api/v1/edge/status", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+cp.EdgeToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("report: HTTP %d", resp.StatusCode)
	}
	var out, errb bytes.Buffer
	if err := runAdmin([]string{"--server", cp.URL, "--token", cp.RSSIToken, "edges"}, &out, &errb); err != nil {
		t.Fatalf("%v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "NO (version inconnue)") {
		t.Fatalf("vigie admin edges:\n%s", out.String())
	}
	// The next publication jumps past the reported serial.
	if s := cp.Block("apres.example"); s != 10 {
		t.Fatalf("published serial %d, want 10 (past the reported 9)", s)
	}
}
