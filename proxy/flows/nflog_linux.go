//go:build linux

package flows

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NFLOG constants (linux/netfilter/nfnetlink_log.h).
const (
	nfnlSubsysULOG    = 4
	nfulnlMsgPacket   = 0
	nfulnlMsgConfig   = 1
	nfulaCfgCmd       = 1
	nfulaCfgMode      = 2
	nfulnlCfgCmdBind  = 1
	nfulnlCopyPacket  = 2
	nfulaTimestamp    = 3
	nfulaPayload      = 9
	nfulaPrefix       = 10
	nflogCopyRange    = 128 // headers only: addresses and ports are all we keep
	nfnlHeaderLen     = 4   // struct nfgenmsg
	nfnlAttrNested    = 1 << 15
	nfnlAttrByteorder = 1 << 14
)

// RunDrops binds NFLOG group in the current network namespace and
// records each dropped flow the firewall logs there until ctx ends.
func (r *Recorder) RunDrops(ctx context.Context, group uint16) error {
	for {
		err := r.listenDrops(ctx, group)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, unix.ENOBUFS) {
			r.m.events.WithLabelValues("nflog_overrun").Inc()
			r.Lose(1, LossENOBUFS)
			continue
		}
		return err
	}
}

// DropsReady is closed once the NFLOG group is bound.
func (r *Recorder) DropsReady() <-chan struct{} { return r.dropsReady }

func nflogConfig(group uint16, attrs []byte) netlink.Message {
	data := []byte{unix.AF_UNSPEC, 0, byte(group >> 8), byte(group)}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysULOG<<8 | nfulnlMsgConfig), Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(data, attrs...),
	}
}

func (r *Recorder) listenDrops(ctx context.Context, group uint16) error {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return fmt.Errorf("flows: nflog: %w", err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(r.cfg.ReadBuffer); err != nil {
		r.d.Log.Warn("flows: nflog receive buffer not enlarged", "err", err)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(nfulaCfgCmd, []byte{nfulnlCfgCmdBind})
	if _, err := c.Execute(nflogConfig(group, mustEncode(ae))); err != nil {
		return fmt.Errorf("flows: nflog bind group %d: %w", group, err)
	}
	ae = netlink.NewAttributeEncoder()
	mode := binary.BigEndian.AppendUint32(nil, nflogCopyRange)
	ae.Bytes(nfulaCfgMode, append(mode, nfulnlCopyPacket, 0))
	if _, err := c.Execute(nflogConfig(group, mustEncode(ae))); err != nil {
		return fmt.Errorf("flows: nflog copy mode: %w", err)
	}
	r.dropsOnce.Do(func() { close(r.dropsReady) })
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		msgs, err := c.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("flows: nflog: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(nfnlSubsysULOG<<8|nfulnlMsgPacket) || len(m.Data) < nfnlHeaderLen {
				continue
			}
			r.m.events.WithLabelValues("nflog").Inc()
			payload, prefix, at := parseNFLOG(m.Data[nfnlHeaderLen:])
			if at.IsZero() {
				at = r.d.Now()
			}
			if payload == nil {
				continue
			}
			if err := r.Dropped(payload, prefix, at); err != nil {
				r.d.Log.Debug("flows: nflog packet not understood", "err", err)
			}
		}
	}
}

// parseNFLOG reads the payload, prefix and timestamp attributes of one
// NFLOG packet message.
func parseNFLOG(b []byte) (payload []byte, prefix string, at time.Time) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, "", time.Time{}
	}
	for ad.Next() {
		switch ad.Type() &^ (nfnlAttrNested | nfnlAttrByteorder) {
		case nfulaPayload:
			payload = ad.Bytes()
		case nfulaPrefix:
			prefix = string(bytes.TrimRight(ad.Bytes(), "\x00"))
		case nfulaTimestamp:
			if v := ad.Bytes(); len(v) == 16 {
				at = time.Unix(int64(binary.BigEndian.Uint64(v[:8])), int64(binary.BigEndian.Uint64(v[8:]))*1000)
			}
		}
	}
	return payload, prefix, at
}

func mustEncode(ae *netlink.AttributeEncoder) []byte {
	b, err := ae.Encode()
	if err != nil {
		panic(err) // only fixed, well-formed attributes are encoded here
	}
	return b
}
