// Package tstest holds the helpers every test of the tree shares: waiting
// for a condition without a hand-rolled deadline loop, requiring root or a
// system tool in a way that cannot skip silently in CI, and a clock that
// tests move by hand.
//
// CI runs as root with every package the tests need installed (see
// .ci/run), and sets CI=1. There, a missing prerequisite is a broken
// environment, not a reason to skip: the Require helpers fail the test.
// On a developer's machine they skip with the reason.
package tstest

import (
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the test runs in CI, where nothing may be skipped
// for want of a prerequisite.
func InCI() bool { return os.Getenv("CI") != "" }

// missing skips t outside CI and fails it in CI.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI must provide this: "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot stops a test that needs root (network namespaces, nftables,
// dpkg --root): a skip on a developer's machine, a failure in CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root (network namespaces, nftables); CI runs as root")
	}
}

// RequireCommand returns the path of a system tool the test drives, or
// stops the test as RequireRoot does. pkg names the Debian package that
// provides it, for the message.
func RequireCommand(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/lib/chromium"} {
			if st, err2 := os.Stat(dir + "/" + name); err2 == nil && st.Mode()&0o111 != 0 {
				return dir + "/" + name
			}
		}
		missing(t, "%s not found (Debian package %s, installed by .ci/run)", name, pkg)
	}
	return p
}

// Eventually polls cond until it holds or timeout passes, then fails the
// test with msg. The poll starts fast and backs off, so a condition that
// is already true costs nothing and a slow one does not spin a core.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !WaitFor(timeout, cond) {
		t.Fatalf("after %v: "+format, append([]any{timeout}, args...)...)
	}
}

// WaitFor is Eventually for callers that decide themselves what a timeout
// means (a goroutine that must not call t.Fatal, or a wait whose failure
// is the expected outcome). It reports whether cond held in time.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// Clock is a clock tests move by hand. Its zero value is not usable: use
// NewClock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time; pass c.Now where a component takes a
// func() time.Time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t, which may be earlier (a clock stepped back by
// NTP is a case worth testing).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
