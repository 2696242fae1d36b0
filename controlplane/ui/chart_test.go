package ui

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files and the kept screenshots")

// TestChartsGolden: the SVG charts are stable byte for byte; refresh with
// -update and review the diff.
func TestChartsGolden(t *testing.T) {
	a := &activity{ByCategory: map[string]int64{"adult": 1200, "games": 340, "social_networks": 980, "agressif": 12, "a": 1, "b": 1,
		"c": 1, "d": 1, "e": 1, "f": 1, "g": 1, "h": 1}}
	from := time.Date(2026, 3, 2, 8, 0, 0, 0, paris)
	for i := range a.Hourly {
		a.Hourly[i] = int64((i * 37) % 90)
	}
	label := func(id string) string {
		return map[string]string{"adult": "Adulte", "games": "Jeux <en ligne>"}[id] + id
	}
	got := string(barChart("c1", "Catégories & blocages", a.topCategories(6, label))) + "\n" +
		string(hourChart("c2", "Par heure", a.Hourly, from)) + "\n"
	golden := filepath.Join("testdata", "golden", "charts.svg")
	if *update {
		os.MkdirAll(filepath.Dir(golden), 0o755)
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("charts differ from %s (run with -update and review the diff):\n%s", golden, got)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[int64]int64{0: 1, 1: 1, 3: 5, 7: 10, 11: 20, 49: 50, 51: 100, 200: 200, 201: 500, 999_999: 1_000_000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", in, got, want)
		}
	}
}
