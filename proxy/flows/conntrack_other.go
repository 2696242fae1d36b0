//go:build !linux

package flows

import (
	"context"
	"errors"
)

// Run needs Linux's conntrack.
func (r *Recorder) Run(ctx context.Context) error {
	return errors.New("flows: conntrack events need Linux")
}

// Ready is never closed off Linux.
func (r *Recorder) Ready() <-chan struct{} { return r.ready }

// RunDrops needs Linux's NFLOG.
func (r *Recorder) RunDrops(ctx context.Context, group uint16) error {
	return errors.New("flows: NFLOG needs Linux")
}

// DropsReady is never closed off Linux.
func (r *Recorder) DropsReady() <-chan struct{} { return r.dropsReady }
