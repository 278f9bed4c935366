package cpu

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	profOn   atomic.Bool
	profMu   sync.Mutex
	profData = map[string]*ProfileEntry{}
)

// ProfileEntry is the accumulated wall time of the plan steps with one label (op kind and shape).
type ProfileEntry struct {
	Label string
	Count int
	Total time.Duration
}

// EnableProfile turns the per-step profile on or off (CASTGO_PROFILE=1 or the "profile" config option turn
// it on for the process).
func EnableProfile(on bool) { profOn.Store(on) }

func profiling() bool { return profOn.Load() }

func recordProfile(label string, d time.Duration) {
	profMu.Lock()
	p := profData[label]
	if p == nil {
		p = &ProfileEntry{Label: label}
		profData[label] = p
	}
	p.Count++
	p.Total += d
	profMu.Unlock()
}

// ResetProfile clears the accumulated profile.
func ResetProfile() {
	profMu.Lock()
	profData = map[string]*ProfileEntry{}
	profMu.Unlock()
}

// Profile returns the accumulated profile entries, the most expensive first.
func Profile() []ProfileEntry {
	profMu.Lock()
	out := make([]ProfileEntry, 0, len(profData))
	for _, p := range profData {
		out = append(out, *p)
	}
	profMu.Unlock()
	slices.SortFunc(out, func(a, b ProfileEntry) int {
		if a.Total != b.Total {
			if a.Total > b.Total {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Label, b.Label)
	})
	return out
}

// ProfileReport formats the profile as a table sorted by total time (at most top rows; top ≤ 0: all).
func ProfileReport(top int) string {
	entries := Profile()
	var total time.Duration
	for _, p := range entries {
		total += p.Total
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%10s %6s %10s %6s  %s\n", "total", "calls", "per call", "%", "step (op, shape)")
	for i, p := range entries {
		if top > 0 && i >= top {
			fmt.Fprintf(&sb, "… %d more\n", len(entries)-top)
			break
		}
		pct := 0.0
		if total > 0 {
			pct = 100 * float64(p.Total) / float64(total)
		}
		fmt.Fprintf(&sb, "%10s %6d %10s %5.1f%%  %s\n", p.Total.Round(time.Microsecond), p.Count,
			(p.Total / time.Duration(p.Count)).Round(time.Microsecond), pct, p.Label)
	}
	fmt.Fprintf(&sb, "%10s total\n", total.Round(time.Microsecond))
	return sb.String()
}
