package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

// startProfile starts a CPU profile of the whole run and a memory trace
// (every 250 ms: Go heap figures beside the kernel's resident set) in dir.
// end stops both and writes the heap profile and the memory figures of
// the moment: the benchmark reads VmRSS just before it stops the server,
// so these say what that resident memory is made of.
func startProfile(dir string) (end func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	trace, err := os.Create(filepath.Join(dir, "mem.tsv"))
	if err != nil {
		pprof.StopCPUProfile()
		cpu.Close()
		return nil, err
	}
	fmt.Fprintln(trace, "t_s\theap_alloc_mib\theap_inuse_mib\theap_idle_mib\theap_released_mib\tnext_gc_mib\tnum_gc\trss_anon_mib\trss_file_mib")
	start := time.Now()
	stopTrace := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			writeMemLine(trace, start)
			select {
			case <-t.C:
			case <-stopTrace:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stopTrace)
			wg.Wait()
			writeMemLine(trace, start)
			trace.Close()
			pprof.StopCPUProfile()
			cpu.Close()
			var b bytes.Buffer
			writeMemFigures(&b)
			os.WriteFile(filepath.Join(dir, "memory.txt"), b.Bytes(), 0o644)
			if f, err := os.Create(filepath.Join(dir, "heap.pprof")); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		})
	}, nil
}

func writeMemLine(f *os.File, start time.Time) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := procStatus()
	const mib = 1 << 20
	fmt.Fprintf(f, "%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%.1f\n", time.Since(start).Seconds(),
		float64(ms.HeapAlloc)/mib, float64(ms.HeapInuse)/mib, float64(ms.HeapIdle)/mib, float64(ms.HeapReleased)/mib,
		float64(ms.NextGC)/mib, ms.NumGC, float64(st["RssAnon"])/mib, float64(st["RssFile"])/mib)
}

func writeMemFigures(b *bytes.Buffer) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := procStatus()
	const mib = 1 << 20
	for _, k := range []string{"VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"} {
		fmt.Fprintf(b, "%s\t%.1f MiB\n", k, float64(st[k])/mib)
	}
	fmt.Fprintf(b, "HeapAlloc\t%.1f MiB\nHeapInuse\t%.1f MiB\nHeapIdle\t%.1f MiB\nHeapReleased\t%.1f MiB\n",
		float64(ms.HeapAlloc)/mib, float64(ms.HeapInuse)/mib, float64(ms.HeapIdle)/mib, float64(ms.HeapReleased)/mib)
	fmt.Fprintf(b, "StackInuse\t%.1f MiB\nSys\t%.1f MiB\nNextGC\t%.1f MiB\nNumGC\t%d\nTotalAlloc\t%.1f MiB\nMallocs\t%d\n",
		float64(ms.StackInuse)/mib, float64(ms.Sys)/mib, float64(ms.NextGC)/mib, ms.NumGC, float64(ms.TotalAlloc)/mib, ms.Mallocs)
}

// procStatus reads the kB figures of /proc/self/status, in bytes.
func procStatus() map[string]int64 {
	out := map[string]int64{}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasSuffix(v, " kB") {
			continue
		}
		var n int64
		fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(v, " kB")), &n)
		out[k] = n << 10
	}
	return out
}
