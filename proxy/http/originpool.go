package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The relay's own keep-alive connections to plain-HTTP origins.
//
// net/http's Transport runs two goroutines per origin connection and
// hands every request and its answer between them and the caller over
// channels: on the edge's two cores that hand-off costs about as much CPU
// as the proxy's own work on a small page. A GET or HEAD without a body
// (nearly all of a school's plain-HTTP traffic) needs none of it: the
// relay writes the request and reads the answer on the handler's own
// goroutine, over a connection kept here. Every other request (a body, an
// upgrade, https through the explicit proxy, interception) keeps the
// Transport.

const (
	// originIdleTimeout closes a kept connection idle for that long, as
	// the Transport did.
	originIdleTimeout = 90 * time.Second
	// maxResponseHead bounds an origin's response head (each 1xx's too).
	maxResponseHead = 256 << 10
	// max1xx is how many informational answers an origin may send before
	// its final one (net/http's limit).
	max1xx = 5
	// Buffers of a kept connection: the head and a small body fit in one
	// read; larger bodies are read straight into the relay's copy buffer.
	originReadBuffer  = 16 << 10
	originWriteBuffer = 4 << 10
)

var (
	errHeadTooLarge = errors.New("http: origin's response head exceeds 256 KiB")
	// errNoAnswer: not one byte of an answer came back. On a connection
	// that was kept, the origin most likely closed it while it was idle.
	errNoAnswer  = errors.New("http: origin closed the connection before answering")
	aLongTimeAgo = time.Unix(1, 0)
)

// pooled says whether r, prepared for its origin, goes through the
// proxy's own origin connections: a plain-HTTP GET or HEAD without a body
// or an upgrade, whose destination the front handler checked and pinned
// (x.dest, which r.URL.Host names).
func pooled(r *http.Request, x *exchange) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 && len(r.TransferEncoding) == 0 &&
		r.URL.Scheme == "http" && x.dest.IsValid() && r.Header["Upgrade"] == nil
}

// fetch sends r to the origin at ap over a kept connection, or a new one,
// and returns its answer, whose body gives the connection back when
// closed after being read to the end. ap is checked for the device
// first (checkDest), whether a kept connection is used or one is dialed:
// a connection the pool holds for an address was made for some device,
// perhaps one allowed there by a flow. A kept connection that fails
// before one byte of the answer is tried once more on a new connection
// (the request has no body and is idempotent); nothing else is retried.
func (p *Proxy) fetch(r *http.Request, ap netip.AddrPort) (*http.Response, error) {
	ctx := r.Context()
	if err := p.checkDest(clientOf(ctx), ap); err != nil {
		return nil, err
	}
	if oc := p.origins.get(ap, p.now()); oc != nil {
		resp, err := p.send(oc, r)
		if err == nil || !errors.Is(err, errNoAnswer) || ctx.Err() != nil {
			return resp, err
		}
		p.log.Debug("kept origin connection failed, retrying on a new one", "dest", ap, "err", err)
	}
	oc, err := p.dialOrigin(ctx, ap)
	if err != nil {
		return nil, err
	}
	return p.send(oc, r)
}

// dialOrigin opens a new connection to ap, already checked.
func (p *Proxy) dialOrigin(ctx context.Context, ap netip.AddrPort) (*originConn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeouts.Dial)
	defer cancel()
	nc, err := p.dial(ctx, "tcp", ap.String())
	if err != nil {
		return nil, err
	}
	oc := &originConn{nc: nc, dest: ap, headRoom: -1}
	oc.br = bufio.NewReaderSize(oc, originReadBuffer)
	oc.bw = bufio.NewWriterSize(nc, originWriteBuffer)
	return oc, nil
}

// send writes r on oc and reads the head of its answer, within the
// response-header timeout, and gives up when the client goes away. On
// error oc is closed; the error wraps errNoAnswer when no byte came back.
func (p *Proxy) send(oc *originConn, r *http.Request) (*http.Response, error) {
	oc.nc.SetDeadline(time.Now().Add(p.cfg.Timeouts.ResponseHeader))
	stop := context.AfterFunc(r.Context(), oc.abort)
	fail := func(err error) (*http.Response, error) {
		stop()
		oc.close()
		return nil, err
	}
	err := r.Write(oc.bw)
	if err == nil {
		err = oc.bw.Flush()
	}
	if err == nil {
		_, err = oc.br.Peek(1)
	}
	if err != nil {
		if !isTimeout(err) {
			err = fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		return fail(err)
	}
	resp, err := oc.readHead(r)
	if err != nil {
		return fail(err)
	}
	oc.nc.SetReadDeadline(time.Time{})
	b := &originBody{body: resp.Body, oc: oc, p: p, stop: stop, keep: !resp.Close && !r.Close}
	if resp.Body == http.NoBody {
		// HEAD, 204, 304: the connection is free already.
		b.eof = true
		b.Close()
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// readHead reads the head of the final answer to r, skipping
// informational ones (103 Early Hints and the like are not relayed, as
// with the Transport). A 101 is refused: no upgrade goes through the pool.
func (oc *originConn) readHead(r *http.Request) (*http.Response, error) {
	for n1xx := 0; ; n1xx++ {
		oc.headRoom = maxResponseHead
		resp, err := http.ReadResponse(oc.br, r)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("http: origin switched protocols on a request without upgrade")
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			if n1xx >= max1xx {
				return nil, errors.New("http: too many informational answers from the origin")
			}
			continue
		}
		oc.headRoom = -1
		return resp, nil
	}
}

// release ends oc's exchange: kept when keep says the connection may
// serve another request, closed otherwise.
func (p *Proxy) release(oc *originConn, stop func() bool, keep bool) {
	// stop fails when the client went away and the abort ran or is
	// running: the connection's deadlines are then not ours to trust.
	if !stop() || !keep || oc.br.Buffered() > 0 {
		// Bytes past the end of the answer: the origin does not speak
		// HTTP/1.1 as we read it; never read the next answer from them.
		oc.close()
		return
	}
	p.origins.put(oc, p.now())
}

// originBody is the body of an answer read over a kept connection.
type originBody struct {
	body io.ReadCloser
	oc   *originConn
	p    *Proxy
	stop func() bool
	// keep: neither side asked to close the connection after this answer.
	keep bool
	// eof: the body was read to its end (and its trailers, if chunked).
	eof, closed bool
}

func (b *originBody) Read(buf []byte) (int, error) {
	if b.closed {
		return 0, net.ErrClosed
	}
	n, err := b.body.Read(buf)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close gives the connection back when the body was read to its end and
// closes it otherwise (never draining the rest: it may be long or slow).
func (b *originBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.p.release(b.oc, b.stop, b.keep && b.eof)
	return nil
}

// originConn is one connection to an origin, kept between requests.
type originConn struct {
	nc   net.Conn
	dest netip.AddrPort
	br   *bufio.Reader // reads through Read, below
	bw   *bufio.Writer
	// headRoom is what the head being read may still take, negative
	// while a body is read.
	headRoom int
	// idleSince, older and newer belong to the pool while it holds oc.
	idleSince    time.Time
	older, newer *originConn
}

// Read is the buffered reader's source, which bounds response heads.
func (oc *originConn) Read(b []byte) (int, error) {
	if oc.headRoom >= 0 {
		if oc.headRoom == 0 {
			return 0, errHeadTooLarge
		}
		b = b[:min(len(b), oc.headRoom)]
	}
	n, err := oc.nc.Read(b)
	if oc.headRoom >= 0 {
		oc.headRoom -= n
	}
	return n, err
}

// abort stops a read or write in progress: the client went away.
func (oc *originConn) abort() { oc.nc.SetDeadline(aLongTimeAgo) }

func (oc *originConn) close() { oc.nc.Close() }

// originPool holds idle connections by origin address and port (never a
// name: the front handlers pinned and checked the address), the most
// recent first for reuse, at most perOrigin per origin and max in all
// (the least recently used goes first), each closed once idle for
// timeout.
type originPool struct {
	perOrigin, max int
	timeout        time.Duration
	now            func() time.Time

	mu   sync.Mutex
	idle map[netip.AddrPort][]*originConn // per origin, oldest first
	// oldest and newest end the list of every idle connection, by the
	// time it was put back.
	oldest, newest *originConn
	n              int
	sweep          *time.Timer
	sweeping       bool
	closed         bool
}

func newOriginPool(perOrigin, max int, timeout time.Duration, now func() time.Time) *originPool {
	return &originPool{perOrigin: perOrigin, max: max, timeout: timeout, now: now, idle: map[netip.AddrPort][]*originConn{}}
}

// get takes the most recently kept connection to ap, nil when none is
// fresh enough.
func (op *originPool) get(ap netip.AddrPort, now time.Time) *originConn {
	op.mu.Lock()
	s := op.idle[ap]
	if len(s) == 0 {
		op.mu.Unlock()
		return nil
	}
	oc := s[len(s)-1]
	s[len(s)-1] = nil
	if len(s) == 1 {
		delete(op.idle, ap)
	} else {
		op.idle[ap] = s[:len(s)-1]
	}
	op.unlink(oc)
	op.mu.Unlock()
	if now.Sub(oc.idleSince) >= op.timeout {
		// Expired (the sweep had not run yet); so are the older ones,
		// which the sweep takes.
		oc.close()
		return nil
	}
	return oc
}

// put keeps oc for its origin, or closes it when the pool is closed or
// the origin has perOrigin kept already.
func (op *originPool) put(oc *originConn, now time.Time) {
	oc.idleSince = now
	op.mu.Lock()
	if op.closed || len(op.idle[oc.dest]) >= op.perOrigin {
		op.mu.Unlock()
		oc.close()
		return
	}
	var evicted *originConn
	if op.n >= op.max {
		evicted = op.oldest
		op.remove(evicted)
	}
	op.idle[oc.dest] = append(op.idle[oc.dest], oc)
	op.link(oc)
	if !op.sweeping {
		op.sweeping = true
		if op.sweep == nil {
			op.sweep = time.AfterFunc(op.timeout, op.sweepIdle)
		} else {
			op.sweep.Reset(op.timeout)
		}
	}
	op.mu.Unlock()
	if evicted != nil {
		evicted.close()
	}
}

// sweepIdle closes the connections idle for timeout, and comes back when
// the next one will be.
func (op *originPool) sweepIdle() {
	now := op.now()
	var stale []*originConn
	op.mu.Lock()
	for oc := op.oldest; oc != nil && now.Sub(oc.idleSince) >= op.timeout; oc = op.oldest {
		op.remove(oc)
		stale = append(stale, oc)
	}
	if op.oldest == nil || op.closed {
		op.sweeping = false
	} else {
		op.sweep.Reset(op.timeout - now.Sub(op.oldest.idleSince))
	}
	op.mu.Unlock()
	for _, oc := range stale {
		oc.close()
	}
}

// close closes every idle connection; those in use are closed when
// their answer ends.
func (op *originPool) close() {
	op.mu.Lock()
	op.closed = true
	var all []*originConn
	for oc := op.oldest; oc != nil; oc = op.oldest {
		op.remove(oc)
		all = append(all, oc)
	}
	if op.sweep != nil {
		op.sweep.Stop()
	}
	op.mu.Unlock()
	for _, oc := range all {
		oc.close()
	}
}

// remove takes oc, which the pool holds, out of its origin's list and
// the list of all. op.mu is held.
func (op *originPool) remove(oc *originConn) {
	s := op.idle[oc.dest]
	if i := slices.Index(s, oc); i >= 0 {
		s = slices.Delete(s, i, i+1)
	}
	if len(s) == 0 {
		delete(op.idle, oc.dest)
	} else {
		op.idle[oc.dest] = s
	}
	op.unlink(oc)
}

func (op *originPool) link(oc *originConn) {
	oc.older, oc.newer = op.newest, nil
	if op.newest != nil {
		op.newest.newer = oc
	} else {
		op.oldest = oc
	}
	op.newest = oc
	op.n++
}

func (op *originPool) unlink(oc *originConn) {
	if oc.older != nil {
		oc.older.newer = oc.newer
	} else {
		op.oldest = oc.newer
	}
	if oc.newer != nil {
		oc.newer.older = oc.older
	} else {
		op.newest = oc.older
	}
	oc.older, oc.newer = nil, nil
	op.n--
}

// copyBuffers are the relay's body copy buffers: 64 KiB takes a 100 KiB
// page in two reads and two writes.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// writerOnly hides a ResponseWriter's ReadFrom, so that io.CopyBuffer
// uses the relay's buffer.
type writerOnly struct{ io.Writer }
