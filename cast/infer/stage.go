package infer

import (
	"fmt"
	"sync"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// StageModel is one stage of a split CAST model (cast.Stage) loaded on a backend: it holds only the
// stage's weights and runs its part of the forward. It is safe for concurrent use; runs are serialised.
type StageModel struct {
	Config cast.Config
	Stage  cast.Stage
	ctx    *context.Context
	exec   *context.Exec
	mu     sync.Mutex
}

// NewStage loads the stage's weights (exactly its parameters, checked against cfg) on backend b.
func NewStage(b backends.Backend, cfg cast.Config, st cast.Stage, set weights.Set) (*StageModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx := context.New()
	if err := cast.LoadStageWeights(ctx, cfg, st, set); err != nil {
		return nil, fmt.Errorf("stage %s: %w", st, err)
	}
	// The weights live on the backend only: each goes there as an unshared buffer and its host copy is
	// dropped, so that a backend that releases a weight's data once packed (the castgo backend's
	// releasepacked option) leaves the packed form as its only copy.
	for v := range ctx.IterVariables() {
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("stage %s: variable %s: %w", st, v.ScopeAndName(), err)
		}
		if err := t.MaterializeOnDevice(b, false, 0); err != nil {
			return nil, fmt.Errorf("stage %s: variable %s on the backend: %w", st, v.ScopeAndName(), err)
		}
		t.FinalizeLocal()
	}
	m := &StageModel{Config: cfg, Stage: st, ctx: ctx}
	exec, err := context.NewExec(b, ctx.Reuse(), func(ctx *context.Context, in []*graph.Node) []*graph.Node {
		return st.Forward(ctx, cfg, in, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("building the graph of stage %s: %w", st, err)
	}
	m.exec = exec
	return m, nil
}

// Close releases the compiled graph and the weights now; later runs fail.
func (m *StageModel) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec != nil {
		m.exec.Finalize()
		m.ctx.Finalize()
		m.exec = nil
	}
}

// RunFill is Run with the inputs written by fill(i, dst) straight into the input tensors' storage (dst has
// the i-th input's element count), so that the caller holds no second copy of them.
func (m *StageModel) RunFill(batch int, fill func(i int, dst []float32) error) (out [][]float32, err error) {
	want := m.Stage.Inputs(m.Config, batch)
	if batch <= 0 {
		return nil, fmt.Errorf("stage %s: batch %d", m.Stage, batch)
	}
	args := make([]any, len(want))
	var ts []*tensors.Tensor
	defer func() {
		for _, t := range ts {
			t.FinalizeAll()
		}
	}()
	for i, dims := range want {
		t := tensors.FromShape(shapes.Make(dtypes.Float32, dims...))
		ts = append(ts, t)
		var ferr error
		t.MutableFlatData(func(flat any) { ferr = fill(i, flat.([]float32)) })
		if ferr != nil {
			return nil, ferr
		}
		args[i] = t
	}
	return m.exec1(args)
}

// Run runs the stage on batch clips: in holds its inputs (cast.Stage.Inputs: the clip, or the streams), flat
// in C order; it returns its outputs (cast.Stage.Outputs) the same way.
func (m *StageModel) Run(in [][]float32, batch int) (out [][]float32, err error) {
	want := m.Stage.Inputs(m.Config, batch)
	if batch <= 0 || len(in) != len(want) {
		return nil, fmt.Errorf("stage %s: got %d inputs for batch %d, want %d", m.Stage, len(in), batch, len(want))
	}
	args := make([]any, len(in))
	var ts []*tensors.Tensor
	defer func() {
		for _, t := range ts {
			t.FinalizeAll()
		}
	}()
	for i, dims := range want {
		n := 1
		for _, d := range dims {
			n *= d
		}
		if len(in[i]) != n {
			return nil, fmt.Errorf("stage %s: input %d has %d values, want %v = %d", m.Stage, i, len(in[i]), dims, n)
		}
		t := tensors.FromFlatDataAndDimensions(in[i], dims...)
		ts = append(ts, t)
		args[i] = t
	}
	return m.exec1(args)
}

// exec1 runs the compiled graph once on args and copies the outputs out.
func (m *StageModel) exec1(args []any) (out [][]float32, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec == nil {
		return nil, errClosed
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("running stage %s: %v", m.Stage, r)
		}
	}()
	outs, err := m.exec.Exec(args...)
	if err != nil {
		return nil, fmt.Errorf("running stage %s: %w", m.Stage, err)
	}
	for _, o := range outs {
		out = append(out, tensors.MustCopyFlatData[float32](o))
		o.FinalizeAll()
	}
	return out, nil
}
