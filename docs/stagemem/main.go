// Command stagemem measures the memory of one stage of a sharded model, phase by phase, the way a stage
// worker uses it (package worker/stage): read the stage file, check and parse it, load the weights, drop
// the file's bytes, run one view twice. It prints, after each phase, the Go heap in use (HeapAlloc), the
// most the heap has been (the peak of HeapAlloc sampled every millisecond) and Sys, the memory the runtime
// holds from the OS (under GOOS=js GOARCH=wasm, about the wasm linear memory, which never shrinks).
//
//	go run ./docs/stagemem -dir DIR/shards -stage 1
//	GOOS=js GOARCH=wasm go run -exec="$(go env GOROOT)/lib/wasm/go_js_wasm_exec" ./docs/stagemem -dir … -stage 1
//
// It is a measurement, not a test: the stage files come from `cast shard` (see worker/README.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/castvideo/castgo/cast/shard"
	"github.com/castvideo/castgo/worker/stage"
)

var peak atomic.Uint64

func main() {
	dir := flag.String("dir", "", "directory of a sharded model (manifest.json and its stage files)")
	idx := flag.Int("stage", 1, "index of the stage to measure")
	limit := flag.Int64("limit", 96<<20, "debug.SetMemoryLimit in bytes, as the shard worker (0: none)")
	gc := flag.Int("gcpercent", stage.GCPercent, "debug.SetGCPercent, as the shard worker (-2: leave Go's default)")
	runs := flag.Int("runs", 2, "views to run")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: stagemem -dir DIR -stage N")
		os.Exit(2)
	}
	if err := run(*dir, *idx, *limit, *gc, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "stagemem:", err)
		os.Exit(1)
	}
}

func run(dir string, idx int, limit int64, gc, runs int) error {
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	if gc != -2 {
		debug.SetGCPercent(gc)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sample the heap's peak
		defer wg.Done()
		var ms runtime.MemStats
		for !stop.Load() {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()

	report("start")
	m, err := shard.ReadManifest(dir)
	if err != nil {
		return err
	}
	if idx < 0 || idx >= len(m.Stages) {
		return fmt.Errorf("stage %d: the manifest has %d stages", idx, len(m.Stages))
	}
	e := m.Stages[idx]
	data, err := os.ReadFile(filepath.Join(dir, e.File))
	if err != nil {
		return err
	}
	report(fmt.Sprintf("read %s (%.1f MiB)", e.File, float64(len(data))/(1<<20)))
	st, err := stage.Load(m, idx, data)
	if err != nil {
		return err
	}
	report("loaded (check, parse, weights)")
	data = nil //nolint:ineffassign // the worker drops the bytes here
	runtime.GC()
	debug.FreeOSMemory()
	report("file bytes dropped, GC")
	shapes := st.Entry.Stage().Inputs(m.Config, 1)
	for r := 1; r <= runs; r++ {
		t0 := time.Now()
		out, err := st.Model.RunFill(1, func(i int, dst []float32) error {
			for j := range dst {
				dst[j] = float32((j*7+i)%13) / 13
			}
			return nil
		})
		if err != nil {
			return err
		}
		n := 0
		for _, o := range out {
			n += len(o)
		}
		report(fmt.Sprintf("run %d (%v inputs → %d outputs, %.1f s)", r, shapes, n, time.Since(t0).Seconds()))
		out = nil //nolint:ineffassign
		runtime.GC()
		report(fmt.Sprintf("after run %d, GC", r))
	}
	runtime.KeepAlive(st)
	return nil
}

func report(phase string) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > peak.Load() {
		peak.Store(ms.HeapAlloc)
	}
	fmt.Printf("%-48s heap %7.1f MiB  peak %7.1f MiB  Sys %7.1f MiB  HeapSys %7.1f  HeapReleased %7.1f\n", phase,
		mib(ms.HeapAlloc), mib(peak.Load()), mib(ms.Sys), mib(ms.HeapSys), mib(ms.HeapReleased))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
