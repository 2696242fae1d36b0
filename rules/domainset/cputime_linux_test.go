package domainset

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuClock measures the CPU time of the benchmark's own OS thread. On a
// shared machine wall-clock ns/op counts the time other processes hold the
// core; the "cpu-ns/op" metric it feeds does not, so it stays comparable
// between a quiet and a busy run.
type cpuClock struct{ start time.Duration }

func startCPUClock() cpuClock {
	runtime.LockOSThread()
	return cpuClock{threadCPU()}
}

// report adds the cpu-ns/op metric; call it after the b.Loop loop.
func (c cpuClock) report(b *testing.B) {
	elapsed := threadCPU() - c.start
	runtime.UnlockOSThread()
	if elapsed > 0 && b.N > 0 {
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
