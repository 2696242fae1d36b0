package logs_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/cli"
	"vigie/controlplane/logs"
	"vigie/journal"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
	"vigie/journal/ship"
)

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// TestFindRefusalByReference: the reference a pupil reads on a block page
// leads the RSSI and that school's chef to the refusal (time, client,
// user, URL, category, and the list entry that blocked), and nobody else.
func TestFindRefusalByReference(t *testing.T) {
	e := newEnv(t)
	if resp, b := post(t, e.http.URL+"/api/v1/publish", e.tokens["rssi"], map[string]any{"comment": "v1"}); resp.StatusCode >= 300 {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
	_, edgeKey, _ := ed25519.GenerateKey(rand.Reader)
	j, err := segment.OpenJournal(segment.Options{Dir: filepath.Join(t.TempDir(), "journal"), UAI: monnet, Key: edgeKey, CommitInterval: time.Millisecond, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	time.Sleep(10 * time.Millisecond)
	at := time.Now().Truncate(time.Millisecond)
	g := journaltest.New(3, monnet, at.Add(-time.Hour))
	for i := 0; i < 3000; i++ {
		r := g.Next(journal.Navigation)
		j.Append(&r)
		if i == 1700 {
			j.Append(&journal.Record{Stream: journal.Navigation, Time: at, UAI: monnet, Client: netip.MustParseAddrPort("10.10.0.14:51234"),
				User: "eleve.dupont", Proto: "http", Method: "GET", Host: "www.pornhub.com", URL: "http://www.pornhub.com/videos",
				Status: 403, Verdict: "block", Category: "adult", Reference: "Q3R6-RPAY"})
		}
	}
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	sh, err := ship.New(ship.Options{Logs: []*segment.Log{j.Log(journal.Navigation)}, URL: e.http.URL, Token: e.edgeTok})
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who, ref, query string
		status          int
	}{
		{"rssi", "Q3R6-RPAY", "", 200},
		{"chef", "q3r6 rpay", "", 200},
		{"chef", "Q3R6RPAY", "?uai=" + monnet, 200},
		{"chef-autre", "Q3R6-RPAY", "", 404},
		{"chef-autre", "Q3R6-RPAY", "?uai=" + monnet, 403},
		{"tech", "Q3R6-RPAY", "", 403},
		{"audit", "Q3R6-RPAY", "", 403},
		{"rssi", "Q3R6-RPAZ", "", 404},
		{"rssi", "Q3R6-RPA", "", 422},
		{"rssi", "Q3R6-RPAY", "?to=" + at.Add(-time.Minute).Format(time.RFC3339), 404},
	} {
		t.Run(tc.who+" "+tc.ref+tc.query, func(t *testing.T) {
			code, b := get(t, e.http.URL+"/api/v1/logs/refs/"+strings.ReplaceAll(tc.ref, " ", "%20")+tc.query, e.tokens[tc.who])
			if code != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", code, tc.status, b)
			}
			if code != 200 {
				return
			}
			var r logs.Refusal
			json.Unmarshal(b, &r)
			if r.Reference != "Q3R6-RPAY" || r.UAI != monnet || !r.Time.Equal(at) || r.Client != "10.10.0.14:51234" || r.User != "eleve.dupont" ||
				r.URL != "http://www.pornhub.com/videos" || r.Category != "adult" || r.Serial != 1 || r.Zone != "pedagogique" {
				t.Fatalf("refusal %s", b)
			}
			if r.Entry == nil || !strings.HasSuffix(r.Entry.Entry, "pornhub.com") || r.Entry.List != "adult-top1m" || r.Entry.Category != "adult" {
				t.Fatalf("entry %+v in %s", r.Entry, b)
			}
		})
	}
	if acts := e.auditActions(t); !contains(acts, "logs.ref chef") || !contains(acts, "logs.ref.denied chef-autre") {
		t.Fatalf("lookups not audited: %v", acts)
	}
	var out, errb bytes.Buffer
	if code := cli.Main([]string{"logs", "ref", "Q3R6-RPAY", "--server", e.http.URL, "--token", e.tokens["chef"]}, &out, &errb); code != 0 {
		t.Fatalf("vigie logs ref: exit %d %s", code, errb.String())
	}
	for _, want := range []string{"Q3R6-RPAY", "10.10.0.14", "eleve.dupont", "http://www.pornhub.com/videos", "adult", "pornhub.com"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("vigie logs ref output lacks %q:\n%s", want, out.String())
		}
	}
}
