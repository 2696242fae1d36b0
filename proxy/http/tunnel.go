package httpproxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

var tunnelBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// tunnel relays bytes between a client and an origin until both sides are
// done or nothing moved either way for Timeouts.TunnelIdle. fromClient reads
// the client (it may first replay bytes already read, like a ClientHello);
// client and origin carry the deadlines. Bytes are counted into x.
func (p *Proxy) tunnel(x *exchange, client net.Conn, fromClient io.Reader, origin net.Conn) {
	g := p.m.tunnels[x.entry]
	g.Inc()
	defer g.Dec()
	t := &idleClock{idle: p.cfg.Timeouts.TunnelIdle, now: p.now}
	t.touch()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := t.pump(origin, fromClient, client, &x.toOrigin)
		endDirection(err, origin, client)
	}()
	err := t.pump(client, origin, origin, &x.toClient)
	endDirection(err, client, origin)
	<-done
	origin.Close()
}

// endDirection half-closes dst after a clean end of its source, so the
// other direction can finish; after an error it closes both to unblock it.
func endDirection(err error, dst, src net.Conn) {
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	src.Close()
}

// idleClock is the last time a byte moved in either direction of a tunnel.
type idleClock struct {
	idle time.Duration
	now  func() time.Time
	last atomic.Int64
}

func (t *idleClock) touch() { t.last.Store(t.now().UnixNano()) }

func (t *idleClock) idleFor() time.Duration {
	return t.now().Sub(time.Unix(0, t.last.Load()))
}

// pump copies src to dst until EOF (nil), an error, or the whole tunnel
// being idle. Deadlines are re-armed at most every idle/4, not per read.
func (t *idleClock) pump(dst net.Conn, src io.Reader, srcConn net.Conn, n *atomic.Int64) error {
	bp := tunnelBuffers.Get().(*[]byte)
	defer tunnelBuffers.Put(bp)
	buf := *bp
	var armed time.Time
	step := t.idle / 4
	for {
		now := t.now()
		if now.Sub(armed) > step {
			srcConn.SetReadDeadline(now.Add(t.idle))
			dst.SetWriteDeadline(now.Add(t.idle))
			armed = now
		}
		k, err := src.Read(buf)
		if k > 0 {
			t.touch()
			w, werr := dst.Write(buf[:k])
			n.Add(int64(w))
			if werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && t.idleFor() < t.idle {
				armed = time.Time{} // the other direction is alive: wait again
				continue
			}
			return err
		}
	}
}
