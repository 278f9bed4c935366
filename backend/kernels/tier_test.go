package kernels

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestMain runs the package's tests once per tier this build can run on this CPU (portable, then each
// faster tier), the default tier last, unless CAST_KERNELS fixes one. Benchmarks run in the default tier
// only (choose another with CAST_KERNELS).
func TestMain(m *testing.M) {
	flag.Parse()
	def := Tier()
	tiers := Tiers()
	if os.Getenv("CAST_KERNELS") != "" || flagSet("test.bench") {
		tiers = []string{def}
	}
	code := 0
	for _, name := range tiers {
		if err := setTier(name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if len(tiers) > 1 {
			fmt.Printf("--- kernels tier %s\n", name)
		}
		if c := m.Run(); c != 0 {
			fmt.Printf("FAIL in kernels tier %s\n", name)
			code = c
		}
	}
	if err := setTier(def); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != ""
}

// expectedTier is the tier the CPU's features call for, found independently of archsimd: from
// /proc/cpuinfo's flags on linux/amd64.
func expectedTier(t *testing.T) string {
	switch {
	case !simdBuild:
		return "portable"
	case runtime.GOARCH == "wasm":
		return "wasm-simd128"
	case runtime.GOARCH != "amd64":
		return "portable"
	}
	if runtime.GOOS != "linux" {
		t.Skipf("no /proc/cpuinfo on %s", runtime.GOOS)
	}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatalf("reading the CPU's features: %v", err)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			for _, f := range strings.Fields(v) {
				flags[f] = true
			}
			break
		}
	}
	if len(flags) == 0 {
		t.Fatal("/proc/cpuinfo has no flags line")
	}
	all := func(names ...string) bool {
		for _, n := range names {
			if !flags[n] {
				return false
			}
		}
		return true
	}
	switch {
	case all("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "fma", "avx512_vnni"):
		return "avx512-vnni"
	case all("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "fma"):
		return "avx512"
	case all("avx2", "fma"):
		return "avx2"
	}
	return "portable"
}

// The tier chosen at start-up (without CAST_KERNELS) is the best one the CPU's features allow.
func TestTierMatchesCPU(t *testing.T) {
	want := expectedTier(t)
	if env := os.Getenv("CAST_KERNELS"); env != "" {
		t.Logf("CAST_KERNELS=%s: checking the default choice through selectTier", env)
	}
	old := Tier()
	defer func() {
		if err := setTier(old); err != nil {
			t.Fatal(err)
		}
	}()
	if w := selectTier(""); w != "" || Tier() != want {
		t.Fatalf("default tier %q (warning %q), the CPU's features call for %q", Tier(), w, want)
	}
	tiers := Tiers()
	if tiers[len(tiers)-1] != want || tiers[0] != "portable" {
		t.Fatalf("Tiers() = %v: want portable first and %s last", tiers, want)
	}
}

// CAST_KERNELS forces a supported tier, and falls back with a warning for one the CPU or build lacks.
func TestTierForced(t *testing.T) {
	old := Tier()
	defer func() {
		if err := setTier(old); err != nil {
			t.Fatal(err)
		}
	}()
	if w := selectTier("portable"); w != "" || Tier() != "portable" || gemmNR != 4 {
		t.Fatalf("CAST_KERNELS=portable: tier %q NR %d, warning %q", Tier(), gemmNR, w)
	}
	best := Tiers()[len(Tiers())-1]
	for _, name := range []string{"avx2", "avx512", "wasm"} {
		w := selectTier(name)
		supported := false
		for _, s := range Tiers() {
			supported = supported || tierMatches(s, name)
		}
		switch {
		case supported && (w != "" || !tierMatches(Tier(), name)):
			t.Errorf("CAST_KERNELS=%s: tier %q, warning %q", name, Tier(), w)
		case !supported && (w == "" || Tier() != best):
			t.Errorf("CAST_KERNELS=%s (unsupported): tier %q, warning %q; want %s and a warning", name, Tier(), w, best)
		}
	}
	if w := selectTier("sse9"); w == "" || Tier() != best || !strings.Contains(w, "sse9") {
		t.Fatalf("CAST_KERNELS=sse9: tier %q, warning %q", Tier(), w)
	}
	if err := setTier("sse9"); err == nil {
		t.Fatal("setTier(sse9) succeeded")
	}
}
