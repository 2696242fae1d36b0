package benchenv

import (
	"math"
	"testing"
)

func TestParseLoad(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Load
		wantErr bool
	}{
		{"0.42 0.11 0.04 1/234 5678\n", Load{0.42, 0.11, 0.04}, false},
		{"35.05 30.40 21.18 9/999 1", Load{35.05, 30.40, 21.18}, false},
		{"0.42 0.11", Load{}, true},
		{"x 0.11 0.04", Load{}, true},
	} {
		got, err := parseLoad(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseLoad(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{10}, 0},
		{[]float64{100, 115}, 0.15},
		{[]float64{120, 100, 110}, 0.2},
	} {
		if got := Spread(tc.in); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Spread(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
