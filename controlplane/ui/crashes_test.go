package ui

import (
	"strings"
	"testing"
	"time"

	"vigie/journal"
	"vigie/journal/journaltest/sealed"
)

// TestDashboardShowsDeclaredLosses: a loss interval an edge declared after
// an unclean stop shows on the dashboard of the RSSI and of that school's
// chef, and not on another school's.
func TestDashboardShowsDeclaredLosses(t *testing.T) {
	e := newEnv(t, envOptions{})
	to := e.clock.now().Add(-time.Hour)
	sealed.Put(t, e.arch, "crash-test-chain", journal.CrashMarker(monnet, journal.Navigation, to.Add(-1500*time.Millisecond), to))
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
