//go:build js || wasip1

package training

func cpuSeconds() float64 { return 0 }
