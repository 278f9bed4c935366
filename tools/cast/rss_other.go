//go:build !linux

package main

// peakRSSMB is 0 (unknown) where getrusage's units are not known.
func peakRSSMB() float64 { return 0 }
