// Package benchenv reads the conditions a benchmark ran under (the
// machine, its load) and finds the repository, for every part of bench/.
// A figure measured on a busy machine is not a figure: the runner uses
// these readings to repeat a part or to mark it noisy ("bruité").
package benchenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Load is the kernel's load averages over 1, 5 and 15 minutes.
type Load struct {
	One, Five, Fifteen float64
}

// ReadLoad reads /proc/loadavg; on a system without it, the zero Load and
// an error.
func ReadLoad() (Load, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return Load{}, fmt.Errorf("benchenv: %w", err)
	}
	return parseLoad(string(b))
}

func parseLoad(s string) (Load, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return Load{}, fmt.Errorf("benchenv: /proc/loadavg %q: fewer than three fields", s)
	}
	var v [3]float64
	for i := range v {
		x, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Load{}, fmt.Errorf("benchenv: /proc/loadavg field %d %q: %w", i+1, f[i], err)
		}
		v[i] = x
	}
	return Load{v[0], v[1], v[2]}, nil
}

// String gives the three averages as /proc/loadavg does, or "?" when
// they could not be read.
func (l Load) String() string {
	if l == (Load{}) {
		return "?"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.One, l.Five, l.Fifteen)
}

// LoadText is ReadLoad as text, for the parts that only print it.
func LoadText() string {
	l, err := ReadLoad()
	if err != nil {
		return "?"
	}
	return l.String()
}

// CPUModel is the first "model name" of /proc/cpuinfo.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

// Machine is a one-line description: CPU model and core count.
func Machine() string {
	return fmt.Sprintf("%s, %d cores", CPUModel(), runtime.NumCPU())
}

// FindRoot returns the directory holding the go.mod of module vigie,
// from dir (the working directory when empty) upwards.
func FindRoot(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(data), "module vigie\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of module vigie in %s or above: run from the repository", dir)
		}
	}
}

// Spread is the relative spread of repeated measurements of one quantity,
// (max − min) / min: 0.15 means the slowest and fastest runs differ by
// 15 %. It is 0 for fewer than two samples.
func Spread(samples []float64) float64 {
	if len(samples) < 2 {
		return 0
	}
	lo, hi := samples[0], samples[0]
	for _, s := range samples[1:] {
		lo, hi = min(lo, s), max(hi, s)
	}
	if lo <= 0 {
		return 0
	}
	return (hi - lo) / lo
}
