//go:build linux

package flows

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

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
// ended flow until ctx ends. An overrun socket (ENOBUFS) is declared as a
// loss and the subscription goes on.
func (r *Recorder) Run(ctx context.Context) error {
	if err := EnableAccounting(); err != nil {
		r.d.Log.Warn("flows: counters or timestamps may be missing", "err", err)
	}
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	defer r.Flush()
	for {
		err := r.listen(ctx, flush.C)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, unix.ENOBUFS) {
			// The kernel dropped events it could not queue: how many is
			// not known, so at least one record is declared lost.
			r.m.events.WithLabelValues("overrun").Inc()
			r.Lose(1, LossENOBUFS)
			continue
		}
		return err
	}
}

// Ready is closed by listen once subscribed (tests wait on it).
func (r *Recorder) Ready() <-chan struct{} { return r.ready }

func (r *Recorder) listen(ctx context.Context, flush <-chan time.Time) error {
	c, err := conntrack.Dial(nil)
	if err != nil {
		return fmt.Errorf("flows: conntrack: %w", err)
	}
	if err := c.SetReadBuffer(r.cfg.ReadBuffer); err != nil {
		r.d.Log.Warn("flows: netlink receive buffer not enlarged", "bytes", r.cfg.ReadBuffer, "err", err)
	}
	events := make(chan conntrack.Event, r.cfg.QueueSize)
	errs, err := c.Listen(events, 1, []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTDestroy})
	if err != nil {
		c.Close()
		return fmt.Errorf("flows: conntrack listen: %w", err)
	}
	r.readyOnce.Do(func() { close(r.ready) })
	var reap <-chan time.Time
	if r.cfg.ReapInterval > 0 {
		tk := time.NewTicker(r.cfg.ReapInterval)
		defer tk.Stop()
		reap = tk.C
	}
	closeConn := func() {
		// Close waits for the worker, which may be blocked handing over
		// an event: keep taking them meanwhile.
		done := make(chan struct{})
		go func() { c.Close(); close(done) }()
		for {
			select {
			case <-done:
				return
			case <-events:
			case <-errs:
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			closeConn()
			return nil
		case err := <-errs:
			closeConn()
			return fmt.Errorf("flows: conntrack events: %w", err)
		case <-flush:
			r.Flush()
		case <-reap:
			r.reap()
		case ev := <-events:
			r.event(&ev)
		}
	}
}

func (r *Recorder) event(ev *conntrack.Event) {
	if ev.Flow == nil {
		return
	}
	switch ev.Type {
	case conntrack.EventNew:
		r.m.events.WithLabelValues("new").Inc()
		r.starts.put(ev.Flow.ID, r.d.Now())
	case conntrack.EventDestroy:
		r.m.events.WithLabelValues("destroy").Inc()
		f := flowOf(ev.Flow)
		if f.Start.IsZero() {
			f.Start = r.starts.take(ev.Flow.ID)
		} else {
			r.starts.take(ev.Flow.ID)
		}
		if f.End.IsZero() {
			f.End = r.d.Now()
		}
		r.Record(&f)
	}
}

func flowOf(cf *conntrack.Flow) Flow {
	o, p := cf.TupleOrig, cf.TupleReply
	f := Flow{
		Proto:      ProtoName(o.Proto.Protocol),
		OrigSrc:    addrPort(o.IP.SourceAddress, o.Proto.SourcePort),
		OrigDst:    addrPort(o.IP.DestinationAddress, o.Proto.DestinationPort),
		ReplySrc:   addrPort(p.IP.SourceAddress, p.Proto.SourcePort),
		ReplyDst:   addrPort(p.IP.DestinationAddress, p.Proto.DestinationPort),
		Start:      cf.Timestamp.Start,
		End:        cf.Timestamp.Stop,
		BytesOrig:  cf.CountersOrig.Bytes,
		BytesReply: cf.CountersReply.Bytes,
	}
	return f
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
