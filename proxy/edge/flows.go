package edge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"vigie/proxy/flows"
)

// FlowsConfig is the flows section: one connexions record per flow
// crossing the gateway, from the kernel's conntrack events.
type FlowsConfig struct {
	// Enabled subscribes to conntrack events (needs CAP_NET_ADMIN in the
	// gateway's namespace; sets nf_conntrack_acct and
	// nf_conntrack_timestamp).
	Enabled bool `yaml:"enabled"`
	// Rate and Burst bound the flow records written per second (20000,
	// 2×rate); beyond, records are counted and declared as lost.
	Rate  float64 `yaml:"rate,omitempty"`
	Burst int     `yaml:"burst,omitempty"`
	// ReadBufferMB is the netlink receive buffer (32).
	ReadBufferMB int `yaml:"read_buffer_mb,omitempty"`
	// ReapInterval is how often the conntrack table is walked so that
	// ended flows are reported at once (5s; -1s disables).
	ReapInterval time.Duration `yaml:"reap_interval,omitempty"`
	// NFLOGGroup is the group the firewall's drop rules log to and the
	// recorder reads dropped flows from (default 17).
	NFLOGGroup uint16 `yaml:"nflog_group,omitempty"`
}

// DefaultNFLOGGroup is the NFLOG group of dropped flows.
const DefaultNFLOGGroup = 17

func (c FlowsConfig) nflogGroup() uint16 {
	if c.NFLOGGroup != 0 {
		return c.NFLOGGroup
	}
	return DefaultNFLOGGroup
}

// startFlows starts the conntrack recorder. It needs the firewall's
// redirect ports (flows redirected to the DNS filter and the proxy are
// theirs to journal) and the generation's zones.
func (e *Edge) startFlows(ctx context.Context) error {
	c := e.cfg.Flows
	if !c.Enabled {
		return nil
	}
	if c.Rate < 0 || c.Burst < 0 || c.ReadBufferMB < 0 {
		return fmt.Errorf("flows: rate, burst and read_buffer_mb must not be negative")
	}
	fw, err := e.cfg.FirewallRules()
	if err != nil {
		return err
	}
	local := &localAddrs{}
	local.refresh()
	rec, err := flows.New(flows.Config{
		UAI: e.cfg.UAI, Rate: c.Rate, Burst: c.Burst, ReadBuffer: c.ReadBufferMB << 20, ReapInterval: c.ReapInterval,
		Redirects: map[uint16]string{fw.DNSPort: "dns", fw.HTTPPort: "proxy", fw.HTTPSPort: "proxy"},
		Upstreams: map[uint16]string{53: "dns", 80: "proxy", 443: "proxy"},
	}, flows.Deps{
		Journal: e.journal, Local: local.has, Registry: e.reg, Log: e.log.With("component", "flows"), Now: e.now,
		Zone: func(a netip.Addr) string {
			g := e.gen.Load()
			if g == nil {
				return ""
			}
			z, _ := g.Rules.Zone(e.cfg.UAI, a)
			return z
		},
	})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- rec.Run(runCtx) }()
	dropsDone := make(chan struct{})
	go func() {
		defer close(dropsDone)
		// Dropped flows come from the firewall's drop rules (see
		// FirewallRules): without them the journal still has every
		// accepted flow.
		if err := rec.RunDrops(runCtx, c.nflogGroup()); err != nil && runCtx.Err() == nil {
			e.log.Error("flows: dropped flows are not journalled", "err", err)
		}
	}()
	go func() {
		// The gateway's addresses change rarely (DHCP on the WAN leg).
		tk := time.NewTicker(30 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tk.C:
				local.refresh()
			}
		}
	}()
	select {
	case <-rec.Ready():
	case err := <-done:
		cancel()
		return fmt.Errorf("flows: %w", err)
	case <-time.After(10 * time.Second):
		cancel()
		return fmt.Errorf("flows: conntrack subscription not ready after 10s")
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		// Run returns early only on a persistent netlink failure.
		if err := <-done; err != nil && runCtx.Err() == nil {
			e.log.Error("flows: conntrack recorder stopped: flows are no longer journalled", "err", err)
		}
	}()
	e.stops = append(e.stops, func(context.Context) error {
		cancel()
		for _, ch := range []chan struct{}{finished, dropsDone} {
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
			}
		}
		return nil
	})
	e.log.Info("flows: journalling conntrack flows", "rate", c.Rate)
	return nil
}

// localAddrs is the set of the gateway's own addresses.
type localAddrs struct {
	set atomic.Pointer[map[netip.Addr]bool]
}

func (l *localAddrs) refresh() {
	m := map[netip.Addr]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				m[p.Addr().Unmap()] = true
			}
		}
	}
	l.set.Store(&m)
}

func (l *localAddrs) has(a netip.Addr) bool { return (*l.set.Load())[a.Unmap()] }
