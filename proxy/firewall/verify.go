package firewall

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	plan "vigie/rules/firewall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// verify reads Vigie's table back and compares it with what was sent:
// counters, sets and their elements, chains with their hooks, and every
// rule's expressions. The first difference is the error.
func verify(c *nftables.Conn, o *objects) error {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == plan.TableName }) {
		return fmt.Errorf("table inet %s is missing", plan.TableName)
	}

	have, err := readCounters(c)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, obj := range o.counters {
		want[obj.Name] = true
		if _, ok := have[obj.Name]; !ok {
			return fmt.Errorf("counter %s is missing", obj.Name)
		}
	}
	for name := range have {
		if !want[name] {
			return fmt.Errorf("unexpected counter %s", name)
		}
	}

	sets, err := c.GetSets(o.table)
	if err != nil {
		return fmt.Errorf("list sets: %w", err)
	}
	if len(sets) != len(o.sets) {
		return fmt.Errorf("%d sets, want %d", len(sets), len(o.sets))
	}
	for _, ws := range o.sets {
		i := slices.IndexFunc(sets, func(s *nftables.Set) bool { return s.Name == ws.Name })
		if i < 0 {
			return fmt.Errorf("set %s is missing", ws.Name)
		}
		hs := sets[i]
		if hs.KeyType.Name != ws.KeyType.Name || !hs.Interval {
			return fmt.Errorf("set %s: type %s interval=%v, want %s interval", ws.Name, hs.KeyType.Name, hs.Interval, ws.KeyType.Name)
		}
		els, err := c.GetSetElements(hs)
		if err != nil {
			return fmt.Errorf("set %s: elements: %w", ws.Name, err)
		}
		if got, exp := elementKeys(els), elementKeys(o.elements[ws.Name]); !slices.Equal(got, exp) {
			return fmt.Errorf("set %s: %d elements differ from the %d sent", ws.Name, len(got), len(exp))
		}
	}

	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list chains: %w", err)
	}
	var mine []*nftables.Chain
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == plan.TableName {
			mine = append(mine, ch)
		}
	}
	if len(mine) != len(o.chains) {
		return fmt.Errorf("%d chains, want %d", len(mine), len(o.chains))
	}
	for _, wc := range o.chains {
		i := slices.IndexFunc(mine, func(ch *nftables.Chain) bool { return ch.Name == wc.Name })
		if i < 0 {
			return fmt.Errorf("chain %s is missing", wc.Name)
		}
		if err := sameChain(mine[i], wc); err != nil {
			return fmt.Errorf("chain %s: %w", wc.Name, err)
		}
		rules, err := c.GetRules(o.table, wc)
		if err != nil {
			return fmt.Errorf("chain %s: rules: %w", wc.Name, err)
		}
		wr := o.rules[wc.Name]
		if len(rules) != len(wr) {
			return fmt.Errorf("chain %s: %d rules, want %d", wc.Name, len(rules), len(wr))
		}
		for j := range wr {
			if got, exp := exprsText(rules[j].Exprs), exprsText(wr[j].Exprs); got != exp {
				return fmt.Errorf("chain %s rule %d: kernel has %s, sent %s", wc.Name, j+1, got, exp)
			}
			if !bytes.Equal(rules[j].UserData, wr[j].UserData) {
				return fmt.Errorf("chain %s rule %d: comment differs", wc.Name, j+1)
			}
		}
	}
	return nil
}

func sameChain(h, w *nftables.Chain) error {
	if (h.Hooknum == nil) != (w.Hooknum == nil) {
		return fmt.Errorf("base chain mismatch")
	}
	if w.Hooknum == nil {
		return nil
	}
	switch {
	case *h.Hooknum != *w.Hooknum:
		return fmt.Errorf("hook %d, want %d", *h.Hooknum, *w.Hooknum)
	case h.Priority == nil || *h.Priority != *w.Priority:
		return fmt.Errorf("priority differs")
	case h.Type != w.Type:
		return fmt.Errorf("type %s, want %s", h.Type, w.Type)
	case h.Policy == nil || *h.Policy != *w.Policy:
		return fmt.Errorf("policy differs")
	}
	return nil
}

// elementKeys is a set's elements in a comparable, sorted form.
func elementKeys(els []nftables.SetElement) []string {
	out := make([]string, len(els))
	for i, e := range els {
		end := "start"
		if e.IntervalEnd {
			end = "end"
		}
		out[i] = hex.EncodeToString(e.Key) + "/" + end
	}
	slices.Sort(out)
	return out
}

// exprsText prints expressions for comparison. The set ID of a lookup
// exists only inside the batch that created the set; the kernel reports
// the name alone.
func exprsText(ex []expr.Any) string {
	var b strings.Builder
	for _, e := range ex {
		if l, ok := e.(*expr.Lookup); ok {
			cp := *l
			cp.SetID = 0
			e = &cp
		}
		v := reflect.ValueOf(e)
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		fmt.Fprintf(&b, "[%T %+v]", e, v.Interface())
	}
	return b.String()
}
