// Command fitcheck refuses to package a model that cannot fit a Cloudflare Workers isolate. It estimates
// the worker's peak memory (edge.Fit: the model's float32 weights and one view's activations from
// cast.Config.Memory, the model file, a request at the worker's limits, the Go runtime and the wasm
// module), prints the parts in MiB against the 128 MiB isolate limit, and exits with status 1 when the
// total exceeds the budget (128 MiB less 16 MiB of headroom).
//
//	go run ./worker/cmd/fitcheck [-model FILE] [-wasm dist/worker/app.wasm]
//	go run ./worker/cmd/fitcheck -shards DIR [-wasm dist/shard-worker/app.wasm]
//
// Without -model it checks the embedded default int8 model, which the worker serves. With -shards it checks
// every stage of a sharded model (cast shard --out DIR) against a stage worker's isolate instead, with the
// estimate `cast shard` chooses the stage count by (shard.Fit: the packed weights once, one view's
// activations in and out and their wire buffers, the arena of live intermediates, the runtime, the JS copy
// of a message and the module, against 128 MiB less 8 MiB of headroom; and the CPU of one view against
// half the Workers default of 30 s); the figures measured in workerd are those of docs/edge-bench.sh.
package main

import (
	"flag"
	"fmt"
	"os"

	"path/filepath"

	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/shard"
	"github.com/castvideo/castgo/models"
	"github.com/castvideo/castgo/worker/edge"
)

func main() {
	modelPath := flag.String("model", "", "model file to check (default: the embedded default int8 model)")
	wasmPath := flag.String("wasm", "", "the worker's app.wasm, whose size counts against the budget")
	shardsDir := flag.String("shards", "", "check the stages of this sharded model directory instead")
	flag.Parse()
	var err error
	if *shardsDir != "" {
		err = runShards(*shardsDir, *wasmPath)
	} else {
		err = run(*modelPath, *wasmPath)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fitcheck:", err)
		os.Exit(1)
	}
}

func run(modelPath, wasmPath string) error {
	data, name := models.DefaultInt8Bytes(), "embedded "+models.DefaultName+"-int8"
	if modelPath != "" {
		var err error
		if data, err = os.ReadFile(modelPath); err != nil {
			return fmt.Errorf("reading the model: %w", err)
		}
		name = modelPath
	}
	f, err := modelfile.Parse(data)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", name, err)
	}
	var wasmBytes int64
	if wasmPath != "" {
		st, err := os.Stat(wasmPath)
		if err != nil {
			return fmt.Errorf("the wasm module: %w", err)
		}
		wasmBytes = st.Size()
	}
	cfg := f.Meta.Config
	params, _ := cfg.ParamCounts()
	fmt.Printf("fit check: %s (%q, %s, %d params, file %.2f MiB) in a 128 MiB isolate\n",
		name, f.Meta.Name, f.Meta.Quantization, params, float64(len(data))/(1<<20))
	r := edge.Fit(cfg, int64(len(data)), wasmBytes)
	r.Print(os.Stdout)
	if !r.OK {
		return fmt.Errorf("%s needs an estimated %.1f MiB, over the %d MiB budget: it cannot be packaged for the worker",
			name, float64(r.Total)/(1<<20), r.Budget>>20)
	}
	return nil
}

// runShards checks every stage file of a sharded model against the manifest and a stage worker's isolate.
func runShards(dir, wasmPath string) error {
	m, err := shard.Verify(dir)
	if err != nil {
		return err
	}
	var wasmBytes int64
	if wasmPath != "" {
		st, err := os.Stat(wasmPath)
		if err != nil {
			return fmt.Errorf("the wasm module: %w", err)
		}
		wasmBytes = st.Size()
	}
	fmt.Printf("fit check: %s (%q, %s, %d stages), each stage in a 128 MiB isolate\n", dir, m.Name, m.Quantization, len(m.Stages))
	var bad []string
	for i, e := range m.Stages {
		f, err := modelfile.Load(filepath.Join(dir, e.File))
		if err != nil {
			return fmt.Errorf("stage %q: %w", e.Name, err)
		}
		r := shard.Fit(m.Config, e.Stage(), shard.TensorBytes(f.Weights, e.Stage()), wasmBytes)
		r.Print(os.Stdout, m.Stages[i].Name)
		if !r.OK {
			bad = append(bad, e.Name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("stages %v are over the budget by the estimate: shard into more stages (cast shard without --stages picks the fewest that fit), or measure them in workerd (docs/edge-bench.sh)", bad)
	}
	return nil
}
