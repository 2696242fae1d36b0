package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/archive"
)

// TestDashboardShowsDeclaredLosses: a loss interval an edge declared after
// an unclean stop shows on the dashboard of the RSSI and of that school's
// chef, and not on another school's.
func TestDashboardShowsDeclaredLosses(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	var id journal.ChainID
	copy(id[:], "crash-test-chain")
	c, _, err := e.arch.Chain(ctx, archive.ChainKey{UAI: monnet, Stream: journal.Navigation, ID: id}, true)
	if err != nil {
		t.Fatal(err)
	}
	to := e.clock.now().Add(-time.Hour)
	r := journal.CrashMarker(monnet, journal.Navigation, to.Add(-1500*time.Millisecond), to)
	journal.Canonicalize(&r)
	p := journal.AppendRecord(nil, &r)
	link := journal.Link(journal.Genesis(monnet, journal.Navigation, id), 1, p)
	if _, err := e.arch.Put(ctx, c, []archive.Stored{{Seq: 1, Time: r.Time, Link: link, Payload: p}}, archive.Gap{First: 1, Last: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		login string
		shown bool
	}{{"rssi", true}, {"chef", true}, {"chef.hugo", false}} {
		t.Run(tc.login, func(t *testing.T) {
			_, body, _ := e.login(tc.login).get("/")
			if got := strings.Contains(body, "arrêt brutal\u00a0: enregistrements possiblement perdus entre le "); got != tc.shown {
				t.Fatalf("declared loss shown: %v, want %v", got, tc.shown)
			}
		})
	}
}
