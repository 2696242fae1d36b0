//go:build !linux

package identity

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Neighbours needs Linux's netlink.
func Neighbours() (map[netip.Addr]string, error) {
	return nil, errors.New("identity: the neighbour table is read on Linux only")
}

// WatchNeighbours reports that it cannot run, once.
func WatchNeighbours(ctx context.Context, t *Table, interval time.Duration, now func() time.Time, warn func(error)) {
	_, err := Neighbours()
	warn(err)
}
