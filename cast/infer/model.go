package infer

import (
	"errors"
	"fmt"
	"sync"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Model is a CAST model loaded on a backend, ready to run clips. It is safe for concurrent use; runs are
// serialised.
type Model struct {
	Config  cast.Config
	backend backends.Backend
	ctx     *context.Context
	exec    *context.Exec
	mu      sync.Mutex
}

// New loads the weights (checked against cfg) into a fresh context on backend b.
func New(b backends.Backend, cfg cast.Config, set weights.Set) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx := context.New()
	if err := cast.LoadWeights(ctx, cfg, set, false); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, backend: b, ctx: ctx}
	exec, err := context.NewExec(b, ctx.Reuse(), func(ctx *context.Context, x *graph.Node) []*graph.Node {
		return cast.Forward(ctx, cfg, x, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("building the CAST graph: %w", err)
	}
	m.exec = exec
	return m, nil
}

var errClosed = errors.New("running CAST: the model was closed")

// Close releases the compiled graph, the weights and what the backend holds for them (packed weight copies;
// on WebGPU the weights on the device) now rather than at garbage collection; a running Run finishes first,
// later ones fail.
func (m *Model) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec != nil {
		m.exec.Finalize()
		m.ctx.Finalize()
		m.exec = nil
	}
}

// ClipLen is the number of float32 values in one normalised clip [3, T, H, W].
func (m *Model) ClipLen() int {
	c := m.Config
	return c.InChans * c.AllFrames * c.ImgSize * c.ImgSize
}

// Run classifies batch clips given as float32 [B, 3, T, H, W] in C order and returns one logits slice per
// head (Config.Heads() order), each [B·classes] in C order.
func (m *Model) Run(x []float32, batch int) (logits [][]float32, err error) {
	c := m.Config
	if batch <= 0 || len(x) != batch*m.ClipLen() {
		return nil, fmt.Errorf("input has %d values, want %d clips × 3×%d×%d×%d = %d", len(x), batch, c.AllFrames, c.ImgSize, c.ImgSize, batch*m.ClipLen())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec == nil {
		return nil, errClosed
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("running CAST: %v", r)
		}
	}()
	in := tensors.FromFlatDataAndDimensions(x, batch, c.InChans, c.AllFrames, c.ImgSize, c.ImgSize)
	outs, err := m.exec.Exec(in)
	if err != nil {
		return nil, fmt.Errorf("running CAST: %w", err)
	}
	for _, o := range outs {
		logits = append(logits, tensors.MustCopyFlatData[float32](o))
		o.FinalizeAll()
	}
	in.FinalizeAll()
	return logits, nil
}

// Taps runs the graph and returns the named intermediate tensors (see cast.Taps) as flat float32 slices
// with their dimensions. It compiles a separate graph, so use it for debugging and tests.
func (m *Model) Taps(x []float32, batch int, names []string) (map[string][]float32, map[string][]int, error) {
	c := m.Config
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec == nil {
		return nil, nil, errClosed
	}
	exec, err := context.NewExec(m.backend, m.ctx.Reuse(), func(ctx *context.Context, x *graph.Node) []*graph.Node {
		taps := cast.Taps{}
		out := cast.Forward(ctx, c, x, taps)
		nodes := []*graph.Node{}
		for _, n := range names {
			t, ok := taps[n]
			if !ok {
				panic(fmt.Errorf("no tap named %q", n))
			}
			nodes = append(nodes, t)
		}
		// Keep the logits as outputs too: a variable read only by dead nodes crashes simplego (v0.26.0).
		return append(nodes, out...)
	})
	if err != nil {
		return nil, nil, err
	}
	defer exec.Finalize()
	in := tensors.FromFlatDataAndDimensions(x, batch, c.InChans, c.AllFrames, c.ImgSize, c.ImgSize)
	outs, err := exec.Exec(in)
	if err != nil {
		return nil, nil, err
	}
	vals, dims := map[string][]float32{}, map[string][]int{}
	for i, o := range outs[:len(names)] {
		vals[names[i]] = tensors.MustCopyFlatData[float32](o)
		dims[names[i]] = o.Shape().Dimensions
	}
	return vals, dims, nil
}
