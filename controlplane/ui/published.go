package ui

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"vigie/rules"
)

// publishedCache holds the compiled policy of the version in force,
// decoded once per serial from the bundle the publisher already keeps in
// memory: the Ruleset views the bundle's bytes, so this costs a
// verification and a few allocations, not a second copy of the lists.
type publishedCache struct {
	mu     sync.Mutex
	serial uint64
	rs     *rules.Ruleset
}

// publishedRules returns the Ruleset of the version in force (nil before
// the first publication).
func (h *Handler) publishedRules(ctx context.Context) (*rules.Ruleset, uint64, error) {
	head := h.pub.Head()
	if head.Serial == 0 {
		return nil, 0, nil
	}
	c := &h.published
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rs != nil && c.serial == head.Serial {
		return c.rs, c.serial, nil
	}
	b, err := h.pub.Bundle(ctx, head.Serial)
	if err != nil {
		return nil, 0, fmt.Errorf("ui: published version %d: %w", head.Serial, err)
	}
	// Integrity only, as the publisher reads its stored versions: the
	// version in force may predate a rotation of the académie key.
	rs, hdr, err := rules.DecodeBundle(b.Raw, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("ui: published version %d: %w", head.Serial, err)
	}
	c.rs, c.serial = rs, hdr.Serial
	return rs, hdr.Serial, nil
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }
