package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Dialer opens upstream connections (net.Dialer satisfies it). Tests and
// the lab inject theirs.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// upstreams forwards queries to the configured resolvers in order of
// preference, skipping those marked down, with a per-attempt timeout.
type upstreams struct {
	list    []*upstream
	timeout time.Duration
	dial    Dialer
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	// expiry bounds a socket's life in time and in queries: a socket kept
	// for ever keeps one source port for ever, which an off-path attacker
	// spoofing answers only has to find once (CoreDNS forward expires its
	// connections after 10 s for the same reason).
	expiry sockExpiry
}

// sockExpiry is when an upstream UDP socket is replaced by a new one, on
// a new source port: after maxAge, or after maxQueries queries.
type sockExpiry struct {
	maxAge     time.Duration
	maxQueries int64
}

// upstream is one resolver: a few persistent connected UDP sockets (a new
// socket per query costs a syscall pair and an ephemeral port), TCP opened
// on demand for truncated answers, and a health state.
type upstream struct {
	addr string
	// socks are dialed at start and, for an upstream that could not be
	// dialed then (no route yet), again when it is next tried.
	socks   atomic.Pointer[[]*upSock]
	dialMu  sync.Mutex
	nsocks  int
	closing bool
	next    atomic.Uint32
	// fails counts consecutive failures; downUntil (unix nanoseconds) is
	// when a resolver marked down is tried again at normal priority.
	fails     atomic.Int32
	downUntil atomic.Int64
	backoff   atomic.Int64
}

const (
	// failThreshold consecutive failures mark an upstream down.
	failThreshold = 3
	minBackoff    = time.Second
	maxBackoff    = 30 * time.Second
	// maxAnswer is the largest upstream answer read (the DNS maximum).
	maxAnswer = 65535
)

// upSock is one persistent UDP socket to an upstream. Answers are matched
// to waiting queries by ID; the connected socket only accepts datagrams
// from the upstream's address, and prepareAnswer checks the question.
type upSock struct {
	born    time.Time    // by the server's clock
	queries atomic.Int64 // sent on it, for the expiry
	conn    net.Conn
	mu      sync.Mutex
	pending map[uint16]chan []byte
	rng     *rand.Rand
	closed  bool
}

func newUpstreams(ctx context.Context, addrs []string, socks int, timeout time.Duration, expiry sockExpiry, dial Dialer, now func() time.Time, log *slog.Logger, m *metrics) (*upstreams, error) {
	u := &upstreams{timeout: timeout, dial: dial, log: log, m: m, now: now, expiry: expiry}
	for _, a := range addrs {
		up := &upstream{addr: a, nsocks: socks}
		up.backoff.Store(int64(minBackoff))
		u.list = append(u.list, up)
		m.addUpstream(a)
		// An upstream that cannot be dialed (an IPv6 resolver while the
		// IPv6 route is down) must not stop the edge: it is marked down
		// and dialed again when it is next tried.
		if _, err := u.connect(ctx, up); err != nil {
			log.Warn("dns upstream unreachable at start: marked down, retried", "upstream", a, "err", err)
			up.fails.Store(failThreshold - 1)
			u.failed(up)
		}
	}
	return u, nil
}

// connect returns the upstream's sockets, dialing them if they are not.
func (u *upstreams) connect(ctx context.Context, up *upstream) ([]*upSock, error) {
	if p := up.socks.Load(); p != nil {
		return *p, nil
	}
	up.dialMu.Lock()
	defer up.dialMu.Unlock()
	if p := up.socks.Load(); p != nil {
		return *p, nil
	}
	if up.closing {
		return nil, net.ErrClosed
	}
	var socks []*upSock
	for range up.nsocks {
		s, err := u.dialSock(ctx, up)
		if err != nil {
			for _, s := range socks {
				s.conn.Close()
			}
			return nil, err
		}
		socks = append(socks, s)
	}
	up.socks.Store(&socks)
	return socks, nil
}

func (u *upstreams) dialSock(ctx context.Context, up *upstream) (*upSock, error) {
	c, err := u.dial.DialContext(ctx, "udp", up.addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	s := &upSock{born: u.now(), conn: c, pending: make(map[uint16]chan []byte), rng: rand.New(rand.NewChaCha8(seed()))}
	go s.readLoop()
	return s, nil
}

// expired reports whether s has served its time or its queries.
func (u *upstreams) expired(s *upSock) bool {
	return (u.expiry.maxQueries > 0 && s.queries.Load() >= u.expiry.maxQueries) ||
		(u.expiry.maxAge > 0 && u.now().Sub(s.born) >= u.expiry.maxAge)
}

// renew replaces the expired socket at slot i with a new one. The old one
// is closed once the queries already sent on it have had their timeout to
// be answered; a goroutine that picked it just before the swap is among
// them. When the new socket cannot be dialed the old one stays: a source
// port kept a little longer is better than no upstream.
func (u *upstreams) renew(ctx context.Context, up *upstream, i int, old *upSock) {
	up.dialMu.Lock()
	defer up.dialMu.Unlock()
	p := up.socks.Load()
	if up.closing || p == nil || (*p)[i] != old {
		return // closing, or another query renewed it first
	}
	s, err := u.dialSock(ctx, up)
	if err != nil {
		u.log.Debug("dns upstream socket not renewed", "upstream", up.addr, "err", err)
		return
	}
	socks := append([]*upSock(nil), (*p)...)
	socks[i] = s
	up.socks.Store(&socks)
	u.m.upRenewed.Inc()
	time.AfterFunc(u.timeout+time.Second, func() {
		old.mu.Lock()
		old.closed = true
		old.mu.Unlock()
		old.conn.Close()
	})
}

func seed() (s [32]byte) {
	for i := 0; i < len(s); i += 8 {
		binary.LittleEndian.PutUint64(s[i:], rand.Uint64())
	}
	return s
}

func (u *upstreams) close() {
	for _, up := range u.list {
		up.dialMu.Lock()
		up.closing = true
		up.dialMu.Unlock()
		p := up.socks.Load()
		if p == nil {
			continue
		}
		for _, s := range *p {
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			s.conn.Close()
		}
	}
}

func (s *upSock) readLoop() {
	buf := make([]byte, maxAnswer)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			if !closed {
				// ICMP port unreachable surfaces here as ECONNREFUSED: fail
				// the waiting queries now rather than at their timeout.
				for id, ch := range s.pending {
					delete(s.pending, id)
					close(ch)
				}
			}
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				time.Sleep(10 * time.Millisecond) // never spin on a persistent error
			}
			continue
		}
		if n < headerLen {
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		s.mu.Lock()
		ch, ok := s.pending[id]
		if ok {
			delete(s.pending, id)
		}
		s.mu.Unlock()
		if ok {
			ch <- append([]byte(nil), buf[:n]...)
		}
	}
}

// exchange sends query (its ID is overwritten) and waits for the answer.
func (s *upSock) exchange(ctx context.Context, query []byte, timeout time.Duration) ([]byte, error) {
	ch := make(chan []byte, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	var id uint16
	for {
		id = uint16(s.rng.Uint32())
		if _, busy := s.pending[id]; !busy {
			break
		}
	}
	s.pending[id] = ch
	s.mu.Unlock()
	put16(query, id)
	forget := func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}
	if _, err := s.conn.Write(query); err != nil {
		forget()
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, syscall.ECONNREFUSED
		}
		return resp, nil
	case <-t.C:
		forget()
		return nil, errTimeout
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

var errTimeout = errors.New("timeout")

// exchangeTCP asks over a fresh TCP connection (answers too large for UDP).
func (u *upstreams) exchangeTCP(ctx context.Context, up *upstream, query []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	c, err := u.dial.DialContext(ctx, "tcp", up.addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	put16(query, uint16(rand.Uint32()))
	msg := make([]byte, 2+len(query))
	put16(msg, uint16(len(query)))
	copy(msg[2:], query)
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		return nil, err
	}
	if len(resp) < 2 || binary.BigEndian.Uint16(resp) != binary.BigEndian.Uint16(query) {
		return nil, errors.New("answer ID mismatch")
	}
	return resp, nil
}

// buildQuery writes the query sent upstream: recursion desired, CD as the
// client asked, EDNS0 with the clamped buffer and the client's DO bit, and
// nothing else from the client (its Client Subnet option never leaves).
func buildQuery(b []byte, name string, qtype uint16, do, cd bool) []byte {
	flags := uint16(flagRD)
	if cd {
		flags |= flagCD
	}
	b = appendHeader(b[:0], 0, flags, 1, 0, 0, 1)
	b = appendName(b, name)
	b = append(b, byte(qtype>>8), byte(qtype), 0, classIN)
	return appendOPT(b, do, 0, 0, nil)
}

// resolve asks the upstreams in turn until one answers usefully. A SERVFAIL
// or REFUSED answer moves on to the next resolver but is returned if none
// does better; only timeouts and network errors count against health.
func (u *upstreams) resolve(ctx context.Context, name string, qtype uint16, do, cd bool, p ttlPolicy) (*answer, error) {
	query := buildQuery(make([]byte, 0, 64+len(name)), name, qtype, do, cd)
	var last *answer
	var lastErr error
	now := time.Now().UnixNano()
	tried := 0
	// Healthy resolvers in the configured order; when all of them failed,
	// the one marked down longest ago, once: it may be back, and trying
	// every dead resolver would make the client wait for each timeout.
	// On the stack for the usual two or three resolvers: this runs on
	// every cache miss.
	var buf [4]*upstream
	order := buf[:0]
	var retry *upstream
	for _, up := range u.list {
		if up.downUntil.Load() <= now {
			order = append(order, up)
		} else if retry == nil || up.downUntil.Load() < retry.downUntil.Load() {
			retry = up
		}
	}
	if retry != nil {
		order = append(order, retry)
	}
	for _, up := range order {
		tried++
		start := time.Now()
		a, err := u.try(ctx, up, query, name, qtype, p)
		took := time.Since(start)
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", up.addr, err)
			u.m.upstreamError(up.addr, err)
			if ctx.Err() != nil {
				return nil, lastErr
			}
			if isNetworkFailure(err) {
				u.failed(up)
			}
			continue
		}
		u.m.upDuration.WithLabelValues(up.addr).Observe(took.Seconds())
		u.healthy(up)
		if a.rcode == rcodeServFail || a.rcode == rcodeRefused {
			u.m.upErrors.WithLabelValues(up.addr, "rcode").Inc()
			last = a
			continue
		}
		return a, nil
	}
	if last != nil {
		return last, nil
	}
	if tried == 0 {
		return nil, errors.New("no upstream configured")
	}
	return nil, lastErr
}

// try asks one upstream over UDP, and again over TCP when the answer is
// truncated.
func (u *upstreams) try(ctx context.Context, up *upstream, query []byte, name string, qtype uint16, p ttlPolicy) (*answer, error) {
	socks, err := u.connect(ctx, up)
	if err != nil {
		return nil, err
	}
	i := int(up.next.Add(1) % uint32(len(socks)))
	s := socks[i]
	if u.expired(s) {
		u.renew(ctx, up, i, s)
		if p := up.socks.Load(); p != nil && len(*p) == len(socks) {
			s = (*p)[i]
		}
	}
	s.queries.Add(1)
	resp, err := s.exchange(ctx, query, u.timeout)
	if err != nil {
		return nil, err
	}
	a, err := prepareAnswer(resp, name, qtype, p)
	if errors.Is(err, errTruncated) {
		if resp, err = u.exchangeTCP(ctx, up, query); err != nil {
			return nil, fmt.Errorf("tcp retry: %w", err)
		}
		a, err = prepareAnswer(resp, name, qtype, p)
	}
	return a, err
}

func isNetworkFailure(err error) bool {
	var ne net.Error
	return errors.Is(err, errTimeout) || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ne)
}

func (u *upstreams) failed(up *upstream) {
	if up.fails.Add(1) < failThreshold {
		return
	}
	b := time.Duration(up.backoff.Load())
	if up.downUntil.Load() < time.Now().UnixNano() {
		u.log.Warn("dns upstream marked down", "upstream", up.addr, "retry_in", b)
	}
	up.downUntil.Store(time.Now().Add(b).UnixNano())
	up.backoff.Store(int64(min(2*b, maxBackoff)))
	u.m.upHealthy.WithLabelValues(up.addr).Set(0)
}

func (u *upstreams) healthy(up *upstream) {
	if up.fails.Swap(0) >= failThreshold {
		u.log.Info("dns upstream answering again", "upstream", up.addr)
	}
	if up.downUntil.Load() != 0 {
		up.downUntil.Store(0)
		up.backoff.Store(int64(minBackoff))
		u.m.upHealthy.WithLabelValues(up.addr).Set(1)
	}
}

// probe asks the upstreams marked down for the root's NS records every
// interval, so that a resolver coming back is used again without a client
// query paying its timeout first.
func (u *upstreams) probe(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, up := range u.list {
			if up.downUntil.Load() == 0 {
				continue
			}
			q := buildQuery(nil, "", typeNS, false, false)
			if _, err := u.try(ctx, up, q, "", typeNS, ttlPolicy{}); err == nil {
				u.healthy(up)
			}
		}
	}
}
