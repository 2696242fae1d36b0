package httpbench

import (
	"context"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const clockTicks = 100 // USER_HZ on Linux

func numCPU() int { return runtime.NumCPU() }

// tree returns root and its descendants.
func tree(root int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) > 2 {
			pp, _ := strconv.Atoi(f[1])
			parent[pid] = pp
		}
	}
	out := []int{root}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if slices.Contains(out, pp) && !slices.Contains(out, pid) {
				out = append(out, pid)
				changed = true
			}
		}
	}
	return out
}

// statFields returns the fields of /proc/pid/stat after the command name
// (field 3 "state" is index 0).
func statFields(s string) []string {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// treeCPU is the user+system CPU time of root's process tree, including
// children it reaped.
func treeCPU(root int) time.Duration {
	var ticks int64
	for _, pid := range tree(root) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) < 15 {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// treeRSS is the resident memory of root's process tree and its size.
func treeRSS(root int) (int64, int) {
	var kb int64
	pids := tree(root)
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				f := strings.Fields(l)
				v, _ := strconv.ParseInt(f[1], 10, 64)
				kb += v
			}
		}
	}
	return kb * 1024, len(pids)
}

// sampleRSS samples the tree's memory every 500 ms until the returned
// function is called, which returns the peak.
func sampleRSS(root int) func() (int64, int) {
	var mu sync.Mutex
	var peak int64
	var procs int
	stop := make(chan struct{})
	done := make(chan struct{})
	take := func() {
		r, n := treeRSS(root)
		mu.Lock()
		if r > peak {
			peak, procs = r, n
		}
		mu.Unlock()
	}
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				take()
				return
			case <-t.C:
				take()
			}
		}
	}()
	return func() (int64, int) {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak, procs
	}
}

// profile saves a CPU profile of a helper serving net/http/pprof.
func profile(ctx context.Context, addr, path string, d time.Duration) {
	if addr == "" {
		return
	}
	url := "http://" + addr + "/debug/pprof/profile?seconds=" + strconv.Itoa(max(1, int(d.Seconds())))
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	os.MkdirAll(strings.TrimSuffix(path, "/"+lastElem(path)), 0o755)
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}

func lastElem(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianSample takes the median of each measure separately.
func medianSample(ss []Sample) Sample {
	f := func(get func(Sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = get(s)
		}
		return median(v)
	}
	return Sample{
		RPS:      f(func(s Sample) float64 { return s.RPS }),
		P50:      time.Duration(f(func(s Sample) float64 { return float64(s.P50) })),
		P99:      time.Duration(f(func(s Sample) float64 { return float64(s.P99) })),
		Requests: int64(f(func(s Sample) float64 { return float64(s.Requests) })),
		Errors:   int64(f(func(s Sample) float64 { return float64(s.Errors) })),
		CPU:      time.Duration(f(func(s Sample) float64 { return float64(s.CPU) })),
		RSS:      int64(f(func(s Sample) float64 { return float64(s.RSS) })),
		Procs:    int(f(func(s Sample) float64 { return float64(s.Procs) })),
	}
}
