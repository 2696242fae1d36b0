package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"vigie/tstest"
)

// TestIsolation: a listener opened inside a namespace serves there and
// only there, whichever goroutine accepts, and the caller's own namespace
// is left as it was.
func TestIsolation(t *testing.T) {
	tstest.RequireRoot(t)
	ctx := context.Background()
	var nss []*NS
	for i := 0; i < 2; i++ {
		ns, err := Add(ctx, fmt.Sprintf("vnt-%d-%d", os.Getpid(), i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Delete() })
		if err := ns.IP(ctx, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
		nss = append(nss, ns)
	}
	a, b := nss[0], nss[1]
	ln, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("a"))
			c.Close()
		}
	}()
	c, err := a.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial inside the listener's namespace: %v", err)
	}
	buf := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err != nil || buf[0] != 'a' {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.Close()
	if c, err := b.Dial(ctx, "tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("another namespace reached the listener")
	}
	// The test process's own namespace has no such listener either.
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the host namespace reached the listener: a thread leaked into the lab")
	}
	if _, err := Open("../etc"); err == nil {
		t.Fatal("Open accepted a path")
	}
	// DoIn, by name, reaches the listener; an absent name is an error.
	if err := DoIn(a.Name, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("DoIn the listener's namespace: %v", err)
	}
	if err := DoIn(fmt.Sprintf("vnt-%d-absent", os.Getpid()), func() error { return nil }); err == nil {
		t.Fatal("DoIn an absent namespace succeeded")
	}
}
