package tstest

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitFor(t *testing.T) {
	var n atomic.Int32
	if !WaitFor(time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("a condition that becomes true was reported false")
	}
	if WaitFor(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds was reported true")
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2026, 3, 12, 14, 32, 5, 0, time.UTC)
	c := NewClock(start)
	if got := c.Advance(2 * time.Second); !got.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("Advance gave %v", got)
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Set then Now gave %v", c.Now())
	}
}

func TestMissingFailsInCI(t *testing.T) {
	t.Setenv("CI", "1")
	ft := &fakeTB{}
	func() {
		defer func() { recover() }()
		missing(ft, "x")
	}()
	if !ft.failed || ft.skipped {
		t.Fatalf("in CI a missing prerequisite must fail, got failed=%v skipped=%v", ft.failed, ft.skipped)
	}
	t.Setenv("CI", "")
	ft = &fakeTB{}
	func() {
		defer func() { recover() }()
		missing(ft, "x")
	}()
	if !ft.skipped || ft.failed {
		t.Fatalf("outside CI a missing prerequisite must skip, got failed=%v skipped=%v", ft.failed, ft.skipped)
	}
}

// fakeTB records Fatalf and Skipf; both stop the caller with a panic the
// test recovers, as the real ones stop the goroutine.
type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
func (f *fakeTB) Skipf(string, ...any) {
	f.skipped = true
	panic("skip")
}
