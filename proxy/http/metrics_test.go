package httpproxy

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	for _, mf := range mfs {
		if name := mf.GetName(); len(name) < 11 || name[:11] != "vigie_http_" {
			t.Errorf("metric %s is not named vigie_http_*", name)
		}
	}
	// One proxy per registry: a second one is refused, not a panic.
	if _, err := newMetrics(reg); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}
