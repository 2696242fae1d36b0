package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"vigie/demo"
	"vigie/journal"
	"vigie/proxy/generation"
	"vigie/rules"
	"vigie/rules/policy"
)

// rawQuery builds a query by hand so that tests can break it.
func rawQuery(id uint16, name string, qtype uint16) []byte {
	b := appendHeader(nil, id, flagRD, 1, 0, 0, 0)
	b = appendName(b, name)
	return append(b, byte(qtype>>8), byte(qtype), 0, classIN)
}

func withOPT(b []byte, version uint8, options []byte) []byte {
	put16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
	b = append(b, 0, 0, typeOPT, 0x04, 0xD0, 0, version, 0, 0, byte(len(options)>>8), byte(len(options)))
	return append(b, options...)
}

// udpRaw sends pkt from src and returns the answer, or nil when none
// comes within wait.
func udpRaw(t *testing.T, server, src string, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(mustAddrPort(t, server)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func mustAddrPort(t *testing.T, s string) (ap netip.AddrPort) {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a.AddrPort()
}

func TestMalformed(t *testing.T) {
	h := newHarness(t, nil)
	good := rawQuery(0x1234, nameAllowed, typeA)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	const (
		drop    = -1
		badVers = rcodeBadVers
	)
	for _, tc := range []struct {
		name  string
		pkt   []byte
		rcode int
	}{
		{"empty", nil, drop},
		{"runt", good[:5], drop},
		{"header only", good[:headerLen], rcodeFormErr},
		{"a response", mutate(func(b []byte) []byte { b[2] |= 0x80; return b }), drop},
		{"two questions", mutate(func(b []byte) []byte { b[5] = 2; return b }), rcodeFormErr},
		{"no question", mutate(func(b []byte) []byte { b[5] = 0; return b }), rcodeFormErr},
		{"an answer record in a query", mutate(func(b []byte) []byte { b[7] = 1; return b }), rcodeFormErr},
		{"truncated question", good[:len(good)-3], rcodeFormErr},
		{"label overruns the packet", mutate(func(b []byte) []byte { b[headerLen] = 60; return b[:headerLen+10] }), rcodeFormErr},
		{"compression pointer in the question", append(appendHeader(nil, 7, 0, 1, 0, 0, 0), 0xC0, 0x0C, 0, 1, 0, 1), rcodeFormErr},
		{"pointer loop", append(appendHeader(nil, 7, 0, 1, 0, 0, 0), 0xC0, 0x0C, 0xC0, 0x0C), rcodeFormErr},
		{"label holding a dot", append(appendHeader(nil, 7, 0, 1, 0, 0, 0), 3, 'a', '.', 'b', 0, 0, 1, 0, 1), rcodeFormErr},
		{"name over 255 bytes", rawQuery(9, strings.Repeat(strings.Repeat("a", 63)+".", 5)+"fr", typeA), rcodeFormErr},
		{"additional count beyond the packet", mutate(func(b []byte) []byte { b[11] = 3; return b }), rcodeFormErr},
		{"OPT option overruns", withOPT(append([]byte(nil), good...), 0, []byte{0, 8, 0, 40, 1}), rcodeFormErr},
		{"two OPT records", withOPT(withOPT(append([]byte(nil), good...), 0, nil), 0, nil), rcodeFormErr},
		{"EDNS version 1", withOPT(append([]byte(nil), good...), 1, nil), badVers},
		{"opcode NOTIFY", mutate(func(b []byte) []byte { b[2] |= 4 << 3; return b }), rcodeNotImp},
		{"class CHAOS", mutate(func(b []byte) []byte { b[len(b)-1] = 3; return b }), rcodeRefused},
		{"zone transfer", rawQuery(5, "ac-demo.fr", typeAXFR), rcodeRefused},
		{"client subnet is accepted (and not forwarded)", withOPT(append([]byte(nil), good...), 0, []byte{0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100}), rcodeSuccess},
		{"trailing garbage is ignored", append(append([]byte(nil), good...), 1, 2, 3), rcodeSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait := 2 * time.Second
			if tc.rcode == drop {
				wait = 300 * time.Millisecond
			}
			resp := udpRaw(t, h.srv.Addr(), srcEleves, tc.pkt, wait)
			if tc.rcode == drop {
				if resp != nil {
					t.Fatalf("got an answer to a packet that must be dropped: %x", resp)
				}
				return
			}
			if resp == nil {
				t.Fatal("no answer")
			}
			var m mdns.Msg
			if err := m.Unpack(resp); err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
			if len(tc.pkt) >= 2 && m.Id != binary.BigEndian.Uint16(tc.pkt) {
				t.Errorf("ID %x, want the query's", m.Id)
			}
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[m.Rcode], mdns.RcodeToString[tc.rcode])
			}
		})
	}
	t.Run("tcp", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			frame []byte
		}{
			{"oversized frame", []byte{0xFF, 0xFF, 1, 2, 3}},
			{"frame too short for a header", []byte{0, 3, 1, 2, 3}},
			{"a response", append([]byte{0, byte(len(good))}, mutate(func(b []byte) []byte { b[2] |= 0x80; return b })...)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, err := net.Dial("tcp", h.srv.Addr())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.Write(tc.frame)
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, err := c.Read(make([]byte, 10)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("connection not closed: read %d, %v", n, err)
				}
			})
		}
	})
	// After all that, the server is still serving.
	if r := h.ask(query{name: nameAllowed, qtype: mdns.TypeA}); len(r.Answer) != 1 {
		t.Fatalf("server no longer answers: %v", r)
	}
	if got := testutil.ToFloat64(h.srv.m.malformed.WithLabelValues("formerr")); got < 10 {
		t.Errorf("formerr metric %v", got)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RateLimit = RateLimitConfig{QPS: 10, Burst: 5} })
	burst := func(src string, n int) int {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(mustAddrPort(t, h.srv.Addr())))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			c.Write(rawQuery(uint16(i), "pornhub.com", typeA))
		}
		got := 0
		buf := make([]byte, 1500)
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			if _, err := c.Read(buf); err != nil {
				return got
			}
			got++
		}
	}
	// The clock is frozen: exactly the burst is served.
	if got := burst(srcEleves, 20); got != 5 {
		t.Errorf("served %d of 20 queries, want the burst of 5", got)
	}
	if got := burst(srcPersonnels, 3); got != 3 {
		t.Errorf("another client got %d of 3 answers: limits are per source", got)
	}
	h.clock.Advance(300 * time.Millisecond) // 3 queries' worth at 10/s
	if got := burst(srcEleves, 20); got != 3 {
		t.Errorf("after 300ms, served %d, want 3", got)
	}
	if got := testutil.ToFloat64(h.srv.m.limited); got != 32 {
		t.Errorf("rate-limited queries metric %v, want 32", got)
	}
	if got := testutil.ToFloat64(h.srv.m.limitedSrcs); got != 2 {
		t.Errorf("rate-limited clients metric %v, want 2 episodes", got)
	}
	t.Run("tcp client over its rate loses the connection", func(t *testing.T) {
		h.clock.Advance(time.Hour)
		c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP(srcInvites)}, net.TCPAddrFromAddrPort(mustAddrPort(t, h.srv.Addr())))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		q := rawQuery(1, "pornhub.com", typeA)
		frame := append([]byte{0, byte(len(q))}, q...)
		for i := 0; i < 10; i++ {
			c.Write(frame)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		data, _ := io.ReadAll(c)
		if answers := countFrames(data); answers != 5 {
			t.Errorf("%d answers before the close, want 5", answers)
		}
	})
}

func countFrames(b []byte) int {
	n := 0
	for len(b) >= 2 {
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			break
		}
		b = b[2+l:]
		n++
	}
	return n
}

func TestTCPConnectionLimits(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxTCPConnsPerSource = 2; c.MaxTCPConns = 3 })
	dial := func(src string) net.Conn {
		c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP(src)}, net.TCPAddrFromAddrPort(mustAddrPort(t, h.srv.Addr())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	works := func(c net.Conn) bool {
		q := rawQuery(1, "pornhub.com", typeA)
		c.Write(append([]byte{0, byte(len(q))}, q...))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := io.ReadFull(c, make([]byte, 2))
		return err == nil
	}
	a1, a2 := dial(srcEleves), dial(srcEleves)
	if !works(a1) || !works(a2) {
		t.Fatal("first two connections refused")
	}
	if works(dial(srcEleves)) {
		t.Error("third connection from one source accepted")
	}
	if !works(dial(srcPersonnels)) {
		t.Error("another source locked out")
	}
	if works(dial(srcInvites)) {
		t.Error("connection beyond the global limit accepted")
	}
	a1.Close()
	time.Sleep(100 * time.Millisecond)
	if !works(dial(srcEleves)) {
		t.Error("a closed connection's slot was not released")
	}
}

// smallRules compiles a policy made of custom lists only, blocking
// swapName when block is true.
func smallRules(t testing.TB, block bool) *rules.Ruleset {
	t.Helper()
	cats := []string{}
	if block {
		cats = []string{"interdit"}
	}
	p := &policy.Policy{
		Version:    1,
		Academie:   "test",
		Categories: []policy.Category{{ID: "interdit", NameFR: "Interdit", Usage: "black"}},
		Lists:      []policy.List{{ID: "interdit", Category: "interdit", Domains: []string{swapName}}},
		Profiles:   []policy.Profile{{ID: "p", Block: cats, BlockAnswer: "nxdomain"}},
		Schools: []policy.School{{UAI: demo.UAI, Name: "x", Zones: []policy.Zone{
			{Name: "pedagogique", CIDRs: []string{"127.0.0.0/8"}, Profile: "p"},
		}}},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	rs, _, err := rules.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

const swapName = "bascule.exemple-autorise.test"

func TestPolicySwapUnderLoad(t *testing.T) {
	for _, b := range []int{batchSize, 1} {
		t.Run("udp_batch="+itoa(b), func(t *testing.T) { testPolicySwap(t, b) })
	}
}

func testPolicySwap(t *testing.T, batch int) {
	h := newHarness(t, func(c *Config) { c.UDPSockets = 4; c.UDPBatch = batch })
	blocking, open := smallRules(t, true), smallRules(t, false)
	h.gen.Store(&generation.Generation{Rules: blocking, Serial: 1})
	var (
		stop    atomic.Bool
		swaps   atomic.Int32
		wg      sync.WaitGroup
		sent    atomic.Int64
		good    atomic.Int64
		blocked atomic.Int64
		failed  = make(chan error, 100)
	)
	wg.Add(1)
	go func() { // the sync agent: a new generation every millisecond
		defer wg.Done()
		for i := 2; !stop.Load(); i++ {
			rs := open
			if i%2 == 0 {
				rs = blocking
			}
			h.gen.Store(&generation.Generation{Rules: rs, Serial: uint64(i)})
			swaps.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	const clients, each = 8, 250
	var cw sync.WaitGroup
	for c := 0; c < clients; c++ {
		cw.Add(1)
		go func() {
			defer cw.Done()
			for i := 0; i < each; i++ {
				proto := "udp"
				if i%10 == 0 {
					proto = "tcp"
				}
				sent.Add(1)
				r, err := h.exchange(query{proto: proto, name: swapName, qtype: mdns.TypeA, edns: 1232})
				switch {
				case err != nil:
					failed <- err
					return
				case r.Rcode == mdns.RcodeNameError && ede(r) != nil && strings.Contains(ede(r).ExtraText, "interdit"):
					blocked.Add(1)
				case r.Rcode == mdns.RcodeSuccess && len(r.Answer) == 1:
				default:
					failed <- fmt.Errorf("answer of neither generation: %v", r)
					return
				}
				good.Add(1)
			}
		}()
	}
	cw.Wait()
	stop.Store(true)
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Error(err)
	}
	if good.Load() != sent.Load() || sent.Load() != clients*each {
		t.Errorf("%d queries sent, %d answered", sent.Load(), good.Load())
	}
	if swaps.Load() < 10 || blocked.Load() == 0 || blocked.Load() == good.Load() {
		t.Errorf("%d swaps, %d of %d answers blocked: the test did not exercise both generations", swaps.Load(), blocked.Load(), good.Load())
	}
	t.Logf("%d queries answered across %d policy swaps (%d blocked)", good.Load(), swaps.Load(), blocked.Load())
}

func TestNoPolicyRefuses(t *testing.T) {
	h := newHarness(t, nil)
	h.gen.Store(nil)
	r := h.ask(query{name: nameAllowed, qtype: mdns.TypeA, edns: 1232})
	if r.Rcode != mdns.RcodeRefused {
		t.Errorf("rcode %s without a policy, want REFUSED", mdns.RcodeToString[r.Rcode])
	}
	if h.auth.total() != 0 {
		t.Error("a query went upstream without a policy")
	}
}

func TestJournal(t *testing.T) {
	h := newHarness(t, nil)
	h.ask(query{name: "pornhub.com", qtype: mdns.TypeA})
	h.ask(query{src: srcPersonnels, name: nameAllowed, qtype: mdns.TypeAAAA, proto: "tcp"})
	h.ask(query{name: "www.google.fr", qtype: mdns.TypeA})
	h.ask(query{name: nameNX, qtype: mdns.TypeA})
	udpRaw(t, h.srv.Addr(), srcEleves, rawQuery(1, "x", 3)[:headerLen+2], 2*time.Second)
	recs := h.jr.Records()
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5: %+v", len(recs), recs)
	}
	for i, want := range []journal.Record{
		{Host: "pornhub.com", QType: "A", RCode: "NOERROR", Verdict: "block", Category: "adult"},
		{Host: nameAllowed, QType: "AAAA", RCode: "NOERROR", Verdict: "allow"},
		{Host: "www.google.fr", QType: "A", RCode: "NOERROR", Verdict: "allow"},
		{Host: nameNX, QType: "A", RCode: "NXDOMAIN", Verdict: "allow"},
		{Host: "", RCode: "FORMERR", Verdict: "block"},
	} {
		got := recs[i]
		if got.Host != want.Host || got.QType != want.QType && want.QType != "" || got.RCode != want.RCode || got.Verdict != want.Verdict || got.Category != want.Category {
			t.Errorf("record %d: %+v\nwant %+v", i, got, want)
		}
		if got.Stream != journal.Navigation || got.Proto != "dns" || got.UAI != demo.UAI || !got.Time.Equal(h.clock.Now()) {
			t.Errorf("record %d: stream %v proto %q uai %q time %v", i, got.Stream, got.Proto, got.UAI, got.Time)
		}
		if !got.Client.Addr().Is4() || got.Client.Port() == 0 {
			t.Errorf("record %d: client %v", i, got.Client)
		}
	}
	if recs[0].UpstreamLatency != 0 || recs[1].UpstreamLatency == 0 {
		t.Errorf("upstream latency: blocked %v, forwarded %v", recs[0].UpstreamLatency, recs[1].UpstreamLatency)
	}
	if recs[1].Client.Addr().String() != srcPersonnels {
		t.Errorf("client %v, want %s", recs[1].Client, srcPersonnels)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, nil)
	h.ask(query{name: "pornhub.com", qtype: mdns.TypeA})
	h.ask(query{name: nameAllowed, qtype: mdns.TypeA})
	h.ask(query{name: nameAllowed, qtype: mdns.TypeA})
	h.ask(query{name: "www.bing.com", qtype: mdns.TypeAAAA})
	h.ask(query{name: nameAllowed, qtype: mdns.TypeCAA})
	problems, err := promlint.NewWithMetricFamilies(mustGather(t, h.reg)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"A", "block"}, 1},
		{[]string{"A", "allow"}, 2},
		{[]string{"AAAA", "safesearch"}, 1},
		{[]string{"other", "allow"}, 1},
	} {
		fam := mustGather(t, h.reg)
		got := metricValue(fam, "vigie_dns_queries_total", tc.labels)
		if got != tc.want {
			t.Errorf("vigie_dns_queries_total%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(h.srv.m.cacheHits); got != 1 {
		t.Errorf("cache hits %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.srv.m.cacheMisses); got != 3 {
		t.Errorf("cache misses %v, want 3", got)
	}
	if n := testutil.CollectAndCount(h.reg, "vigie_dns_query_duration_seconds"); n != 1 {
		t.Errorf("duration histogram missing")
	}
	if got := testutil.ToFloat64(h.srv.m.upHealthy.WithLabelValues(h.auth.addr)); got != 1 {
		t.Errorf("upstream healthy gauge %v", got)
	}
}

func mustGather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	fam, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fam
}

// metricValue finds a counter by its label values in label-name order
// (qtype before verdict).
func metricValue(fams []*dto.MetricFamily, name string, labels []string) float64 {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for i, l := range m.GetLabel() {
				if i >= len(labels) || l.GetValue() != labels[i] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// TestWildcardListener listens on every address: answers must leave from
// the address each query was sent to, on IPv4 and IPv6.
func TestWildcardListener(t *testing.T) {
	for _, b := range []int{batchSize, 1} {
		t.Run("udp_batch="+itoa(b), func(t *testing.T) { testWildcard(t, b) })
	}
}

func testWildcard(t *testing.T, batch int) {
	h := newHarness(t, func(c *Config) { c.Listen = ":0"; c.UDPBatch = batch })
	_, port, _ := net.SplitHostPort(h.srv.Addr())
	targets := []string{"127.0.0.1", "127.0.0.2", "127.0.0.77"}
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		c.Close()
		targets = append(targets, "::1")
	} else if os.Getenv("CI") != "" {
		t.Errorf("no IPv6 loopback in CI: %v", err)
	}
	for _, dst := range targets {
		t.Run(dst, func(t *testing.T) {
			src := srcEleves
			if strings.Contains(dst, ":") {
				src = "::1"
			}
			// A connected socket accepts datagrams from dst only: an answer
			// from another source address would never be read.
			d := &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}
			c := &mdns.Client{Net: "udp", Timeout: 2 * time.Second, Dialer: d}
			m := new(mdns.Msg)
			m.SetQuestion("pornhub.com.", mdns.TypeA)
			r, _, err := c.Exchange(m, net.JoinHostPort(dst, port))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Answer) != 1 {
				t.Fatalf("answer %v", r.Answer)
			}
			tc := &mdns.Client{Net: "tcp", Timeout: 2 * time.Second}
			if _, _, err := tc.Exchange(m, net.JoinHostPort(dst, port)); err != nil {
				t.Fatalf("tcp: %v", err)
			}
		})
	}
}

// TestShutdownIsPrompt: a TCP client the server is serving, idle between
// queries, neither holds the shutdown for its idle timeout nor outlives it.
// The query proves the server accepted the connection and tracks it before
// the shutdown starts; the read after it proves the server closed it, long
// before the idle timeout would have.
func TestShutdownIsPrompt(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.TCPIdleTimeout = time.Minute })
	nc, err := net.Dial("tcp", h.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &mdns.Conn{Conn: nc}
	m := new(mdns.Msg)
	m.SetQuestion("pornhub.com.", mdns.TypeA)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	if r, err := c.ReadMsg(); err != nil || r.Id != m.Id {
		t.Fatalf("the TCP query before the shutdown: %v, %v", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an idle TCP client: %v", err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the idle TCP connection after the shutdown: read %v, want it closed by the server", err)
	}
}
