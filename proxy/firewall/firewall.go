// Package firewall applies a school's planned firewall (vigie/rules/firewall)
// to the kernel: one netlink batch that replaces Vigie's table "inet vigie"
// and nothing else, read back to verify it, and the named drop counters
// read for metrics. The kernel takes a batch whole or not at all, so a
// failed apply leaves the previous ruleset in force.
package firewall

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	plan "vigie/rules/firewall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are what a Firewall is given rather than reaching for.
type Options struct {
	// NetNS is an open network namespace file descriptor to work in (the
	// lab, "vigie firewall apply --netns"); 0 means the caller's namespace.
	NetNS int
	Log   *slog.Logger
	// Registry receives the vigie_firewall_* metrics; nil registers none.
	Registry prometheus.Registerer
	Now      func() time.Time
}

// Firewall applies rulesets to one network namespace's kernel.
type Firewall struct {
	netns int
	log   *slog.Logger
	now   func() time.Time

	mu sync.Mutex
	// current is the ruleset in force, restored when a new one fails its
	// read-back check.
	current *plan.Ruleset
	// base holds counter values from tables already replaced: replacing
	// the table zeroes its counters, the metrics must not go backwards.
	base map[string]Count

	applies     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	rules       prometheus.Gauge
}

// Count is a named counter's value.
type Count struct{ Packets, Bytes uint64 }

// New returns a Firewall; it touches nothing until Apply.
func New(o Options) (*Firewall, error) {
	f := &Firewall{netns: o.NetNS, log: o.Log, now: o.Now, base: map[string]Count{}}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.applies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigie_firewall_applies_total",
		Help: "Firewall rulesets applied, by result (ok, error).",
	}, []string{"result"})
	f.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigie_firewall_last_apply_success_timestamp_seconds",
		Help: "When a firewall ruleset was last applied and verified.",
	})
	f.rules = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigie_firewall_rules",
		Help: "Rules in the firewall ruleset in force.",
	})
	f.applies.WithLabelValues("ok")
	f.applies.WithLabelValues("error")
	if o.Registry != nil {
		for _, c := range []prometheus.Collector{f.applies, f.lastSuccess, f.rules, newCollector(f)} {
			if err := o.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("firewall: metrics: %w", err)
			}
		}
	}
	return f, nil
}

func (f *Firewall) conn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(bigBuffers)}
	if f.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(f.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("firewall: netlink: %w", err)
	}
	return c, nil
}

// Apply replaces Vigie's table with rs in one batch and reads it back.
// On error the previous ruleset is in force: the kernel refused the batch
// whole, or the read-back found a difference and the previous ruleset
// was put back.
func (f *Firewall) Apply(rs *plan.Ruleset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := f.now()
	err := f.apply(rs)
	if err != nil {
		f.applies.WithLabelValues("error").Inc()
		f.log.Error("firewall not applied", "uai", rs.UAI, "err", err)
		return err
	}
	f.applies.WithLabelValues("ok").Inc()
	f.lastSuccess.Set(float64(f.now().UnixNano()) / 1e9)
	f.rules.Set(float64(rs.Rules()))
	f.log.Info("firewall applied", "uai", rs.UAI, "rules", rs.Rules(), "sets", len(rs.Sets),
		"took", f.now().Sub(start).Round(time.Millisecond))
	return nil
}

func (f *Firewall) apply(rs *plan.Ruleset) error {
	o, err := toObjects(rs)
	if err != nil {
		return fmt.Errorf("firewall: school %s: %w", rs.UAI, err)
	}
	c, err := f.conn()
	if err != nil {
		return err
	}
	// The counters of the table about to go; they join the base only once
	// the new table is in.
	before, _ := readCounters(c)
	if err := queue(c, o); err != nil {
		return fmt.Errorf("firewall: school %s: %w", rs.UAI, err)
	}
	if ferr := c.Flush(); ferr != nil {
		// A refused batch changed nothing. A lost acknowledgement may hide
		// a batch that did apply: the read-back tells which.
		if verify(c, o) != nil {
			return fmt.Errorf("firewall: apply school %s: the kernel refused the batch, the previous ruleset stays: %w", rs.UAI, ferr)
		}
		f.log.Warn("firewall batch acknowledged with an error but verified in place", "err", ferr)
	}
	if verr := verify(c, o); verr != nil {
		err := fmt.Errorf("firewall: apply school %s: read-back differs: %w", rs.UAI, verr)
		return errors.Join(err, f.restore(c))
	}
	for name, v := range before {
		b := f.base[name]
		f.base[name] = Count{b.Packets + v.Packets, b.Bytes + v.Bytes}
	}
	f.current = rs
	return nil
}

// restore puts the previous ruleset back after a failed read-back, or
// removes the table when there was none: better no Vigie table than one
// that is not what was rendered.
func (f *Firewall) restore(c *nftables.Conn) error {
	if f.current == nil {
		c.AddTable(table())
		c.DelTable(table())
		if err := c.Flush(); err != nil {
			return fmt.Errorf("firewall: remove unverified table: %w", err)
		}
		return nil
	}
	o, err := toObjects(f.current)
	if err == nil {
		err = queue(c, o)
	}
	if err == nil {
		err = c.Flush()
	}
	if err != nil {
		return fmt.Errorf("firewall: restore previous ruleset: %w", err)
	}
	return nil
}

// Verify checks that the kernel holds exactly rs in Vigie's table.
func (f *Firewall) Verify(rs *plan.Ruleset) error {
	o, err := toObjects(rs)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	c, err := f.conn()
	if err != nil {
		return err
	}
	if err := verify(c, o); err != nil {
		return fmt.Errorf("firewall: verify school %s: %w", rs.UAI, err)
	}
	return nil
}

// Remove deletes Vigie's table, if there is one. Nothing else is touched.
func (f *Firewall) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.conn()
	if err != nil {
		return err
	}
	c.AddTable(table())
	c.DelTable(table())
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: remove table inet %s: %w", plan.TableName, err)
	}
	f.current = nil
	return nil
}

// Counters returns every named counter's value since this Firewall first
// applied a table, across table replacements.
func (f *Firewall) Counters() (map[string]Count, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counters()
}

func (f *Firewall) counters() (map[string]Count, error) {
	c, err := f.conn()
	if err != nil {
		return nil, err
	}
	out := make(map[string]Count, len(f.base))
	for k, v := range f.base {
		out[k] = v
	}
	if f.current == nil {
		// Nothing applied yet: no table of ours to read.
		return out, nil
	}
	now, err := readCounters(c)
	if err != nil {
		return out, err
	}
	for k, v := range now {
		b := out[k]
		out[k] = Count{b.Packets + v.Packets, b.Bytes + v.Bytes}
	}
	return out, nil
}

// ReadCounters reads the named counters of Vigie's table in the namespace
// netns (0: the caller's), as the kernel holds them now.
func ReadCounters(netns int) (map[string]Count, error) {
	f := &Firewall{netns: netns}
	c, err := f.conn()
	if err != nil {
		return nil, err
	}
	return readCounters(c)
}

func readCounters(c *nftables.Conn) (map[string]Count, error) {
	objs, err := c.GetNamedObjects(table())
	if err != nil {
		return nil, fmt.Errorf("firewall: read counters: %w", err)
	}
	out := map[string]Count{}
	for _, o := range objs {
		no, ok := o.(*nftables.NamedObj)
		if !ok || no.Type != nftables.ObjTypeCounter || no.Table == nil || no.Table.Name != plan.TableName {
			continue
		}
		if ctr, ok := no.Obj.(*expr.Counter); ok {
			out[no.Name] = Count{ctr.Packets, ctr.Bytes}
		}
	}
	return out, nil
}
