package dns

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg/sendmmsg call moves. Under
// load a socket holds many queries at once: reading and answering them in
// batches divides the system-call cost, the largest cost of a cached or
// blocked answer, by up to this much.
const batchSize = 32

// batch is a UDP socket's read and write buffers for recvmmsg/sendmmsg.
// One goroutine owns it at a time. A query that must wait for an upstream
// leaves the batch (its slot gets a fresh request) and hands the batch to
// a new goroutine, which goes on with the next queries: a slow upstream
// never holds the answers of its batch neighbours.
type batch struct {
	l    *udpListener
	rc   syscall.RawConn
	reqs [batchSize]*request
	// ready marks the slots whose answer is waiting for the next sendmmsg.
	ready [batchSize]bool
	n     int

	hdrs  [batchSize]unix.Mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6
	oobs  [batchSize][64]byte

	shdrs        [batchSize]unix.Mmsghdr
	siovs        [batchSize]unix.Iovec
	toSend, sent int

	err            error
	recvFn, sendFn func(fd uintptr) bool
}

func newBatch(l *udpListener) (*batch, error) {
	rc, err := l.conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batch{l: l, rc: rc}
	for i := range b.reqs {
		b.reqs[i] = l.takeRequest()
	}
	// Method values made once: handing a fresh closure to RawConn for
	// every call would allocate.
	b.recvFn, b.sendFn = b.recv, b.send
	return b, nil
}

func (l *udpListener) takeRequest() *request {
	r := l.s.pool.Get().(*request)
	r.tcp, r.udp, r.conn, r.batch = false, l, nil, nil
	return r
}

// startBatched starts the socket's reader in batch mode, or reports false
// (the plain loop is used then).
func (l *udpListener) startBatched() bool {
	b, err := newBatch(l)
	if err != nil {
		return false
	}
	l.s.wg.Add(1)
	go b.loop(0)
	return true
}

// read fills the batch with the datagrams waiting on the socket, waiting
// for at least one.
func (b *batch) read() error {
	for i := range b.hdrs {
		r := b.reqs[i]
		b.iovs[i].Base = &r.in[0]
		b.iovs[i].SetLen(len(r.in))
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Control = &b.oobs[i][0]
		h.SetControllen(len(b.oobs[i]))
		h.Flags = 0
		b.hdrs[i].Len = 0
		b.ready[i] = false
	}
	b.n = 0
	if err := b.rc.Read(b.recvFn); err != nil {
		return err
	}
	return b.err
}

func (b *batch) recv(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.l.s.cfg.UDPBatch), unix.MSG_DONTWAIT, 0, 0)
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return false
	case e != 0:
		b.err = e
	default:
		b.n, b.err = int(n), nil
	}
	return true
}

// flush sends the answers of the ready slots.
func (b *batch) flush() {
	b.toSend, b.sent = 0, 0
	for i := 0; i < b.n; i++ {
		r := b.reqs[i]
		if !b.ready[i] || len(r.out) == 0 {
			continue
		}
		k := b.toSend
		b.siovs[k].Base = &r.out[0]
		b.siovs[k].SetLen(len(r.out))
		h := &b.shdrs[k].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = b.hdrs[i].Hdr.Namelen
		h.Iov = &b.siovs[k]
		h.SetIovlen(1)
		h.Control, h.Controllen = nil, 0
		if b.l.pktinfo {
			if oob := replyPktinfo(r.oob); len(oob) > 0 {
				h.Control = &oob[0]
				h.SetControllen(len(oob))
			}
		}
		b.toSend++
	}
	for b.sent < b.toSend {
		if err := b.rc.Write(b.sendFn); err != nil {
			return
		}
	}
}

func (b *batch) send(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.shdrs[b.sent])), uintptr(b.toSend-b.sent), unix.MSG_DONTWAIT, 0, 0)
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return false
	case e != 0:
		// The first message failed (a vanished client, say): skip it.
		b.sent++
	default:
		b.sent += int(n)
	}
	return true
}

// loop serves the batch from slot next on, then reads the next batches.
func (b *batch) loop(next int) {
	l := b.l
	defer l.s.wg.Done()
	for {
		if next >= b.n {
			b.flush()
			if err := b.read(); err != nil {
				if errors.Is(err, net.ErrClosed) || errors.Is(err, unix.EBADF) {
					for _, r := range b.reqs {
						l.s.pool.Put(r)
					}
					return
				}
				continue
			}
			next = 0
		}
		for ; next < b.n; next++ {
			i := next
			h := &b.hdrs[i]
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				l.s.m.malformed.WithLabelValues("drop").Inc()
				continue
			}
			r := b.reqs[i]
			r.pkt = r.in[:h.Len]
			r.client = sockaddrPort(&b.names[i])
			r.oob = b.oobs[i][:h.Hdr.Controllen]
			r.batch, r.slot = b, i
			l.s.serve(r)
			if r.detached {
				// The batch went on without this query (handOff): answer
				// it was sent directly; only the request is left to free.
				l.s.pool.Put(r)
				return
			}
		}
	}
}

// handOff takes r out of its batch and gives the batch to a new goroutine,
// which serves the rest. r keeps its own copy of the control data to send
// its answer later.
func (b *batch) handOff(r *request) {
	b.reqs[r.slot] = b.l.takeRequest()
	b.ready[r.slot] = false
	r.oob = append(r.oobBuf[:0], r.oob...)
	r.batch = nil
	b.l.s.wg.Add(1)
	go b.loop(r.slot + 1)
}

// sockaddrPort reads the address recvmmsg wrote.
func sockaddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := func(p *uint16) uint16 {
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(&sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port(&sa.Port))
	}
	return netip.AddrPort{}
}
