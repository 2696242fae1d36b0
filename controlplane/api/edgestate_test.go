package api

import (
	"testing"
	"time"

	"vigie/controlplane/store"
)

// TestEdgeState: the one word the UI and "vigie admin edges" show.
func TestEdgeState(t *testing.T) {
	seen := time.Now()
	for _, tc := range []struct {
		name             string
		edge             store.Edge
		online, upToDate bool
		unknown          bool
		want             string
	}{
		{"never seen", store.Edge{}, false, false, false, "never"},
		{"apply failed", store.Edge{EdgeStatus: store.EdgeStatus{LastSeen: seen, LastError: "refus"}}, true, false, false, "error"},
		{"silent", store.Edge{EdgeStatus: store.EdgeStatus{LastSeen: seen}}, false, true, false, "silent"},
		{"unknown version", store.Edge{EdgeStatus: store.EdgeStatus{LastSeen: seen}}, true, false, true, "unknown"},
		{"late", store.Edge{EdgeStatus: store.EdgeStatus{LastSeen: seen}}, true, false, false, "late"},
		{"ok", store.Edge{EdgeStatus: store.EdgeStatus{LastSeen: seen}}, true, true, false, "ok"},
	} {
		if got := edgeState(tc.edge, tc.online, tc.upToDate, tc.unknown); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
