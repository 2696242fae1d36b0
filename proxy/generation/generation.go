// Package generation holds the policy generation in force at an edge. The
// DNS filter, the proxy and the firewall read it once per request through
// Current.Load; the sync agent replaces it with one atomic store, so a
// request is always judged by exactly one whole generation.
package generation

import (
	"sync/atomic"
	"time"

	"vigie/rules"
)

// Generation is one applied policy.
type Generation struct {
	Rules *rules.Ruleset
	// Serial is the bundle's serial (0 for the built-in strict policy).
	Serial uint64
	// Hash is the bundle's content hash in hexadecimal.
	Hash string
	// Applied is when this edge swapped it in.
	Applied time.Time
	// Fallback is true for the built-in strict policy an edge runs when it
	// has neither a control plane nor a last-known-good bundle.
	Fallback bool
}

// Current is the generation in force. The zero value holds none.
type Current struct{ p atomic.Pointer[Generation] }

// Load returns the generation in force, or nil before the first Store.
func (c *Current) Load() *Generation { return c.p.Load() }

// Store swaps g in.
func (c *Current) Store(g *Generation) { c.p.Store(g) }

// Serial returns the serial in force (0 when none).
func (c *Current) Serial() uint64 {
	if g := c.p.Load(); g != nil {
		return g.Serial
	}
	return 0
}
