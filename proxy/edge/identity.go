package edge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"vigie/proxy/identity"
)

// IdentityConfig is the identity section: where the edge learns who is
// behind a client address, to write the MAC and user into each journal
// record when it is made. Nothing configured, nothing is learnt.
type IdentityConfig struct {
	RADIUS RADIUSConfig `yaml:"radius,omitempty"`
	// Leases are DHCP lease files to follow (re-read when they change).
	Leases []LeaseFileConfig `yaml:"leases,omitempty"`
	// Neighbours reads the kernel's neighbour table for MAC addresses.
	Neighbours bool `yaml:"neighbours,omitempty"`
	// PollInterval is how often lease files and the neighbour table are
	// looked at (default 2s).
	PollInterval time.Duration `yaml:"poll_interval,omitempty"`
	// Keep is how long ended sessions and leases are remembered (24h).
	Keep time.Duration `yaml:"keep,omitempty"`
}

// RADIUSConfig runs a RADIUS accounting server for the Wi-Fi controller
// and 802.1X switches.
type RADIUSConfig struct {
	// Listen is the UDP address, e.g. "10.20.0.1:1813". Empty: no server.
	Listen string `yaml:"listen,omitempty"`
	// Clients are the NAS allowed to send accounting, each with its own
	// shared secret (inline or, better, in a file readable by the edge
	// only).
	Clients []RADIUSClientConfig `yaml:"clients,omitempty"`
}

// RADIUSClientConfig is one NAS.
type RADIUSClientConfig struct {
	// Address is the NAS's address or prefix.
	Address    string `yaml:"address"`
	Secret     string `yaml:"secret,omitempty"`
	SecretFile string `yaml:"secret_file,omitempty"`
}

// LeaseFileConfig is one DHCP server's lease file.
type LeaseFileConfig struct {
	Path string `yaml:"path"`
	// Format is isc (dhcpd.leases), kea (memfile lease4 CSV) or dnsmasq.
	Format string `yaml:"format"`
}

func (c IdentityConfig) enabled() bool {
	return c.RADIUS.Listen != "" || len(c.Leases) > 0 || c.Neighbours
}

// nas checks the RADIUS clients and reads their secrets.
func (c RADIUSConfig) nas() ([]identity.NAS, error) {
	if c.Listen == "" {
		if len(c.Clients) > 0 {
			return nil, fmt.Errorf("identity.radius: clients without listen")
		}
		return nil, nil
	}
	if len(c.Clients) == 0 {
		return nil, fmt.Errorf("identity.radius: listen %q without clients (no NAS could send accounting)", c.Listen)
	}
	var out []identity.NAS
	for i, cl := range c.Clients {
		field := fmt.Sprintf("identity.radius.clients[%d]", i)
		p, err := netip.ParsePrefix(cl.Address)
		if err != nil {
			a, aerr := netip.ParseAddr(cl.Address)
			if aerr != nil {
				return nil, fmt.Errorf("%s.address %q: not an address or prefix", field, cl.Address)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		secret := cl.Secret
		switch {
		case cl.Secret != "" && cl.SecretFile != "":
			return nil, fmt.Errorf("%s: secret and secret_file are exclusive", field)
		case cl.SecretFile != "":
			b, err := os.ReadFile(cl.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("%s.secret_file: %w", field, err)
			}
			secret = strings.TrimRight(string(b), "\r\n")
		}
		if secret == "" {
			return nil, fmt.Errorf("%s: a shared secret is required", field)
		}
		out = append(out, identity.NAS{Prefix: p.Masked(), Secret: []byte(secret)})
	}
	return out, nil
}

// startIdentity builds the identity table and makes the journal sink
// stamp every record with what it knows. It runs after the journal and
// before the DNS filter and proxy, which take e.journal when they start.
func (e *Edge) startIdentity(ctx context.Context) error {
	c := e.cfg.Identity
	if !c.enabled() {
		return nil
	}
	nas, err := c.RADIUS.nas()
	if err != nil {
		return err
	}
	for i, l := range c.Leases {
		switch l.Format {
		case identity.FormatISC, identity.FormatKea, identity.FormatDnsmasq:
		default:
			return fmt.Errorf("identity.leases[%d].format %q: want isc, kea or dnsmasq", i, l.Format)
		}
		if l.Path == "" {
			return fmt.Errorf("identity.leases[%d].path is required", i)
		}
	}
	interval := c.PollInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := identity.NewTable()
	if c.Keep > 0 {
		t.Keep = c.Keep
	}
	e.identity = t
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var running []chan struct{}
	goRun := func(f func()) {
		done := make(chan struct{})
		running = append(running, done)
		go func() { defer close(done); f() }()
	}
	stop := func(context.Context) error {
		cancel()
		for _, d := range running {
			<-d
		}
		return nil
	}
	log := e.log.With("component", "identity")
	if c.RADIUS.Listen != "" {
		srv, err := identity.NewRADIUS(t, nas, log, e.reg, e.now)
		if err != nil {
			cancel()
			return err
		}
		pc, err := net.ListenPacket("udp", c.RADIUS.Listen)
		if err != nil {
			cancel()
			return fmt.Errorf("identity.radius: %w", err)
		}
		log.Info("RADIUS accounting server listening", "addr", pc.LocalAddr(), "clients", len(nas))
		goRun(func() {
			if err := srv.Serve(runCtx, pc); err != nil {
				log.Error("RADIUS accounting server stopped", "err", err)
			}
		})
	}
	if len(c.Leases) > 0 {
		var files []identity.LeaseFile
		for _, l := range c.Leases {
			files = append(files, identity.LeaseFile{Path: l.Path, Format: l.Format})
		}
		w := identity.NewLeaseWatcher(t, files, log, e.now)
		goRun(func() { w.Run(runCtx, interval) })
	}
	if c.Neighbours {
		goRun(func() {
			identity.WatchNeighbours(runCtx, t, interval, e.now, func(err error) { log.Warn("neighbour table", "err", err) })
		})
	}
	goRun(func() {
		tk := time.NewTicker(time.Hour)
		defer tk.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tk.C:
				t.Prune(e.now())
			}
		}
	})
	e.journal = &identity.Sink{Next: e.journal, Table: t}
	e.stops = append(e.stops, stop)
	return nil
}
