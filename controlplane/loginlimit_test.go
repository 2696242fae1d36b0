package controlplane_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"vigie/controlplane/cptest"
	"vigie/controlplane/store/pgtest"
)

// TestLoginLimitsSharedByReplicas runs two control-plane processes on one
// PostgreSQL: the failed sign-ins made on one replica count on the other,
// so an attacker spreading attempts over the replicas behind the front
// gains nothing.
func TestLoginLimitsSharedByReplicas(t *testing.T) {
	database := pgtest.Shared(t).Database(t)
	seed := cptest.Start(t, cptest.Options{Database: database, Schema: "ac_test", LongPoll: 5 * time.Second})
	seed.Stop()
	a, b := startReplica(t, "a", seed.DataDir, database), startReplica(t, "b", seed.DataDir, database)
	login := func(base, password string) (int, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"login": "rssi", "password": password})
		resp, err := http.Post(base+"/api/v1/session", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := 0; i < 5; i++ {
		if code, _ := login(a.URL, "mauvais mot de passe"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d on replica a: %d, want 401", i, code)
		}
	}
	code, retry := login(b.URL, seed.RSSIPassword)
	if code != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("replica b after five failures on a: %d (Retry-After %q), want 429 with the back-off", code, retry)
	}
}
