package main

import (
	"context"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// echo answers every datagram with itself, the QR bit set: a DNS answer
// with no records, which dnsperf counts like any other. It does nothing a
// server could skip, so its CPU per query is the floor of this machine:
// the kernel's receive and send of one datagram each way, through Go's
// poller like the filter's own loop, one at a time (batch 1) or in
// recvmmsg/sendmmsg batches as the filter reads and answers them.
func echo(ctx context.Context, listen string, batch int) error {
	c, err := net.ListenPacket("udp4", listen)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { c.Close() })
	uc := c.(*net.UDPConn)
	if batch <= 1 {
		buf := make([]byte, 4096)
		for {
			n, from, err := uc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return ignoreClosed(ctx, err)
			}
			if n < 12 {
				continue
			}
			buf[2] |= 0x80
			if _, err := uc.WriteToUDPAddrPort(buf[:n], from); err != nil {
				return ignoreClosed(ctx, err)
			}
		}
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	e := &echoBatch{rc: rc, size: batch}
	e.hdrs = make([]unix.Mmsghdr, batch)
	e.iovs = make([]unix.Iovec, batch)
	e.names = make([]unix.RawSockaddrInet6, batch)
	e.bufs = make([][4096]byte, batch)
	e.recvFn, e.sendFn = e.recv, e.send
	for {
		if err := e.round(); err != nil {
			return ignoreClosed(ctx, err)
		}
	}
}

// echoBatch is the batched loop's buffers, set up once.
type echoBatch struct {
	rc             syscall.RawConn
	size, n, sent  int
	hdrs           []unix.Mmsghdr
	iovs           []unix.Iovec
	names          []unix.RawSockaddrInet6
	bufs           [][4096]byte
	err            error
	recvFn, sendFn func(fd uintptr) bool
}

// round reads a batch and sends it back.
func (e *echoBatch) round() error {
	for i := range e.hdrs {
		e.iovs[i].Base = &e.bufs[i][0]
		e.iovs[i].SetLen(len(e.bufs[i]))
		h := &e.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&e.names[i]))
		h.Namelen = uint32(unsafe.Sizeof(e.names[i]))
		h.Iov = &e.iovs[i]
		h.SetIovlen(1)
		e.hdrs[i].Len = 0
	}
	if err := e.rc.Read(e.recvFn); err != nil {
		return err
	}
	if e.err != nil {
		return e.err
	}
	for i := range e.hdrs[:e.n] {
		// recvmmsg set each length; sendmmsg sends that much back.
		e.iovs[i].SetLen(int(e.hdrs[i].Len))
		e.bufs[i][2] |= 0x80
	}
	for e.sent = 0; e.sent < e.n; {
		if err := e.rc.Write(e.sendFn); err != nil {
			return err
		}
	}
	return nil
}

func (e *echoBatch) recv(fd uintptr) bool {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&e.hdrs[0])), uintptr(e.size), unix.MSG_DONTWAIT, 0, 0)
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
		return false
	case errno != 0:
		e.n, e.err = 0, errno
	default:
		e.n, e.err = int(n), nil
	}
	return true
}

func (e *echoBatch) send(fd uintptr) bool {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&e.hdrs[e.sent])), uintptr(e.n-e.sent), unix.MSG_DONTWAIT, 0, 0)
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
		return false
	case errno != 0:
		e.sent++ // a vanished client: skip its answer
	default:
		e.sent += int(n)
	}
	return true
}

func ignoreClosed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
