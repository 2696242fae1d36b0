package ui

import (
	"testing"
	"time"
)

// TestLook is a scratch test for looking at pages while building them.
func TestLook(t *testing.T) {
	start := time.Now()
	e := newEnv(t, envOptions{})
	t.Logf("env ready in %s", time.Since(start))
	b := newBrowser(t)
	p := b.person(t, e.srv.URL)
	p.open("/connexion")
	p.shot("look-login")
	p.login("rssi", e.passwd["rssi"])
	p.shot("look-dashboard")
	t.Logf("done in %s", time.Since(start))
}
