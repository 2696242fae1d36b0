package dns

import (
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigie/proxy/blockcount"
	"vigie/rules"
)

// TestCountersStartAtZero: the counters whose label values are known when
// the server starts (the malformed actions, every upstream's error kinds
// and latency) are in a fresh registry at zero before any query, so that
// rate() and the upstream alerts see the first failure.
func TestCountersStartAtZero(t *testing.T) {
	h := newHarness(t, nil)
	fams := mustGather(t, h.reg)
	series := func(name string) map[string]float64 {
		got := map[string]float64{}
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.GetMetric() {
				var lv []string
				for _, l := range m.GetLabel() {
					lv = append(lv, l.GetName()+"="+l.GetValue())
				}
				v := m.GetCounter().GetValue()
				if hg := m.GetHistogram(); hg != nil {
					v = float64(hg.GetSampleCount())
				}
				got[strings.Join(lv, ",")] = v
			}
		}
		return got
	}
	up := "upstream=" + h.auth.addr
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"vigie_dns_malformed_total", []string{"action=drop", "action=formerr"}},
		{"vigie_dns_upstream_errors_total", []string{
			"kind=invalid," + up, "kind=network," + up, "kind=rcode," + up, "kind=refused," + up, "kind=timeout," + up,
		}},
		{"vigie_dns_upstream_duration_seconds", []string{up}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := series(tc.name)
			var keys []string
			for k, v := range got {
				keys = append(keys, k)
				if v != 0 {
					t.Errorf("%s{%s} = %v before any query, want 0", tc.name, k, v)
				}
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tc.want) {
				t.Errorf("%s series %q, want %q", tc.name, keys, tc.want)
			}
		})
	}
}

// TestBlockedCategoriesStartAtZero: once a generation serves its first
// query, every category it knows has a blocked-query series at zero, so
// the dashboard's per-category panel and increase() see a first refusal.
func TestBlockedCategoriesStartAtZero(t *testing.T) {
	h := newHarness(t, nil)
	h.ask(query{src: srcPersonnels, name: nameAllowed, qtype: mdns.TypeA})
	cats := testRules(t).Categories()
	if len(cats) == 0 {
		t.Fatal("test policy has no categories")
	}
	if n := testutil.CollectAndCount(h.srv.m.blocked); n != len(cats)+1 {
		t.Errorf("vigie_dns_blocked_total has %d series, want %d (each category and none)", n, len(cats)+1)
	}
	fams := mustGather(t, h.reg)
	for _, c := range append(cats, rules.CategoryInfo{ID: ""}) {
		lbl := c.ID
		if lbl == "" {
			lbl = blockcount.None
		}
		found := false
		for _, f := range fams {
			if f.GetName() != "vigie_dns_blocked_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "category" && l.GetValue() == lbl {
						found = true
						if v := m.GetCounter().GetValue(); v != 0 {
							t.Errorf("blocked{category=%q} = %v after one allowed query, want 0", lbl, v)
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("no vigie_dns_blocked_total{category=%q} series", lbl)
		}
	}
}
