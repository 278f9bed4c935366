package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/spf13/cobra"
)

// benchReport is the result of `cast bench` (its --json form).
type benchReport struct {
	Config         string  `json:"config"`
	Backend        string  `json:"backend"`
	Batch          int     `json:"batch"`
	Runs           int     `json:"runs"`
	WarmUpSeconds  float64 `json:"warmup_seconds"` // first forward, compilation included
	SecondsPerView float64 `json:"seconds_per_view"`
	GMACPerView    float64 `json:"gmac_per_view"`
	GFLOPS         float64 `json:"gflops"` // 2·MAC per second, in 10⁹
}

func init() {
	var (
		model, configSpec string
		runs, batch       int
		seed              uint64
		asJSON            bool
	)
	cmd := &cobra.Command{
		Use:   "bench [--model MODEL | --config PRESET|JSON] [--runs N] [--batch B]",
		Short: "Time the forward pass: seconds per view, GMAC per view and GFLOP/s on the chosen backend",
		Long: `Bench runs one warm-up forward pass (it includes graph compilation) and then times --runs forward passes of
--batch clips each, on the backend of --backend. It prints the seconds per view (one clip), the analytic compute
per view (GMAC, as cast info reports it) and the achieved GFLOP/s, counting 2 FLOPs per multiply-accumulate.

With --config, the weights are random (cast.InitWeights with --seed): the speed does not depend on their values,
so no checkpoint is needed to benchmark the full-size presets. Without --model or --config the embedded default
model is timed.`,
		Example: `  cast bench
  cast bench --config base-ssv2 --runs 3
  cast bench --backend xla --config base-k400 --batch 4 --runs 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runs < 1 || batch < 1 {
				return fmt.Errorf("--runs and --batch must be at least 1, got %d and %d", runs, batch)
			}
			if model != "" && configSpec != "" {
				return errors.New("give --model or --config, not both")
			}
			var (
				cfg  cast.Config
				set  weights.Set
				name string
			)
			if configSpec != "" {
				var err error
				if cfg, err = resolveConfig(configSpec); err != nil {
					return err
				}
				name, set = configName(configSpec), cast.InitWeights(cfg, seed)
			} else {
				f, err := loadModelFile(model)
				if err != nil {
					return err
				}
				cfg, set, name = f.Meta.Config, f.Weights, f.Meta.Name
			}
			be, desc, err := infer.NewBackend(backendFlag)
			if err != nil {
				return err
			}
			m, err := infer.New(be, cfg, set)
			if err != nil {
				return fmt.Errorf("loading the model: %w", err)
			}
			x := hashinit.Input(1, batch*m.ClipLen())
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "bench %s on %s: warm-up (compiles the graph)…\n", name, desc)
			t0 := time.Now()
			if _, err := m.Run(x, batch); err != nil {
				return fmt.Errorf("warm-up run: %w", err)
			}
			warm := time.Since(t0)
			bar := newProgress(stderr, runs, "timing")
			t1 := time.Now()
			for i := 0; i < runs; i++ {
				if _, err := m.Run(x, batch); err != nil {
					bar.Finish()
					return fmt.Errorf("run %d: %w", i+1, err)
				}
				bar.Set(i + 1)
			}
			elapsed := time.Since(t1).Seconds()
			bar.Finish()
			views := float64(runs * batch)
			macs := float64(cfg.MACs())
			r := benchReport{Config: name, Backend: desc, Batch: batch, Runs: runs, WarmUpSeconds: warm.Seconds(),
				SecondsPerView: elapsed / views, GMACPerView: macs / 1e9, GFLOPS: 2 * macs * views / elapsed / 1e9}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "config\tbackend\tbatch\truns\ts/view\tGMAC/view\tGFLOP/s\twarm-up s\n")
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.4f\t%.3f\t%.2f\t%.2f\n", r.Config, r.Backend, r.Batch, r.Runs,
				r.SecondsPerView, r.GMACPerView, r.GFLOPS, r.WarmUpSeconds)
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model file, or default (the embedded model; used when neither flag is given)")
	f.StringVar(&configSpec, "config", "", "time a preset or JSON config with random weights instead")
	f.IntVar(&runs, "runs", 5, "timed forward passes (after one warm-up)")
	f.IntVar(&batch, "batch", 1, "clips per forward pass")
	f.Uint64Var(&seed, "seed", 1, "weight seed for --config")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	rootCmd.AddCommand(cmd)
}
