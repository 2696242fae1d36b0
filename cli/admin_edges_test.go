package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// TestAdminEdgesShowsUnknownVersion: an edge that reports a serial and
// hash the control plane never published is shown "version inconnue".
func TestAdminEdgesShowsUnknownVersion(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	cp.ReportStatus(9, strings.Repeat("ab", 32))
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
