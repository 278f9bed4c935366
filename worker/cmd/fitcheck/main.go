// Command fitcheck refuses to package a model that cannot fit a Cloudflare Workers isolate. It estimates
// the worker's peak memory (edge.Fit: the model's float32 weights and one view's activations from
// cast.Config.Memory, the model file, a request at the worker's limits, the Go runtime and the wasm
// module), prints the parts in MiB against the 128 MiB isolate limit, and exits with status 1 when the
// total exceeds the budget (128 MiB less 16 MiB of headroom).
//
//	go run ./worker/cmd/fitcheck [-model FILE] [-wasm dist/worker/app.wasm]
//
// Without -model it checks the embedded default int8 model, which the worker serves.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/models"
	"github.com/castvideo/castgo/worker/edge"
)

func main() {
	modelPath := flag.String("model", "", "model file to check (default: the embedded default int8 model)")
	wasmPath := flag.String("wasm", "", "the worker's app.wasm, whose size counts against the budget")
	flag.Parse()
	if err := run(*modelPath, *wasmPath); err != nil {
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
