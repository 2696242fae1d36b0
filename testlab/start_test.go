package testlab

import (
	"context"
	"testing"

	"vigie/tstest"
)

// Start builds a lab for a test and registers its teardown, which runs
// even when the test fails (then printing the edge's log). Without root it
// skips the test: CI runs as root, so scenarios always run there. It lives
// in a test file so that the vigie binary does not link package testing.
func Start(t testing.TB, o Options) *Lab {
	t.Helper()
	tstest.RequireRoot(t)
	l, err := Up(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("edge log of lab %s:\n%s", l.ID, l.EdgeLog())
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab %s teardown: %v", l.ID, err)
		}
	})
	return l
}
