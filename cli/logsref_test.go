package cli

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/cptest"
	"vigie/controlplane/logs"
	"vigie/journal"
	"vigie/journal/journaltest/sealed"
)

// TestLogsRef finds a refusal by its block page's reference, as a table
// and, with --json, as the API's document.
func TestLogsRef(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	sealed.Put(t, cp.Archive(), "logs-ref-chain-n", journal.Record{Stream: journal.Navigation, Time: time.Now().Add(-time.Hour),
		UAI: "0671234X", Client: netip.MustParseAddrPort("10.10.0.14:51234"), User: "eleve.dupont", Proto: "http", Method: "GET",
		Host: "www.pornhub.com", URL: "http://www.pornhub.com/videos", Status: 403, Verdict: "block", Category: "adult",
		Reference: "Q3R6-RPAY"})
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := logsRef(append([]string{"--server", cp.URL, "--token", cp.RSSIToken}, args...), &out, &errb); err != nil {
			t.Fatalf("vigie logs ref %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	table := run("q3r6 rpay")
	for _, want := range []string{`(?m)^Référence +Q3R6-RPAY$`, `(?m)^Utilisateur +eleve\.dupont$`, `(?m)^URL +http://www\.pornhub\.com/videos$`, `(?m)^Enregistrement +navigation n° 1$`} {
		if !regexp.MustCompile(want).MatchString(table) {
			t.Errorf("table lacks %s:\n%s", want, table)
		}
	}
	var got logs.Refusal
	if err := json.Unmarshal([]byte(run("--json", "Q3R6-RPAY")), &got); err != nil || got.Reference != "Q3R6-RPAY" || got.User != "eleve.dupont" || got.Seq != 1 {
		t.Fatalf("--json: %+v %v", got, err)
	}
	// The guide's environment: VIGIE_SERVER and VIGIE_TOKEN_FILE only.
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(cp.RSSIToken+"\n"), 0o600)
	t.Setenv("VIGIE_SERVER", cp.URL)
	t.Setenv("VIGIE_TOKEN", "")
	t.Setenv("VIGIE_TOKEN_FILE", tokenFile)
	var out, errb bytes.Buffer
	if code := Main([]string{"logs", "ref", "Q3R6-RPAY"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "eleve.dupont") {
		t.Fatalf("with VIGIE_TOKEN_FILE: exit %d %s%s", code, out.String(), errb.String())
	}
}
