package policysync

import (
	"net"
	"testing"
	"time"

	"vigie/controlplane/cptest"
)

// An agent given several control-plane URLs turns to the next one when
// the current one cannot be reached.
func TestFailoverToAnotherURL(t *testing.T) {
	cp := cptest.Start(t, cptest.Options{LongPoll: 2 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	h := &holder{pub: cp.PublicKey()}
	a := startAgent(t, cp, h, func(c *Config) { c.URL, c.URLs = dead, []string{cp.URL} })
	cptest.Eventually(t, 10*time.Second, "serial 1 from the second URL", func() bool { s, _, _ := h.current(); return s == 1 })
	if a.root() != cp.URL {
		t.Fatalf("agent on %s, want %s", a.root(), cp.URL)
	}
	if _, err := New(Config{URL: cp.URL, URLs: []string{"ftp://x"}, Token: "t", PublicKey: cp.PublicKey(), Apply: h.apply, Current: h.current}); err == nil {
		t.Fatal("a bad further URL was accepted")
	}
}
