package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vigie/journal"
	"vigie/tstest"
)

// The proxy's resolver is the filter itself: the client's profile applies
// (SafeSearch, blocks, CNAME cloaking), no DNS record is journalled.
func TestResolveInProcess(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct {
		name, client, host string
		want               []netip.Addr
		blocked            string // category
		notFound           bool
	}{
		{"allowed name, both families", srcEleves, nameAllowed, addrs("198.51.100.7", "2001:db8::7"), "", false},
		{"SafeSearch for pupils", srcEleves, "www.google.com", addrs(safeSearchV4, safeSearchV6), "", false},
		{"SafeSearch, trailing dot and case", srcEleves, "WWW.Google.com.", addrs(safeSearchV4, safeSearchV6), "", false},
		{"no SafeSearch for servers", srcServeurs, "www.google.com", addrs("198.51.100.7", "2001:db8::7"), "", false},
		{"blocked for pupils", srcEleves, "pornhub.com", nil, "adult", false},
		{"CNAME cloaking", srcEleves, nameCloak, nil, "adult", false},
		{"unfiltered zone", srcServeurs, "pornhub.com", addrs("198.51.100.7", "2001:db8::7"), "", false},
		{"no such name", srcEleves, nameNX, nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.srv.Resolve(ctx, netip.MustParseAddr(tc.client), tc.host)
			var be *BlockedError
			var de *net.DNSError
			switch {
			case tc.blocked != "":
				if !errors.As(err, &be) || be.Category != tc.blocked {
					t.Fatalf("got %v, %v; want blocked %s", got, err, tc.blocked)
				}
			case tc.notFound:
				if !errors.As(err, &de) || !de.IsNotFound {
					t.Fatalf("got %v, %v; want not found", got, err)
				}
			default:
				if err != nil || !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, %v; want %v", got, err, tc.want)
				}
			}
		})
	}
	for _, r := range h.jr.Records() {
		if r.Stream == journal.Navigation && r.Proto == "dns" {
			t.Errorf("in-process lookup journalled as a DNS query: %+v", r)
		}
	}
}

// An upstream that cannot even be dialed (no route: an IPv6 resolver while
// IPv6 is down) does not stop the filter from starting; it is marked down,
// the others answer, and it is dialed again later.
func TestUnroutableUpstreamDoesNotStopStart(t *testing.T) {
	dial := &flakyDialer{}
	dial.fail.Store(true)
	h := newHarnessDial(t, dial, func(c *Config) {
		c.Upstreams = []string{"[2001:db8::53]:53", c.Upstreams[0]}
	})
	if m := h.ask(query{name: nameAllowed, qtype: 1}); len(m.Answer) != 1 {
		t.Fatalf("no answer through the working upstream: %v", m)
	}
	dial.fail.Store(false)
	// The probe dials it again (it still does not answer: nobody listens).
	tstest.Eventually(t, 5*time.Second, func() bool { return dial.v6dials.Load() != 0 },
		"the unroutable upstream was never dialed again")
}

// flakyDialer dials for real, except IPv6 addresses while fail is set:
// those get the kernel's answer when no route exists.
type flakyDialer struct {
	fail    atomic.Bool
	v6dials atomic.Int64
}

func (d *flakyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() {
		if d.fail.Load() {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
		}
		d.v6dials.Add(1)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}
