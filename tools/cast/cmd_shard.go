package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/shard"
	"github.com/spf13/cobra"
)

// shardOptions are the flags of `cast shard`.
type shardOptions struct {
	model  string // model file (or default / default-int8)
	out    string // directory to write
	stages int    // 0: the fewest that fit an isolate
	wasm   string // the shard worker's app.wasm, whose size counts against the budget (optional)
	verify string // instead of sharding: check this directory
	stdout io.Writer
}

func newShardCmd() *cobra.Command {
	o := &shardOptions{}
	cmd := &cobra.Command{
		Use:   "shard --model MODEL.safetensors --out DIR [--stages N]",
		Short: "Split a model file into stage files for a chain of edge workers (manifest + one file per stage)",
		Long: `Shard splits a model file into stages — the embedding, ranges of blocks, the head — for a chain of
edge isolates that each hold one stage (worker/README.md, "Sharded models"). DIR receives manifest.json (the
model's metadata and, per stage, its file's sha256, size and block range) and stage-I.safetensors: model files
holding only the stage's tensors (int8 stays int8), marked with their stage.

Without --stages it picks the fewest even split whose every stage fits a 128 MiB isolate by the stage worker's
estimate (printed per stage). --verify DIR checks a sharded directory instead: every stage file against the
manifest (a missing, swapped or altered stage is refused, named).`,
		Example: `  cast shard --model default-int8 --out shards/demo --stages 2
  cast shard --verify shards/demo
  cast shard --model default-int8 --out shards/demo-auto   # the fewest stages that fit an isolate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.stdout = cmd.OutOrStdout()
			return runShard(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "model file to shard (default, default-int8 or a path)")
	f.StringVar(&o.out, "out", "", "directory to write the manifest and stage files into")
	f.IntVar(&o.stages, "stages", 0, "number of stages (default: the fewest that fit an isolate)")
	f.StringVar(&o.wasm, "wasm", "", "the shard worker's app.wasm, whose size counts against an isolate (default: an estimate)")
	f.StringVar(&o.verify, "verify", "", "check a sharded directory against its manifest instead of sharding")
	return cmd
}

func runShard(_ context.Context, o *shardOptions) error {
	if o.verify != "" {
		m, err := shard.Verify(o.verify)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.stdout, "%s: %q, %d stages, every file matches the manifest\n", o.verify, m.Name, len(m.Stages))
		return nil
	}
	if o.out == "" {
		return fmt.Errorf("--out is required")
	}
	f, err := loadModelFile(o.model)
	if err != nil {
		return err
	}
	if f.Meta.Stage != nil {
		return fmt.Errorf("model %s is already a stage file (stage %d of %d)", o.model, f.Meta.Stage.Index, f.Meta.Stage.Count)
	}
	var wasmBytes int64
	if o.wasm != "" {
		st, err := os.Stat(o.wasm)
		if err != nil {
			return fmt.Errorf("--wasm: %w", err)
		}
		wasmBytes = st.Size()
	}
	cfg := f.Meta.Config
	var stages []cast.Stage
	var reps []shard.FitReport
	if o.stages > 0 {
		if stages, err = cast.SplitStages(cfg, o.stages); err != nil {
			return err
		}
		reps = shard.FitAll(f, stages, wasmBytes)
	} else {
		stages, reps, err = shard.FewestStages(f, wasmBytes)
		if err != nil {
			for i, r := range reps {
				r.Print(o.stdout, fmt.Sprintf("stage-%d", i))
			}
			return fmt.Errorf("%w; pass --stages to shard anyway", err)
		}
	}
	m, err := shard.Write(o.out, f, stages)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.stdout, "wrote %s: %q (%s) in %d stage(s); per stage, the stage worker's estimated peak for one view:\n",
		o.out, m.Name, m.Quantization, len(stages))
	for i, r := range reps {
		r.Print(o.stdout, m.Stages[i].Name)
	}
	for _, e := range m.Stages {
		fmt.Fprintf(o.stdout, "  %-8s %-24s %s  sha256 %s\n", e.Name, e.File, humanBytes(e.Size), e.SHA256[:16])
	}
	for _, r := range reps {
		if !r.OK {
			fmt.Fprintf(o.stdout, "warning: stage %s is over the isolate budget by the estimate; measure it in workerd (docs/edge-bench.sh)\n", r.Stage)
			break
		}
	}
	return nil
}
