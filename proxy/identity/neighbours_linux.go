//go:build linux

package identity

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Neighbour states that carry a usable link-layer address.
const usableNeigh = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT

// Neighbours reads the kernel's neighbour table (ARP and NDP) of the
// current network namespace: address → MAC.
func Neighbours() (map[netip.Addr]string, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, fmt.Errorf("identity: neighbours: %w", err)
	}
	defer c.Close()
	req := netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETNEIGH, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofNdMsg),
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("identity: neighbours: %w", err)
	}
	out := map[netip.Addr]string{}
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofNdMsg {
			continue
		}
		state := uint16(m.Data[8]) | uint16(m.Data[9])<<8
		if state&usableNeigh == 0 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofNdMsg:])
		if err != nil {
			continue
		}
		var addr netip.Addr
		var mac string
		for ad.Next() {
			switch ad.Type() {
			case unix.NDA_DST:
				addr, _ = netip.AddrFromSlice(ad.Bytes())
			case unix.NDA_LLADDR:
				if b := ad.Bytes(); len(b) == 6 {
					mac = net.HardwareAddr(b).String()
				}
			}
		}
		if addr.IsValid() && mac != "" {
			out[addr.Unmap()] = mac
		}
	}
	return out, nil
}

// WatchNeighbours polls the neighbour table every interval and keeps the
// table's neighbour bindings open while an entry lasts.
func WatchNeighbours(ctx context.Context, t *Table, interval time.Duration, now func() time.Time, warn func(error)) {
	prev := map[netip.Addr]string{}
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		cur, err := Neighbours()
		if err != nil {
			warn(err)
		} else {
			n := now()
			for a, mac := range cur {
				t.Put(Binding{Addr: a, MAC: mac, From: n, Source: FromNeighbour})
			}
			for a := range prev {
				if _, ok := cur[a]; !ok {
					t.Close(a, FromNeighbour, "", n)
				}
			}
			prev = cur
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}
