package publish

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPublishesStartAtZero checks that every kind and result of
// vigie_controlplane_publishes_total is exported before any publication,
// and that a publication moves only its own series.
func TestPublishesStartAtZero(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	p, err := New(context.Background(), f.st, Config{DataDir: f.dir, Key: f.key, Registry: reg, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	read := func() map[[2]string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[[2]string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "vigie_controlplane_publishes_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				var k [2]string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "kind":
						k[0] = l.GetValue()
					case "result":
						k[1] = l.GetValue()
					}
				}
				out[k] = m.GetCounter().GetValue()
			}
		}
		return out
	}
	got := read()
	for _, kind := range []string{"publish", "rollback"} {
		for _, result := range []string{"ok", "invalid", "error"} {
			if v, ok := got[[2]string{kind, result}]; !ok || v != 0 {
				t.Errorf("publishes_total{kind=%q,result=%q} = %v (present %v), want 0", kind, result, v, ok)
			}
		}
	}
	if _, err := p.Publish(context.Background(), rssi, "première", false); err != nil {
		t.Fatal(err)
	}
	got = read()
	if got[[2]string{"publish", "ok"}] != 1 || got[[2]string{"publish", "error"}] != 0 || len(got) != 6 {
		t.Fatalf("after one publication: %v", got)
	}
}
