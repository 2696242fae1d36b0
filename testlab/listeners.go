package testlab

import (
	"errors"
	"net"
	"sync/atomic"

	"vigie/testlab/netns"
)

// Hits counts what reached a listener of a scenario's own (a VPN or SSH
// port on the lab internet), so that the scenario can prove that nothing
// got through, and that its control did.
type Hits struct {
	n     atomic.Int64
	close func() error
}

// Count is the number of datagrams or connections received so far.
func (h *Hits) Count() int64 { return h.n.Load() }

// Close stops the listener.
func (h *Hits) Close() error { return h.close() }

// EchoUDP listens on addr inside ns and echoes every datagram back.
func EchoUDP(ns *netns.NS, addr string) (*Hits, error) {
	pc, err := ns.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	h := &Hits{close: pc.Close}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			h.n.Add(1)
			pc.WriteTo(buf[:n], from)
		}
	}()
	return h, nil
}

// BannerTCP listens on addr inside ns, writes banner to each connection
// and closes it, as an SSH server's first line would.
func BannerTCP(ns *netns.NS, addr, banner string) (*Hits, error) {
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := &Hits{close: ln.Close}
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			h.n.Add(1)
			c.Write([]byte(banner))
			c.Close()
		}
	}()
	return h, nil
}
