package backend

import (
	"github.com/castvideo/castgo/backend/cpu"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// Executable implements backends.Executable: the plan of one compiled graph, lowered onto the CPU, and run
// on the backend's target when it has one.
type Executable struct {
	backend *Backend
	plan    *plan.Plan
	cpu     *cpu.Program
}

var _ backends.Executable = (*Executable)(nil)

// Compile plans the graph (package plan) and lowers the plan onto the CPU executor.
func (b *Builder) Compile(outputs []backends.Op, _ []*backends.ShardingSpec) (backends.Executable, error) {
	outs, err := b.check(backends.OpTypeIdentity, outputs...)
	if err != nil {
		return nil, err
	}
	b.compiled = true
	p, err := plan.Compile(b.nodes, b.params, outs, cpu.Eval)
	if err != nil {
		return nil, err
	}
	prog, err := cpu.Lower(p, b.backend.packs, cpu.Options{FloatAttention: b.backend.floatAttention})
	if err != nil {
		return nil, err
	}
	return &Executable{backend: b.backend, plan: p, cpu: prog}, nil
}

// PlanOf returns the plan of an executable compiled by this backend (false for other executables): for
// tests and tools that inspect or translate plans.
func PlanOf(exec backends.Executable) (*plan.Plan, bool) {
	e, ok := exec.(*Executable)
	if !ok || e == nil {
		return nil, false
	}
	return e.plan, true
}

// Finalize releases e's arena of intermediates and what its target holds for it (the WebGPU buffers of the weights
// go now, not when e is collected); e must not run afterwards.
func (e *Executable) Finalize() {
	e.cpu.Finalize()
	if t := e.backend.target; t != nil {
		t.Release(e.plan)
	}
}

// Inputs returns the names and shapes of the graph's parameters.
func (e *Executable) Inputs() (names []string, inputShapes []shapes.Shape) {
	for _, p := range e.plan.Params {
		names = append(names, p.Name)
		inputShapes = append(inputShapes, p.Shape)
	}
	return
}

// Outputs returns the shapes of the graph's outputs.
func (e *Executable) Outputs() []shapes.Shape {
	out := make([]shapes.Shape, len(e.plan.Outputs))
	for i, o := range e.plan.Outputs {
		out[i] = o.Shape
	}
	return out
}

// Execute runs the plan: on the backend's target if it has one and the plan has a form there, else on the
// CPU.
func (e *Executable) Execute(inputs []backends.Buffer, donate []bool, _ backends.DeviceNum) ([]backends.Buffer, error) {
	params := e.plan.Params
	if len(inputs) != len(params) {
		return nil, errors.Errorf("castgo backend: %d inputs given, the graph has %d parameters", len(inputs), len(params))
	}
	bufs := make([]*Buffer, len(inputs))
	for i, in := range inputs {
		buf, err := e.backend.toBuffer(in)
		if err != nil {
			return nil, err
		}
		if !buf.Shape.Equal(params[i].Shape) {
			return nil, errors.Errorf("castgo backend: input #%d (%s) has shape %s, want %s", i, params[i].Name, buf.Shape, params[i].Shape)
		}
		bufs[i] = buf
	}
	var outs []*Buffer
	var err error
	handled := false
	if t := e.backend.target; t != nil {
		outs, handled, err = t.Run(e.plan, bufs)
	}
	if !handled {
		outs, err = e.cpu.Run(bufs)
	}
	if err != nil {
		return nil, err
	}
	res := make([]backends.Buffer, len(outs))
	for i, o := range outs {
		res[i] = o
	}
	return res, nil
}
