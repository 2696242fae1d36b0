package blockcount

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCounters(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_blocked_total", Help: "h"}, []string{"category"})
	c := New(vec, "port", "sni")
	// Before any generation: counted by label all the same.
	c.Inc("")
	if got := testutil.ToFloat64(vec.WithLabelValues(None)); got != 1 {
		t.Fatalf("none = %v before See, want 1", got)
	}
	c.See(nil) // no policy yet: only the component's own reasons
	if n := testutil.CollectAndCount(vec); n != 3 {
		t.Fatalf("%d series after See, want none, port and sni", n)
	}
	first := c.tab.Load()
	c.See(nil)
	if c.tab.Load() != first {
		t.Fatal("the table was rebuilt for the generation already current")
	}
	for range 3 {
		c.Inc("port")
	}
	c.Inc("")
	c.Inc("adult") // not in the table: by label
	for _, w := range []struct {
		label string
		want  float64
	}{{None, 2}, {"port", 3}, {"sni", 0}, {"adult", 1}} {
		if got := testutil.ToFloat64(vec.WithLabelValues(w.label)); got != w.want {
			t.Errorf("%s = %v, want %v", w.label, got, w.want)
		}
	}
}

func BenchmarkInc(b *testing.B) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b_blocked_total", Help: "h"}, []string{"category"})
	c := New(vec, "adult", "publicite", "jeux", "malware")
	c.See(nil)
	b.Run("resolved", func(b *testing.B) {
		for b.Loop() {
			c.Inc("publicite")
		}
	})
	b.Run("WithLabelValues", func(b *testing.B) {
		for b.Loop() {
			vec.WithLabelValues("publicite").Inc()
		}
	})
}
