package cast_test

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/castvideo/castgo/backend"
	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/internal/golden"
)

// BenchmarkForward times one forward pass of one clip for the demo config (random weights) and the golden
// configs tiny, small and (without -short) base, with the goldens' hash-recipe weights, on the default
// backend (castgo) and, for demo, tiny and small, on simplego too. Besides ns/op it reports s/view and
// GFLOP/s (2 FLOPs per analytic multiply-accumulate of cast.Config.MACs). With CASTGO_PROFILE=1 it logs the
// castgo per-step profile. Run it alone, e.g.
//
//	go test ./cast/ -run '^$' -bench 'Forward/(demo|tiny)' -benchtime 5x
func BenchmarkForward(b *testing.B) {
	for _, name := range []string{"demo", "tiny", "small", "base", "base-int8"} {
		for _, be := range []string{"go", "simplego"} {
			if be == "simplego" && strings.HasPrefix(name, "base") {
				continue
			}
			b.Run(name+"/"+be, func(b *testing.B) {
				if strings.HasPrefix(name, "base") && testing.Short() {
					b.Skip("base (390 GMAC per view) is skipped with -short")
				}
				var cfg cast.Config
				set := weights.Set{}
				if name == "demo" {
					cfg = cast.DemoConfig()
					set = cast.InitWeights(cfg, 1)
				} else {
					cfg = golden.Config(b, strings.TrimSuffix(name, "-int8"))
					for _, s := range cfg.StateDict() {
						set[s.Name] = weights.NewF32(s.Shape, hashinit.Tensor(1, s.Name, s.Shape))
					}
					if strings.HasSuffix(name, "-int8") {
						var err error
						if set, err = cast.QuantizeInt8(set, nil); err != nil {
							b.Fatal(err)
						}
					}
				}
				bk, _, err := infer.NewBackend(be)
				if err != nil {
					b.Fatal(err)
				}
				m, err := infer.New(bk, cfg, set)
				if err != nil {
					b.Fatal(err)
				}
				x := hashinit.Input(1, m.ClipLen())
				if _, err := m.Run(x, 1); err != nil { // warm-up: compiles the graph, packs the weights
					b.Fatal(err)
				}
				backend.ResetProfile()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if _, err := m.Run(x, 1); err != nil {
						b.Fatal(err)
					}
				}
				sec := time.Since(start).Seconds() / float64(b.N)
				b.ReportMetric(sec, "s/view")
				b.ReportMetric(2*float64(cfg.MACs())/sec/1e9, "GFLOP/s")
				if rss := rssMB("VmHWM:"); rss > 0 {
					b.ReportMetric(rss, "MB-peak-RSS")
					debug.FreeOSMemory() // what stays: weights, packed weights, pooled activations
					b.ReportMetric(rssMB("VmRSS:"), "MB-RSS-after-GC")
				}
				if be == "go" && os.Getenv("CASTGO_PROFILE") != "" {
					// to stderr: go test truncates benchmark logs
					fmt.Fprintf(os.Stderr, "%s: castgo profile (%d runs):\n%s", b.Name(), b.N, backend.ProfileReport(30))
				}
			})
		}
	}
}

// rssMB reads a /proc/self/status memory line (VmHWM: peak resident set, VmRSS: current) in MB, or 0 where
// /proc is not available. Run one sub-benchmark per process to attribute the peak (it includes building the
// weights, e.g. the float32 set before quantization).
func rssMB(key string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err == nil {
				return float64(kb) / 1024
			}
		}
	}
	return 0
}
