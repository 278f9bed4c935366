package infer

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/castvideo/castgo/backend"
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
	Config  cast.Config
	Stage   cast.Stage
	ctx     *context.Context
	exec    *context.Exec
	backend backends.Backend
	mu      sync.Mutex

	// the input tensors RunFill keeps between runs of batch inBatch, and their values (nil: host tensors)
	in      []*tensors.Tensor
	inFlat  [][]float32
	inBatch int
}

// NewStage loads the stage's weights (exactly its parameters, checked against cfg) on backend b.
//
// It takes the weights out of set as it loads them (each entry is deleted once on the backend), so that a
// caller holding set only for this lets each weight's host copy go as soon as it is loaded: the load never
// holds two copies of all the weights. Each weight goes to the backend as an unshared buffer, created
// straight from the set's values (no intermediate tensor), and on a backend that can pack an int8 weight
// ahead of its GEMMs (castgo) each is packed as it arrives, so that with its releasepacked option the packed
// form is the weight's only copy from the load on and the first run packs nothing.
func NewStage(b backends.Backend, cfg cast.Config, st cast.Stage, set weights.Set) (*StageModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := st.Validate(cfg); err != nil {
		return nil, fmt.Errorf("stage %s: %w", st, err)
	}
	if err := weights.Check(set, st.Shapes(cfg)); err != nil {
		return nil, fmt.Errorf("stage %s: %w", st, err)
	}
	ctx := context.New()
	packer, _ := b.(int8Packer)
	names := slices.Sorted(maps.Keys(set))
	sinceGC := 0
	for _, name := range names {
		w := set[name]
		if err := w.Validate(); err != nil {
			return nil, fmt.Errorf("stage %s: weight %q: %w", st, name, err)
		}
		// the variable's scope follows the state-dict name's dots, as cast.LoadWeights places it
		scope, vname := ctx, name
		for i := strings.IndexByte(vname, '.'); i >= 0; i = strings.IndexByte(vname, '.') {
			scope, vname = scope.In(vname[:i]), vname[i+1:]
		}
		switch w.DType {
		case weights.F32:
			t, _, err := deviceTensor(b, w.F32, w.Shape)
			if err != nil {
				return nil, fmt.Errorf("stage %s: weight %q on the backend: %w", st, name, err)
			}
			scope.VariableWithValue(vname, t)
			sinceGC += 4 * len(w.F32)
		case weights.I8:
			t, wb, err := deviceTensor(b, w.I8, w.Shape)
			if err != nil {
				return nil, fmt.Errorf("stage %s: weight %q on the backend: %w", st, name, err)
			}
			ts, sb, err := deviceTensor(b, w.Scale, []int{len(w.Scale)})
			if err != nil {
				return nil, fmt.Errorf("stage %s: weight %q's scale on the backend: %w", st, name, err)
			}
			scope.VariableWithValue(vname, t).SetTrainable(false)
			scope.VariableWithValue(vname+cast.ScaleSuffix, ts).SetTrainable(false)
			if packer != nil {
				if err := packer.PackInt8(wb, sb); err != nil {
					return nil, fmt.Errorf("stage %s: packing weight %q: %w", st, name, err)
				}
			}
			sinceGC += len(w.I8) + 4*len(w.Scale)
		default:
			return nil, fmt.Errorf("stage %s: weight %q has dtype %s", st, name, w.DType)
		}
		delete(set, name)
		// Collect the loaded host copies now and then, so that the next weights reuse their memory instead
		// of growing the heap (in WASM the linear memory never shrinks).
		if sinceGC >= loadGCBytes {
			runtime.GC()
			sinceGC = 0
		}
	}
	m := &StageModel{Config: cfg, Stage: st, ctx: ctx, backend: b}
	exec, err := context.NewExec(b, ctx.Reuse(), func(ctx *context.Context, in []*graph.Node) []*graph.Node {
		return st.Forward(ctx, cfg, in, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("building the graph of stage %s: %w", st, err)
	}
	m.exec = exec
	return m, nil
}

// loadGCBytes is how many bytes of weights NewStage loads between garbage collections.
const loadGCBytes = 4 << 20

// deviceTensor puts a copy of flat on backend b as an unshared buffer and returns it as a tensor.
func deviceTensor[T float32 | int8](b backends.Backend, flat []T, dims []int) (*tensors.Tensor, backends.Buffer, error) {
	buf, err := b.BufferFromFlatData(0, flat, shapes.Make(dtypes.FromGenericsType[T](), dims...))
	if err != nil {
		return nil, nil, err
	}
	t, err := tensors.FromBuffer(b, buf)
	if err != nil {
		return nil, nil, err
	}
	return t, buf, nil
}

// int8Packer is a backend that packs an int8 weight for its GEMMs ahead of them (the castgo backend).
type int8Packer interface {
	PackInt8(w, scale backends.Buffer) error
}

// Close releases the compiled graph and the weights now; later runs fail.
func (m *StageModel) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec != nil {
		m.exec.Finalize()
		m.ctx.Finalize()
		m.dropInputs()
		m.exec = nil
	}
}

// RunFill is Run with the inputs written by fill(i, dst) straight into the input tensors' storage (dst has
// the i-th input's element count), so that the caller holds no second copy of them. On a backend with
// shared buffers (castgo) the input tensors are the backend's buffers, kept from one run to the next of
// the same batch: a run allocates nothing for its inputs.
func (m *StageModel) RunFill(batch int, fill func(i int, dst []float32) error) (out [][]float32, err error) {
	want := m.Stage.Inputs(m.Config, batch)
	if batch <= 0 {
		return nil, fmt.Errorf("stage %s: batch %d", m.Stage, batch)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exec == nil {
		return nil, errClosed
	}
	if m.in == nil || m.inBatch != batch {
		m.dropInputs()
		for _, dims := range want {
			t, flat, err := newInput(m.backend, dims)
			if err != nil {
				m.dropInputs()
				return nil, fmt.Errorf("stage %s: input %v: %w", m.Stage, dims, err)
			}
			m.in, m.inFlat = append(m.in, t), append(m.inFlat, flat)
		}
		m.inBatch = batch
	}
	args := make([]any, len(want))
	for i, t := range m.in {
		if m.inFlat[i] != nil {
			err = fill(i, m.inFlat[i])
		} else {
			t.MutableFlatData(func(flat any) { err = fill(i, flat.([]float32)) })
		}
		if err != nil {
			return nil, err
		}
		args[i] = t
	}
	return m.exec1Locked(args)
}

// newInput returns an input tensor of dims: a shared buffer of b and its values when b has shared buffers,
// else a host tensor (and nil).
func newInput(b backends.Backend, dims []int) (*tensors.Tensor, []float32, error) {
	sh := shapes.Make(dtypes.Float32, dims...)
	if !b.HasSharedBuffers() {
		return tensors.FromShape(sh), nil, nil
	}
	buf, flat, err := b.NewSharedBuffer(0, sh)
	if err != nil {
		return nil, nil, err
	}
	f, ok := flat.([]float32)
	if !ok {
		return nil, nil, fmt.Errorf("shared buffer of %s is %T", sh, flat)
	}
	t, err := tensors.FromBuffer(b, buf)
	if err != nil {
		return nil, nil, err
	}
	return t, f, nil
}

// dropInputs releases the kept input tensors.
func (m *StageModel) dropInputs() {
	for _, t := range m.in {
		t.FinalizeAll()
	}
	m.in, m.inFlat, m.inBatch = nil, nil, 0
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
	return m.exec1Locked(args)
}

// exec1Locked is exec1 with m.mu held and m open. The outputs of the castgo backend are handed over
// without a copy (each run's outputs are new slices of its own, which no later run reuses); those of other
// backends are copied out.
func (m *StageModel) exec1Locked(args []any) (out [][]float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("running stage %s: %v", m.Stage, r)
		}
	}()
	outs, err := m.exec.Exec(args...)
	if err != nil {
		return nil, fmt.Errorf("running stage %s: %w", m.Stage, err)
	}
	own := m.backend.Name() == backend.Name
	for _, o := range outs {
		if own {
			var f []float32
			if err := o.ConstFlatData(func(flat any) { f, _ = flat.([]float32) }); err != nil || f == nil {
				return nil, fmt.Errorf("running stage %s: output %s: %v", m.Stage, o.Shape(), err)
			}
			out = append(out, f)
		} else {
			out = append(out, tensors.MustCopyFlatData[float32](o))
		}
		o.FinalizeAll()
	}
	return out, nil
}
