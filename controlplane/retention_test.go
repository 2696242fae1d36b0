package controlplane

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigie/controlplane/auth"
	"vigie/controlplane/store"
	"vigie/demo"
	"vigie/journal"
	"vigie/journal/archive"
	"vigie/journal/journaltest"
	"vigie/journal/segment"
	"vigie/journal/ship"
	"vigie/keyfile"
	"vigie/tstest"
)

func TestRetentionConfig(t *testing.T) {
	for _, tc := range []struct {
		yaml, err string
		conn, nav time.Duration
	}{
		{"", "", 365 * 24 * time.Hour, 183 * 24 * time.Hour},
		{"retention:\n  navigation: 90d\n", "", 365 * 24 * time.Hour, 90 * 24 * time.Hour},
		{"retention:\n  connexions: 8760h\n  navigation: 30d\n", "", 365 * 24 * time.Hour, 30 * 24 * time.Hour},
		{"retention:\n  connexions: 400d\n", "retention.connexions: 400d is more than the legal maximum of one year", 0, 0},
		{"retention:\n  navigation: 366d\n", "retention.navigation: 366d is more than the legal maximum", 0, 0},
		{"retention:\n  connexions: 100d\n  navigation: 200d\n", "retention.navigation: 200d is longer than retention.connexions", 0, 0},
		{"retention:\n  navigation: six mois\n", `"six mois" is not a duration`, 0, 0},
		{"retention:\n  navigation: -3d\n", "not a positive number of days", 0, 0},
		{"retention:\n  navigaton: 30d\n", "field navigaton not found", 0, 0},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "controlplane.yaml")
			os.WriteFile(path, []byte("data_dir: /var/lib/vigie\n"+tc.yaml), 0o600)
			c, err := LoadConfig(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want %q naming the file", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r := c.Retention.archive(); r.Connexions != tc.conn || r.Navigation != tc.nav {
				t.Fatalf("retention %+v", r)
			}
		})
	}
}

// TestRetentionCycle runs the archive's whole life on an injected clock,
// end to end through a real control plane configured from its file and a
// real edge journal: ship, age past the navigation retention, purge, hold
// part of the connexions, age past a year, purge, release, purge.
func TestRetentionCycle(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyfile.Generate(filepath.Join(dir, "academie.key")); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "controlplane.yaml")
	os.WriteFile(cfgPath, []byte("data_dir: "+dir+"\nretention:\n  connexions: 365d\n  navigation: 183d\n"), 0o600)
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	clock := tstest.NewClock(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	cp, err := Open(ctx, cfg, Deps{Log: quiet, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	srv := httptest.NewServer(cp.Handler())
	defer srv.Close()
	acc, err := CreateAccount(ctx, cp.Store, cp.Auth, "test", "rssi", auth.RSSI, "", true, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	edgeTok, hash := auth.NewToken(auth.EdgeTokenPrefix)
	if err := cp.Store.Update(ctx, func(tx store.Tx) error {
		return tx.CreateEdge(ctx, store.Edge{ID: "monnet-1", UAI: demo.UAI, TokenHash: hash, CreatedAt: clock.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	call := func(path string, body any, out any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+acc.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, data)
		}
		if out != nil {
			json.Unmarshal(data, out)
		}
	}

	// Ship: a morning of traffic from a real edge journal.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	j, err := segment.OpenJournal(segment.Options{Dir: filepath.Join(dir, "edge"), UAI: demo.UAI, Key: key, Now: clock.Now,
		CommitInterval: time.Millisecond, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	g := journaltest.New(9, demo.UAI, clock.Now().Add(-4*time.Hour))
	var connTimes []time.Time
	const n = 400
	for i := 0; i < n; i++ {
		for _, s := range []journal.Stream{journal.Connexions, journal.Navigation} {
			r := g.Next(s)
			if s == journal.Connexions {
				connTimes = append(connTimes, r.Time)
			}
			j.Append(&r)
		}
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sh, err := ship.New(ship.Options{Logs: []*segment.Log{j.Log(journal.Connexions), j.Log(journal.Navigation)}, URL: srv.URL, Token: edgeTok, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Round(ctx); err != nil {
		t.Fatal(err)
	}
	purge := func(wantConn, wantNav int64) archive.PurgeReport {
		t.Helper()
		var rep archive.PurgeReport
		call("/api/v1/logs/purge", nil, &rep)
		if rep.Totals["connexions"] != wantConn || rep.Totals["navigation"] != wantNav {
			t.Fatalf("at %s purge deleted %v, want connexions %d navigation %d", clock.Now().Format(time.DateOnly), rep.Totals, wantConn, wantNav)
		}
		if rep.Retention["connexions"] != 365 || rep.Retention["navigation"] != 183 {
			t.Fatalf("retention in the report: %v", rep.Retention)
		}
		return rep
	}

	purge(0, 0) // nothing is old yet
	// Age past six months: navigation goes, connexions stay.
	clock.Advance(190 * 24 * time.Hour)
	purge(0, n)
	// A requisition: hold the connexions of the first half of the morning.
	mid := connTimes[0].Add(connTimes[len(connTimes)-1].Sub(connTimes[0]) / 2)
	held := int64(0)
	for _, tm := range connTimes {
		if tm.Before(mid) {
			held++
		}
	}
	var h archive.Hold
	call("/api/v1/holds", map[string]string{"uai": demo.UAI, "from": connTimes[0].Add(-time.Hour).Format(time.RFC3339Nano),
		"to": mid.Format(time.RFC3339Nano), "reference": "PV 2026/123"}, &h)
	// Age past a year: the held connexions stay.
	clock.Advance(180 * 24 * time.Hour)
	purge(n-held, 0)
	// Released, they go at the next purge.
	call(fmt.Sprintf("/api/v1/holds/%d/release", h.ID), nil, nil)
	purge(held, 0)
	purge(0, 0)
	if held == 0 || held == n {
		t.Fatalf("the hold covered %d of %d records: the test proves nothing", held, n)
	}
}
