// Package testlab builds a virtual collège out of network namespaces and
// veth pairs, runs the real "vigie edge" binary as its gateway, and lets
// tests (and people, through "vigie testlab up") act as a pupil, a
// secretary, or the internet.
//
//	eleve (10.10.0.10) ──ped0─┐
//	                         edge ──wan0 (203.0.113.2)── internet (203.0.113.1)
//	secretariat (10.20.0.10) ─adm0┘                       198.51.100.10 authoritative DNS
//	                                                      198.51.100.53 "public resolver", DoT
//	                                                      198.51.100.80 HTTP, HTTPS, UDP 443
//	                                                      198.51.100.81, .100-.107 HTTP, HTTPS
//
// Every leg is dual-stack: the school's zones use ULA prefixes
// (fd00:10::/64, fd00:20::/64), the WAN and the internet documentation
// prefixes (2001:db8:ff::/64, 2001:db8:100::/64). The authoritative server
// gives each name its own addresses (see LabAddrs), as the real internet
// does: forcesafesearch.google.com is not www.google.com.
//
// Everything the lab creates carries a per-run identifier, so parallel runs
// cannot collide, and everything is removed by Down, which tests register
// with t.Cleanup so it runs even when a scenario fails. No namespace has a
// link or a route to the host's own network: the "internet" is a namespace
// using documentation addresses only, whose services are goroutines of the
// lab's process with sockets opened inside it.
package testlab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"vigie/testlab/netns"
)

// The lab's IP plan.
const (
	UAI = "0679999Z"

	EleveAddr       = "10.10.0.10"
	EdgePedAddr     = "10.10.0.1"
	SecretariatAddr = "10.20.0.10"
	EdgeAdmAddr     = "10.20.0.1"
	EdgeWANAddr     = "203.0.113.2"
	ISPAddr         = "203.0.113.1"

	// AuthDNSAddr answers for every name of the lab internet (the edge's upstream).
	AuthDNSAddr = "198.51.100.10"
	// PublicResolverAddr is a resolver a pupil might configure to escape the
	// filter; it answers every name with WrongAddr and listens for DoT.
	PublicResolverAddr = "198.51.100.53"
	// OriginAddr serves HTTP, HTTPS and UDP 443 for every name.
	OriginAddr = "198.51.100.80"
	// WrongAddr is the public resolver's answer: seeing it means a bypass.
	WrongAddr = "198.51.100.66"
	// ControlPlaneAddr is the académie's control plane (HTTPS).
	ControlPlaneAddr = "198.51.100.20"

	// The IPv6 plan: ULA prefixes in the school, documentation prefixes
	// outside; nothing is routed beyond the lab's namespaces.
	EleveAddr6       = "fd00:10::10"
	EdgePedAddr6     = "fd00:10::1"
	SecretariatAddr6 = "fd00:20::10"
	EdgeAdmAddr6     = "fd00:20::1"
	EdgeWANAddr6     = "2001:db8:ff::2"
	ISPAddr6         = "2001:db8:ff::1"
	AuthDNSAddr6     = "2001:db8:100::10"
	OriginAddr6      = "2001:db8:100::80"
	WrongAddr6       = "2001:db8:100::66"
	// SafeSearchAddr is forcesafesearch.google.com's own address: a pupil
	// whose connection lands there went through SafeSearch.
	SafeSearchAddr  = "198.51.100.81"
	SafeSearchAddr6 = "2001:db8:100::81"
)

// Edge-side interface names (inside the edge namespace).
const (
	EdgePedIf = "ped0"
	EdgeAdmIf = "adm0"
	EdgeWANIf = "wan0"
)

// StateDir holds one file per running lab, so "vigie testlab down" can
// clean up after a lab whose process died.
const StateDir = "/run/vigie-testlab"

// Options configure a lab.
type Options struct {
	// Binary is the vigie binary run as the edge.
	Binary string
	// Lists is the blocklists folder (holding ut1/ and adult-top1m/).
	Lists string
	// Dir keeps the lab's files (keys, bundles, config, edge state, logs);
	// empty means a new temporary folder removed by Down.
	Dir string
	// EdgeLog receives the edge's output as well as Dir/edge.log.
	EdgeLog io.Writer
	// NoEdge builds the network and the internet without starting the edge.
	NoEdge bool
}

// Lab is a running virtual school.
type Lab struct {
	ID  string
	Dir string

	Edge, Eleve, Secretariat, Internet *netns.NS
	// Net are the internet's services.
	Net *Internet
	// CP is the académie's control plane the edge syncs from.
	CP *ControlPlane

	// Key signs the lab's bundles; PublicKeyPath is pinned in the edge config.
	Key           ed25519.PrivateKey
	PublicKeyPath string

	opts    Options
	ownDir  bool
	mu      sync.Mutex
	edge    *edgeProc
	serial  uint64
	closers []func() error
}

// Up builds the lab: namespaces, links, addresses, routes, the internet's
// services, a signed bundle of the lab policy, and (unless NoEdge) the
// edge. On any error, whatever was built is removed.
func Up(ctx context.Context, o Options) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("testlab: needs root (network namespaces)")
	}
	id := make([]byte, 3)
	rand.Read(id)
	l = &Lab{ID: hex.EncodeToString(id), opts: o, Dir: o.Dir}
	defer func() {
		if err != nil {
			l.Down()
			l = nil
		}
	}()
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", "vigie-lab-"+l.ID+"-"); err != nil {
			return l, fmt.Errorf("testlab: %w", err)
		}
		l.ownDir = true
	}
	if err = l.writeState(); err != nil {
		return l, err
	}
	if err = l.buildNetwork(ctx); err != nil {
		return l, err
	}
	if l.Net, err = startInternet(l); err != nil {
		return l, err
	}
	if l.CP, err = startControlPlane(l); err != nil {
		return l, err
	}
	if err = l.prepareEdge(); err != nil {
		return l, err
	}
	if !o.NoEdge {
		if err = l.StartEdge(ctx); err != nil {
			return l, err
		}
	}
	return l, nil
}

func (l *Lab) nsName(role string) string { return "vl-" + l.ID + "-" + role }

// buildNetwork creates the four namespaces and wires them.
func (l *Lab) buildNetwork(ctx context.Context) error {
	var err error
	for _, r := range []struct {
		ns   **netns.NS
		role string
	}{{&l.Edge, "edge"}, {&l.Eleve, "eleve"}, {&l.Secretariat, "secretariat"}, {&l.Internet, "internet"}} {
		if *r.ns, err = netns.Add(ctx, l.nsName(r.role)); err != nil {
			return fmt.Errorf("testlab: %w", err)
		}
	}
	steps := []struct {
		ns   *netns.NS
		args []string
	}{}
	ip := func(ns *netns.NS, args ...string) {
		steps = append(steps, struct {
			ns   *netns.NS
			args []string
		}{ns, args})
	}
	for _, ns := range []*netns.NS{l.Edge, l.Eleve, l.Secretariat, l.Internet} {
		ip(ns, "link", "set", "lo", "up")
	}
	// Client legs.
	for _, c := range []struct {
		client                   *netns.NS
		edgeIf, gw, me, gw6, me6 string
	}{
		{l.Eleve, EdgePedIf, EdgePedAddr, EleveAddr, EdgePedAddr6, EleveAddr6},
		{l.Secretariat, EdgeAdmIf, EdgeAdmAddr, SecretariatAddr, EdgeAdmAddr6, SecretariatAddr6},
	} {
		if err := netns.Veth(ctx, l.Edge, c.edgeIf, c.client, "eth0"); err != nil {
			return fmt.Errorf("testlab: %w", err)
		}
		ip(l.Edge, "addr", "add", c.gw+"/24", "dev", c.edgeIf)
		ip(l.Edge, "-6", "addr", "add", c.gw6+"/64", "dev", c.edgeIf, "nodad")
		ip(l.Edge, "link", "set", c.edgeIf, "up")
		ip(c.client, "addr", "add", c.me+"/24", "dev", "eth0")
		ip(c.client, "-6", "addr", "add", c.me6+"/64", "dev", "eth0", "nodad")
		ip(c.client, "link", "set", "eth0", "up")
		ip(c.client, "route", "add", "default", "via", c.gw)
		ip(c.client, "-6", "route", "add", "default", "via", c.gw6)
	}
	// The WAN leg, and the internet's own addresses.
	if err := netns.Veth(ctx, l.Edge, EdgeWANIf, l.Internet, "eth0"); err != nil {
		return fmt.Errorf("testlab: %w", err)
	}
	ip(l.Edge, "addr", "add", EdgeWANAddr+"/24", "dev", EdgeWANIf)
	ip(l.Edge, "-6", "addr", "add", EdgeWANAddr6+"/64", "dev", EdgeWANIf, "nodad")
	ip(l.Edge, "link", "set", EdgeWANIf, "up")
	ip(l.Edge, "route", "add", "default", "via", ISPAddr)
	ip(l.Edge, "-6", "route", "add", "default", "via", ISPAddr6)
	ip(l.Internet, "addr", "add", ISPAddr+"/24", "dev", "eth0")
	ip(l.Internet, "-6", "addr", "add", ISPAddr6+"/64", "dev", "eth0", "nodad")
	ip(l.Internet, "link", "set", "eth0", "up")
	// The school's ULA prefixes are reached through the gateway (when it
	// does not masquerade them).
	ip(l.Internet, "-6", "route", "add", "fd00::/8", "via", EdgeWANAddr6)
	for _, a := range append([]string{AuthDNSAddr, PublicResolverAddr, ControlPlaneAddr}, originAddrs()...) {
		if strings.Contains(a, ":") {
			ip(l.Internet, "-6", "addr", "add", a+"/128", "dev", "lo", "nodad")
		} else {
			ip(l.Internet, "addr", "add", a+"/32", "dev", "lo")
		}
	}
	ip(l.Internet, "-6", "addr", "add", AuthDNSAddr6+"/128", "dev", "lo", "nodad")
	for _, s := range steps {
		if err := s.ns.IP(ctx, s.args...); err != nil {
			return fmt.Errorf("testlab: %w", err)
		}
	}
	// Devices' resolvers, for people stepping in with "ip netns exec"
	// (which mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf):
	// the pupil uses a public resolver, the secretariat the gateway.
	for _, r := range []struct {
		ns       *netns.NS
		resolver string
	}{{l.Eleve, PublicResolverAddr}, {l.Secretariat, EdgeAdmAddr}, {l.Edge, AuthDNSAddr}, {l.Internet, AuthDNSAddr}} {
		dir := filepath.Join("/etc/netns", r.ns.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("testlab: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+r.resolver+"\n"), 0o644); err != nil {
			return fmt.Errorf("testlab: %w", err)
		}
	}
	// The edge routes; nothing else does.
	return l.Edge.Do(func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
			return err
		}
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1\n"), 0o644)
	})
}

// Down stops the edge and the services, deletes the namespaces (their
// links die with them) and the lab's files. It can be called on a lab half
// built, and more than once.
func (l *Lab) Down() error {
	var errs []error
	l.mu.Lock()
	if l.edge != nil {
		errs = append(errs, l.edge.stop())
		l.edge = nil
	}
	closers := l.closers
	l.closers = nil
	l.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	for _, ns := range []**netns.NS{&l.Edge, &l.Eleve, &l.Secretariat, &l.Internet} {
		if *ns != nil {
			os.RemoveAll(filepath.Join("/etc/netns", (*ns).Name))
			errs = append(errs, (*ns).Delete())
			*ns = nil
		}
	}
	if l.ownDir && l.Dir != "" {
		errs = append(errs, os.RemoveAll(l.Dir))
	}
	if l.ID != "" {
		os.Remove(filepath.Join(StateDir, l.ID+".json"))
	}
	return errors.Join(errs...)
}

// onDown registers a closer run by Down.
func (l *Lab) onDown(f func() error) {
	l.mu.Lock()
	l.closers = append(l.closers, f)
	l.mu.Unlock()
}

type state struct {
	ID         string   `json:"id"`
	PID        int      `json:"pid"`
	Namespaces []string `json:"namespaces"`
	Dir        string   `json:"dir"`
	Started    string   `json:"started"`
}

func (l *Lab) writeState() error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("testlab: %w", err)
	}
	st := state{ID: l.ID, PID: os.Getpid(), Dir: l.Dir, Started: time.Now().Format(time.RFC3339)}
	for _, r := range []string{"edge", "eleve", "secretariat", "internet"} {
		st.Namespaces = append(st.Namespaces, l.nsName(r))
	}
	data, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(filepath.Join(StateDir, l.ID+".json"), data, 0o644)
}

// Cleanup removes labs whose owning process is gone (or every lab when
// all is set): their edge process, namespaces and state files. It returns
// the identifiers it removed.
func Cleanup(all bool) ([]string, error) {
	entries, err := os.ReadDir(StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("testlab: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		path := filepath.Join(StateDir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var st state
		if json.Unmarshal(data, &st) != nil || st.ID == "" {
			continue
		}
		if !all && processAlive(st.PID) {
			continue
		}
		for _, name := range st.Namespaces {
			if !strings.HasPrefix(name, "vl-"+st.ID+"-") {
				continue // never delete what the lab did not name
			}
			killNamespace(name)
			os.RemoveAll(filepath.Join("/etc/netns", name))
			if _, err := os.Stat(filepath.Join(netns.Dir, name)); err == nil {
				if ns, err := netns.Open(name); err == nil {
					errs = append(errs, ns.Delete())
				}
			}
		}
		if st.Dir != "" && strings.Contains(filepath.Base(st.Dir), "vigie-lab-"+st.ID) {
			os.RemoveAll(st.Dir)
		}
		os.Remove(path)
		removed = append(removed, st.ID)
	}
	return removed, errors.Join(errs...)
}

// processAlive reports whether pid runs (a zombie, killed but not yet
// reaped, does not).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}
