package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpListener is one SO_REUSEPORT UDP socket. One goroutine reads it and
// runs the whole chain for each query: cached and blocked names never wait,
// so one reader per socket (and one socket per core) is the fastest shape.
// A query that must wait for an upstream first hands the socket to a new
// reader (handOff) and, once answered, rejoins if the socket has no reader,
// else exits: a slow upstream never stalls the answers that need none.
type udpListener struct {
	s    *Server
	conn *net.UDPConn
	// pktinfo is set on wildcard sockets: the destination address of each
	// query is read and used as the source of its answer, so that a
	// gateway with several addresses answers from the one that was asked.
	pktinfo bool
	readers atomic.Int32
}

func (l *udpListener) start() {
	l.readers.Add(1)
	l.s.wg.Add(1)
	go l.loop()
}

func (l *udpListener) handOff() {
	if l.readers.Add(-1) <= 0 {
		l.start()
	}
}

// rejoin makes the calling goroutine the socket's reader again if it has
// none.
func (l *udpListener) rejoin() bool {
	for {
		n := l.readers.Load()
		if n >= 1 {
			return false
		}
		if l.readers.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *udpListener) loop() {
	defer l.s.wg.Done()
	r := l.s.pool.Get().(*request)
	defer l.s.pool.Put(r)
	r.tcp, r.udp, r.batch = false, l, nil
	var oob [128]byte
	for {
		n, oobn, flags, addr, err := l.conn.ReadMsgUDPAddrPort(r.in, oob[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.readers.Add(-1)
				return
			}
			// ECONNREFUSED and the like from a previous answer's ICMP, or
			// ENOBUFS: the socket is fine, read on (pausing, never spinning).
			time.Sleep(time.Millisecond)
			continue
		}
		if flags&syscall.MSG_TRUNC != 0 {
			l.s.m.malformed.WithLabelValues("drop").Inc()
			continue
		}
		r.pkt, r.client, r.oob = r.in[:n], addr, oob[:oobn]
		l.s.serve(r)
		if r.detached && !l.rejoin() {
			return
		}
	}
}

// send writes the rendered answer to the client.
func (s *Server) send(r *request) {
	if len(r.out) == 0 || r.internal {
		return
	}
	if r.tcp {
		r.tcpWrite()
		return
	}
	if r.batch != nil {
		r.batch.ready[r.slot] = true
		return
	}
	var oob []byte
	if r.udp.pktinfo {
		oob = replyPktinfo(r.oob)
	}
	if _, _, err := r.udp.conn.WriteMsgUDPAddrPort(r.out, oob, r.client); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("dns: write answer", "client", r.client, "err", err)
	}
}

// replyPktinfo turns the control data of a received datagram into that of
// its answer: IPV6_PKTINFO is reused as is (address and interface), the
// IPv4 IP_PKTINFO gets the destination address as the source to use.
func replyPktinfo(oob []byte) []byte {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return nil
		}
		data := oob[unix.CmsgLen(0):l]
		if h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= 12 {
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
			clear(data[0:4])
			copy(data[4:8], data[8:12])
			return oob[:l]
		}
		if h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO {
			return oob[:l]
		}
		oob = oob[unix.CmsgSpace(l-unix.CmsgLen(0)):]
	}
	return nil
}

// listen binds every UDP socket and the TCP listener(s) of cfg.Listen, and
// starts serving them.
func (s *Server) listen() error {
	host, port, _ := net.SplitHostPort(s.cfg.Listen)
	var err error
	for attempt := 0; ; attempt++ {
		err = s.bind(host, port)
		if err == nil {
			break
		}
		for _, l := range s.udp {
			l.conn.Close()
		}
		for _, ln := range s.tcp {
			ln.Close()
		}
		s.udp, s.tcp = nil, nil
		// Port 0: the port the first UDP socket got may be taken for TCP
		// or the other family; pick another.
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) || attempt == 20 {
			return err
		}
	}
	for _, l := range s.udp {
		if s.cfg.UDPBatch <= 1 || !l.startBatched() {
			l.start()
		}
	}
	for _, ln := range s.tcp {
		s.wg.Add(1)
		go s.acceptTCP(ln)
	}
	return nil
}

func (s *Server) bind(host, port string) error {
	type bind struct {
		network, addr string
		pktinfo       bool
		// optional: a host without IPv6 still serves IPv4.
		optional bool
	}
	var binds []bind
	switch host {
	case "":
		binds = []bind{{"4", "0.0.0.0", true, false}, {"6", "::", true, true}}
	case "0.0.0.0":
		binds = []bind{{"4", host, true, false}}
	case "::":
		binds = []bind{{"6", host, true, false}}
	default:
		binds = []bind{{"", host, false, false}}
	}
	lc := net.ListenConfig{Control: reusePort}
bindLoop:
	for _, b := range binds {
		addr := net.JoinHostPort(b.addr, port)
		for j := 0; j < s.cfg.UDPSockets; j++ {
			pc, err := lc.ListenPacket(s.ctx, "udp"+b.network, addr)
			if err != nil {
				if b.optional && j == 0 {
					s.log.Warn("dns: no IPv6 listener", "addr", addr, "err", err)
					continue bindLoop
				}
				return fmt.Errorf("dns: listen udp %s: %w", addr, err)
			}
			c := pc.(*net.UDPConn)
			if port == "0" {
				// The first socket picked the port: the others, and TCP, share it.
				port = strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
				addr = net.JoinHostPort(b.addr, port)
			}
			if b.pktinfo {
				if err := setPktinfo(c, b.network); err != nil {
					c.Close()
					return fmt.Errorf("dns: listen udp %s: %w", addr, err)
				}
			}
			c.SetReadBuffer(4 << 20)
			c.SetWriteBuffer(4 << 20)
			s.udp = append(s.udp, &udpListener{s: s, conn: c, pktinfo: b.pktinfo})
		}
		ln, err := lc.Listen(s.ctx, "tcp"+b.network, addr)
		if err != nil {
			return fmt.Errorf("dns: listen tcp %s: %w", addr, err)
		}
		s.tcp = append(s.tcp, ln)
	}
	s.addr = net.JoinHostPort(host, port)
	return nil
}

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func setPktinfo(c *net.UDPConn, family string) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if family == "4" {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func (s *Server) acceptTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		ap := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		if !s.admitTCP(c, ap.Addr()) {
			s.m.tcpRefused.Inc()
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serveTCP(c, ap)
	}
}

// admitTCP enforces the connection limits, globally and per source, so
// that one client holding connections open cannot lock the others out.
func (s *Server) admitTCP(c net.Conn, src netip.Addr) bool {
	s.tcpMu.Lock()
	defer s.tcpMu.Unlock()
	if s.closing || len(s.tcpConns) >= s.cfg.MaxTCPConns || s.tcpBySrc[src] >= s.cfg.MaxTCPConnsPerSource {
		return false
	}
	s.tcpConns[c] = struct{}{}
	s.tcpBySrc[src]++
	return true
}

func (s *Server) releaseTCP(c net.Conn, src netip.Addr) {
	s.tcpMu.Lock()
	delete(s.tcpConns, c)
	if s.tcpBySrc[src]--; s.tcpBySrc[src] <= 0 {
		delete(s.tcpBySrc, src)
	}
	s.tcpMu.Unlock()
}

// tcpConn is the TCP side of a request.
type tcpConn struct {
	c     net.Conn
	frame []byte
	idle  time.Duration
}

// serveTCP answers the queries of one connection in order (RFC 7766
// pipelining), closing it when idle, on a malformed frame or when the
// client is rate-limited.
func (s *Server) serveTCP(c net.Conn, client netip.AddrPort) {
	defer s.wg.Done()
	defer s.releaseTCP(c, client.Addr())
	defer c.Close()
	r := s.pool.Get().(*request)
	defer s.pool.Put(r)
	tc := &tcpConn{c: c, idle: s.cfg.TCPIdleTimeout}
	r.tcp, r.udp, r.oob, r.client, r.batch = true, nil, nil, client, nil
	r.conn = tc
	var l [2]byte
	for {
		c.SetReadDeadline(time.Now().Add(tc.idle))
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		if n < headerLen || n > maxQuery {
			s.m.malformed.WithLabelValues("drop").Inc()
			return
		}
		if _, err := io.ReadFull(c, r.in[:n]); err != nil {
			return
		}
		r.pkt = r.in[:n]
		s.serve(r)
		if len(r.out) == 0 {
			// Dropped (rate limit, not a query): a TCP client that earns
			// no answer loses its connection.
			return
		}
	}
}

func (r *request) tcpWrite() {
	tc := r.conn
	tc.frame = append(tc.frame[:0], byte(len(r.out)>>8), byte(len(r.out)))
	tc.frame = append(tc.frame, r.out...)
	tc.c.SetWriteDeadline(time.Now().Add(tc.idle))
	tc.c.Write(tc.frame)
}
