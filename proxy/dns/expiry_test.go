package dns

import (
	"fmt"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestUpstreamSocketExpiry: an upstream UDP socket is replaced, on a new
// source port, after its queries or its time, and not before.
func TestUpstreamSocketExpiry(t *testing.T) {
	n := 0
	ask := func(h *harness) int {
		t.Helper()
		n++
		r := h.ask(query{name: fmt.Sprintf("port%d.exemple-autorise.test", n), qtype: mdns.TypeA})
		if len(r.Answer) != 1 {
			t.Fatalf("answer %v", r.Answer)
		}
		h.auth.mu.Lock()
		defer h.auth.mu.Unlock()
		return h.auth.udpPorts[len(h.auth.udpPorts)-1]
	}
	one := func(c *Config) { c.UpstreamSockets = 1 }

	t.Run("after its queries", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { one(c); c.UpstreamSocketQueries, c.UpstreamSocketExpiry = 3, -1 })
		var ports []int
		for range 9 {
			ports = append(ports, ask(h))
		}
		for i := 1; i < len(ports); i++ {
			if renewed := i%3 == 0; (ports[i] != ports[i-1]) != renewed {
				t.Fatalf("source ports %v: want a new one every 3 queries", ports)
			}
		}
		if got := testutil.ToFloat64(h.srv.m.upRenewed); got != 2 {
			t.Errorf("renewed %v sockets, want 2", got)
		}
	})
	t.Run("after its time", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { one(c); c.UpstreamSocketQueries, c.UpstreamSocketExpiry = -1, 10*time.Second })
		first := ask(h)
		h.clock.Advance(9 * time.Second)
		if p := ask(h); p != first {
			t.Fatalf("source port %d then %d before the socket's time was up", first, p)
		}
		h.clock.Advance(2 * time.Second)
		p := ask(h)
		if p == first {
			t.Fatalf("source port %d kept after the socket's time was up", p)
		}
		if q := ask(h); q != p {
			t.Fatalf("source port %d then %d right after a renewal", p, q)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { one(c); c.UpstreamSocketQueries, c.UpstreamSocketExpiry = -1, -1 })
		first := ask(h)
		h.clock.Advance(time.Hour)
		for range 20 {
			if p := ask(h); p != first {
				t.Fatalf("source port %d then %d with no expiry", first, p)
			}
		}
	})
}
