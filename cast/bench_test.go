package cast_test

import (
	"os"
	"testing"
	"time"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/internal/golden"
)

// BenchmarkForward times one forward pass of one clip on the pure-Go backend for the golden configs tiny,
// small and (without -short) base, with the goldens' hash-recipe weights. Besides ns/op it reports s/view
// and GFLOP/s (2 FLOPs per analytic multiply-accumulate of cast.Config.MACs). Run it alone, e.g.
//
//	go test ./cast/ -run '^$' -bench Forward/tiny -benchtime 5x
func BenchmarkForward(b *testing.B) {
	for _, name := range []string{"tiny", "small", "base"} {
		b.Run(name, func(b *testing.B) {
			if name == "base" && testing.Short() {
				b.Skip("base (390 GMAC per view) is skipped with -short")
			}
			data, err := os.ReadFile(golden.Path(b, "goldens", name, "config.json"))
			if err != nil {
				b.Fatal(err)
			}
			cfg, err := cast.ParseConfig(data)
			if err != nil {
				b.Fatal(err)
			}
			set := weights.Set{}
			for _, s := range cfg.StateDict() {
				set[s.Name] = weights.NewF32(s.Shape, hashinit.Tensor(1, s.Name, s.Shape))
			}
			be, _, err := infer.NewBackend("go")
			if err != nil {
				b.Fatal(err)
			}
			m, err := infer.New(be, cfg, set)
			if err != nil {
				b.Fatal(err)
			}
			x := hashinit.Input(1, m.ClipLen())
			if _, err := m.Run(x, 1); err != nil { // warm-up: compiles the graph
				b.Fatal(err)
			}
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
		})
	}
}
