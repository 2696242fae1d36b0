//go:build linux

package flows

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

// Sysctls the recorder needs in the gateway's namespace: byte counters
// and start/stop timestamps on every flow (destroy events carry them).
var sysctls = []string{
	"/proc/sys/net/netfilter/nf_conntrack_acct",
	"/proc/sys/net/netfilter/nf_conntrack_timestamp",
}

// EnableAccounting sets the conntrack sysctls the records need.
func EnableAccounting() error {
	for _, p := range sysctls {
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("flows: %s: %w", p, err)
		}
	}
	return nil
}

// Run subscribes to conntrack's new and destroy events in the current
// network namespace (it needs CAP_NET_ADMIN there) and writes a record per
// ended flow until ctx ends.
//
// Each event group has a socket of its own, so that what the kernel could
// not queue is known exactly, per kind: when a socket's receive buffer is
// full the kernel drops the event and counts it in the socket's drop
// counter (SO_MEMINFO), and the socket stays usable. Destroy events
// carry the records, so every dropped destroy event is a record declared
// lost (cause enobufs); a dropped new event loses nothing the destroy
// event does not carry (the kernel stamps the start) and is only counted
// in the events metric (kind "new-dropped").
func (r *Recorder) Run(ctx context.Context) error {
	if err := EnableAccounting(); err != nil {
		r.d.Log.Warn("flows: counters or timestamps may be missing", "err", err)
	}
	// When the kernel stamps every flow made from now on, its destroy
	// event says when it began: the new events need no remembering (a
	// map of every live flow, under a flood).
	if b, err := os.ReadFile(sysctls[1]); err == nil && strings.TrimSpace(string(b)) == "1" {
		r.stamped = true
	}
	news, err := openEvents(netfilter.GroupCTNew, r.cfg.ReadBuffer, r.d.Log)
	if err != nil {
		return err
	}
	defer news.close()
	destroys, err := openEvents(netfilter.GroupCTDestroy, r.cfg.ReadBuffer, r.d.Log)
	if err != nil {
		return err
	}
	defer destroys.close()
	r.readyOnce.Do(func() { close(r.ready) })

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for _, s := range []*eventSock{news, destroys} {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- r.read(rctx, s) }()
	}
	defer wg.Wait() // before the sockets close

	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	var reap <-chan time.Time
	if r.cfg.ReapInterval > 0 {
		tk := time.NewTicker(r.cfg.ReapInterval)
		defer tk.Stop()
		reap = tk.C
	}
	declare := func() {
		if n := news.newDrops(); n > 0 {
			r.m.events.WithLabelValues("new-dropped").Add(float64(n))
		}
		if n := destroys.newDrops(); n > 0 {
			r.m.events.WithLabelValues("overrun").Add(float64(n))
			r.Lose(int64(n), LossENOBUFS)
		}
		r.Flush()
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			wg.Wait()
			declare()
			return nil
		case err := <-errs:
			stop()
			wg.Wait()
			declare()
			return err
		case <-flush.C:
			declare()
		case <-reap:
			r.reap()
		}
	}
}

// Ready is closed by Run once subscribed (tests wait on it).
func (r *Recorder) Ready() <-chan struct{} { return r.ready }

// eventSock is a netlink socket subscribed to one conntrack event group.
type eventSock struct {
	fd    int
	group netfilter.NetlinkGroup
	// drops is the kernel's drop counter when last read.
	drops uint32
}

func openEvents(group netfilter.NetlinkGroup, rcvbuf int, log *slog.Logger) (*eventSock, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("flows: conntrack socket: %w", err)
	}
	s := &eventSock{fd: fd, group: group}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		s.close()
		return nil, fmt.Errorf("flows: conntrack socket: bind: %w", err)
	}
	// Forced past net.core.rmem_max when the edge may (CAP_NET_ADMIN).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			log.Warn("flows: netlink receive buffer not enlarged", "bytes", rcvbuf, "err", err)
		}
	}
	// Overruns are read from the drop counter, not from ENOBUFS errors
	// (which also make the kernel drop everything until the buffer is
	// read empty).
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1); err != nil {
		s.close()
		return nil, fmt.Errorf("flows: conntrack socket: no-enobufs: %w", err)
	}
	// Reads wake up this often to see whether Run is over.
	tv := unix.Timeval{Usec: 200_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		s.close()
		return nil, fmt.Errorf("flows: conntrack socket: timeout: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		s.close()
		return nil, fmt.Errorf("flows: conntrack socket: join group %d: %w", group, err)
	}
	// Counted from here on.
	s.drops, _ = s.dropped()
	return s, nil
}

func (s *eventSock) close() { unix.Close(s.fd) }

// dropped reads the socket's drop counter: the messages the kernel could
// not queue on it.
func (s *eventSock) dropped() (uint32, error) {
	var mi [unix.SK_MEMINFO_VARS]uint32
	l := uint32(unsafe.Sizeof(mi))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mi)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return 0, e
	}
	return mi[unix.SK_MEMINFO_DROPS], nil
}

// newDrops is how many messages were dropped since the last call.
func (s *eventSock) newDrops() uint32 {
	d, err := s.dropped()
	if err != nil {
		return 0
	}
	n := d - s.drops // modulo 2^32, as the kernel's counter wraps
	s.drops = d
	return n
}

// Receive batches: one recvmmsg takes up to recvBatch datagrams (one
// conntrack event each, a few hundred bytes).
const (
	recvBatch = 64
	recvSize  = 8192
)

// read takes the socket's events until ctx ends.
func (r *Recorder) read(ctx context.Context, s *eventSock) error {
	buf := make([]byte, recvBatch*recvSize)
	iovs := make([]unix.Iovec, recvBatch)
	hdrs := make([]unix.Mmsghdr, recvBatch)
	for i := range hdrs {
		iovs[i].Base = &buf[i*recvSize]
		iovs[i].SetLen(recvSize)
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	var ev ctEvent
	for ctx.Err() == nil {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&hdrs[0])), recvBatch,
			unix.MSG_WAITFORONE, 0, 0)
		switch e {
		case 0:
		case unix.EAGAIN, unix.EINTR, unix.ENOBUFS:
			continue
		default:
			return fmt.Errorf("flows: conntrack events: %w", e)
		}
		for i := 0; i < int(n); i++ {
			msg := buf[i*recvSize : i*recvSize+int(hdrs[i].Len)]
			if hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				r.m.events.WithLabelValues("truncated").Inc()
				if s.group == netfilter.GroupCTDestroy {
					r.Lose(1, LossENOBUFS)
				}
				continue
			}
			r.messages(msg, &ev)
		}
	}
	return nil
}

// messages handles the netlink messages of one datagram.
func (r *Recorder) messages(b []byte, ev *ctEvent) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		if err := decodeEvent(b[:l], ev); err != nil {
			r.m.events.WithLabelValues("undecodable").Inc()
		} else {
			r.event(ev)
		}
		b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
	}
}

func (r *Recorder) event(ev *ctEvent) {
	switch ev.kind {
	case evNew:
		r.m.evNew.Inc()
		if !r.stamped && ev.f.Start.IsZero() {
			// Without the kernel's stamp, the destroy event will not
			// say when the flow began.
			r.starts.put(ev.id, r.d.Now())
		}
	case evDestroy:
		r.m.evDestroy.Inc()
		f := &ev.f
		switch {
		case r.stamped:
		case f.Start.IsZero():
			f.Start = r.starts.take(ev.id)
		default:
			r.starts.take(ev.id)
		}
		if f.End.IsZero() {
			f.End = r.d.Now()
		}
		r.Record(f)
	}
}

// reap dumps the table on a socket of its own, which makes the kernel
// evict the expired flows it walks past (their destroy events follow).
func (r *Recorder) reap() {
	c, err := conntrack.Dial(nil)
	if err != nil {
		r.d.Log.Warn("flows: reap", "err", err)
		return
	}
	defer c.Close()
	if _, err := c.Dump(nil); err != nil {
		r.d.Log.Warn("flows: reap", "err", err)
	}
}
