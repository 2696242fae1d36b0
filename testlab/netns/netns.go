// Package netns creates, enters and deletes Linux network namespaces for
// the lab and for the firewall's kernel tests. Namespaces are named (they
// appear in "ip netns list", so a person can step in with "ip netns exec")
// and are entered only on a locked OS thread, so no other goroutine ever
// runs in the wrong namespace. Sockets opened inside keep their namespace
// afterwards: a listener created in Do serves from any goroutine.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir is where iproute2 keeps named namespaces.
const Dir = "/run/netns"

// NS is a named network namespace held open by a file descriptor.
type NS struct {
	Name string
	f    *os.File
}

// Add creates the namespace name (as "ip netns add" does) and opens it.
func Add(ctx context.Context, name string) (*NS, error) {
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("netns: add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	ns, err := Open(name)
	if err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		return nil, err
	}
	return ns, nil
}

// Open opens an existing named namespace.
func Open(name string) (*NS, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("netns: invalid namespace name %q", name)
	}
	f, err := os.Open(filepath.Join(Dir, name))
	if err != nil {
		return nil, fmt.Errorf("netns: open %s: %w", name, err)
	}
	return &NS{Name: name, f: f}, nil
}

// Fd is the namespace's file descriptor (for nftables.WithNetNSFd).
func (n *NS) Fd() int { return int(n.f.Fd()) }

// Close releases the descriptor; the namespace stays.
func (n *NS) Close() error { return n.f.Close() }

// Delete closes the namespace and removes its name. Interfaces inside are
// destroyed with it (a veth pair dies with either end).
func (n *NS) Delete() error {
	n.f.Close()
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("netns: del %s: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Do runs f on an OS thread that has entered the namespace. The thread
// goes back to its namespace afterwards; if it cannot, it is retired
// (left locked, so the runtime ends it) rather than reused.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(n.Fd(), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: enter %s: %w", n.Name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netns: leave %s: %w", n.Name, err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DoIn runs f inside the existing namespace name: Open, Do, Close, for
// callers (tests) that keep namespaces by name.
func DoIn(name string, f func() error) error {
	n, err := Open(name)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Do(f)
}

// Command prepares a command that runs inside the namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its output; a
// failure carries the output.
func (n *NS) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netns %s: %s %s: %v: %s", n.Name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// IP runs "ip ARGS" inside the namespace.
func (n *NS) IP(ctx context.Context, args ...string) error {
	_, err := n.Run(ctx, "ip", args...)
	return err
}

// Dial connects from inside the namespace.
func (n *NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen opens a stream listener inside the namespace.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a datagram socket inside the namespace.
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// Veth creates a veth pair with one end in each namespace, named there
// aName and bName. The pair is created directly inside the namespaces, so
// it never appears, even briefly, in the host's.
func Veth(ctx context.Context, a *NS, aName string, b *NS, bName string) error {
	return a.IP(ctx, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name)
}
