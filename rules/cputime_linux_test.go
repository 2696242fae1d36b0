package rules_test

import (
	"syscall"
	"time"
	"unsafe"
)

// threadClock returns the CPU time of the calling OS thread
// (CLOCK_THREAD_CPUTIME_ID, nanosecond resolution). The paired benchmark
// locks its goroutine to its thread and times blocks with it, so that time
// other processes hold the core is not counted on either side.
func threadClock() time.Duration {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return time.Duration(time.Now().UnixNano())
	}
	return time.Duration(ts.Nano())
}
