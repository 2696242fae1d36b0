// Package blockcount counts refusals by category for the DNS filter and
// the HTTP proxy. A CounterVec's WithLabelValues hashes the label and
// takes the vector's lock on every call; a refusal is on the hot path of a
// school under a blocklisted ad storm, so the counters of a generation's
// categories are resolved once, when the generation is first seen, and a
// refusal costs one map read.
package blockcount

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"vigie/proxy/generation"
)

// None is the label of refusals no list decided (an invalid name, say):
// it keeps the label set bounded.
const None = "none"

// Counters is a blocked-by-category CounterVec with its series resolved
// per generation. It is safe for concurrent use.
type Counters struct {
	vec *prometheus.CounterVec
	// extra are categories of the component's own refusals, present
	// whatever the generation.
	extra []string
	tab   atomic.Pointer[table]
}

type table struct {
	gen *generation.Generation
	by  map[string]prometheus.Counter
}

// New wraps vec, whose one label is the category.
func New(vec *prometheus.CounterVec, extra ...string) *Counters {
	return &Counters{vec: vec, extra: extra}
}

// See makes g's categories current: their series exist at zero from now
// on (the dashboard and increase() see a category's first refusal rather
// than a series born with its first count) and Inc finds them without a
// label lookup. It costs a pointer comparison once g is current; two
// callers racing on a new generation build the same table twice, which is
// harmless.
func (c *Counters) See(g *generation.Generation) {
	if t := c.tab.Load(); t != nil && t.gen == g {
		return
	}
	t := &table{gen: g, by: map[string]prometheus.Counter{None: c.vec.WithLabelValues(None)}}
	for _, e := range c.extra {
		t.by[e] = c.vec.WithLabelValues(e)
	}
	if g != nil && g.Rules != nil {
		for _, cat := range g.Rules.Categories() {
			t.by[cat.ID] = c.vec.WithLabelValues(cat.ID)
		}
	}
	c.tab.Store(t)
}

// Inc counts a refusal of category ("" for None). A category the current
// generation does not know (a request decided by the previous one, just
// replaced) is looked up by label, as before.
func (c *Counters) Inc(category string) {
	if category == "" {
		category = None
	}
	if t := c.tab.Load(); t != nil {
		if ctr, ok := t.by[category]; ok {
			ctr.Inc()
			return
		}
	}
	c.vec.WithLabelValues(category).Inc()
}
