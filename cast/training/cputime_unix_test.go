//go:build !(js || wasip1)

package training

import "syscall"

// cpuSeconds is the user+system CPU time of the process: on a shared, loaded machine the CPU seconds per
// step are a steadier figure than the wall-clock rate.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
