package publish

import (
	"context"
	"fmt"
)

// SetSerialFloor tells the publisher where to learn the highest serial
// that exists outside its database: the serials edges report applied. A
// control plane restored from a backup has forgotten the versions
// published after it; its edges have not. The next publication then
// jumps past every serial an edge reports, so that a serial never names
// two different contents and every edge sees a newer version to take.
func (p *Publisher) SetSerialFloor(f func(context.Context) (uint64, error)) { p.floor.Store(&f) }

func (p *Publisher) serialFloor(ctx context.Context) (uint64, error) {
	f := p.floor.Load()
	if f == nil {
		return 0, nil
	}
	n, err := (*f)(ctx)
	if err != nil {
		return 0, fmt.Errorf("publish: serials reported by edges: %w", err)
	}
	return n, nil
}
