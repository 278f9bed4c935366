package plan

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
)

// Plan is a compiled graph: its steps in execution order and where every value is stored.
type Plan struct {
	Params  []*Node // the graph's parameters, by parameter index
	Outputs []*Node
	Steps   []*Step
	Consts  []*Node // the constants the steps read
	// Root is the storage root of each node by id (itself unless it is a view of another node's storage)
	// and RootOff the offset of the node's values in its root's storage.
	Root, RootOff []int
	// ReleaseAfter lists, for each step, the storage roots read for the last time by it: their storage can
	// be reused once the step has run.
	ReleaseAfter [][]int
}

// Evaluator computes a node from its input values (the CPU executor's generic op implementations): the
// planner uses it to fold constants.
type Evaluator func(n *Node, ins []any) (any, error)

// compiler holds the state of one Compile.
type compiler struct {
	nodes   []*Node
	params  []*Node
	outputs []*Node
	eval    Evaluator
	live    []bool
	fused   map[*Node]*Step // fused step by the node it produces
	claimed map[*Node]bool  // nodes computed inside some fused step
	views   map[*Node]View

	consumers map[*Node][]*Node
}

// Compile plans the graph nodes (in creation order, every input before its uses) that outputs depend on.
// params are the graph's parameters by index; eval folds constants. The passes, in order:
//
//  1. markLive: the nodes the outputs depend on, and their use counts.
//  2. foldConstants: nodes whose inputs are all constants become constants (with eval).
//  3. markLive again (folding changes the uses).
//  4. fuse (fuse.go): the pattern matchers claim groups of nodes as typed steps, training attention first,
//     then inference attention, layer norm / softmax / concatenation, weight GEMMs with their epilogues,
//     the remaining training dots, and last the elementwise chains.
//  5. order: from the outputs backwards, every node not claimed gets a view (no step), a strided copy or a
//     generic step; steps are listed in graph order.
//  6. lifetimes: after which step each storage root is released.
func Compile(nodes, params, outputs []*Node, eval Evaluator) (*Plan, error) {
	c := &compiler{nodes: nodes, params: params, outputs: outputs, eval: eval, fused: map[*Node]*Step{},
		claimed: map[*Node]bool{}, views: map[*Node]View{}}
	c.markLive()
	if err := c.foldConstants(); err != nil {
		return nil, err
	}
	c.markLive()
	c.fuse()
	p := c.order()
	p.computeLifetimes()
	return p, nil
}

// markLive marks the nodes the outputs depend on and counts their uses.
func (c *compiler) markLive() {
	c.live = make([]bool, len(c.nodes))
	for _, n := range c.nodes {
		n.Uses = 0
	}
	var visit func(n *Node)
	visit = func(n *Node) {
		if c.live[n.ID] {
			return
		}
		c.live[n.ID] = true
		for _, in := range n.Inputs {
			visit(in)
		}
	}
	for _, o := range c.outputs {
		visit(o)
		o.Uses++
	}
	for _, n := range c.nodes {
		if c.live[n.ID] {
			for _, in := range n.Inputs {
				in.Uses++
			}
		}
	}
}

// foldConstants evaluates at compile time every live node whose inputs are all constants (broadcasts that
// would grow a constant a lot are left for the fused loops to read with stride 0).
func (c *compiler) foldConstants() error {
	for _, n := range c.nodes {
		if !c.live[n.ID] || n.Op == backends.OpTypeParameter || n.Op == backends.OpTypeConstant {
			continue
		}
		allConst := true
		for _, in := range n.Inputs {
			if in.Op != backends.OpTypeConstant {
				allConst = false
			}
		}
		if !allConst {
			continue
		}
		if n.Op == backends.OpTypeBroadcastInDim && n.Shape.Size() > 4096 && n.Shape.Size() > 2*n.Inputs[0].Shape.Size() {
			continue
		}
		if n.Shape.Size() > 1<<22 {
			continue
		}
		ins := make([]any, len(n.Inputs))
		for i, in := range n.Inputs {
			ins[i] = in.Data
		}
		v, err := c.eval(n, ins)
		if err != nil {
			return err
		}
		n.Op, n.Data, n.Inputs = backends.OpTypeConstant, v, nil
	}
	return nil
}

// order builds the ordered steps from the outputs backwards.
func (c *compiler) order() *Plan {
	nn := len(c.nodes)
	e := &Plan{Params: c.params, Outputs: c.outputs, Root: make([]int, nn), RootOff: make([]int, nn)}
	for i := range e.Root {
		e.Root[i] = i
	}
	stepOf := map[*Node]*Step{}
	visited := make([]bool, nn)
	var need func(n *Node)
	need = func(n *Node) {
		if visited[n.ID] {
			return
		}
		visited[n.ID] = true
		if n.Op == backends.OpTypeParameter || n.Op == backends.OpTypeConstant {
			return
		}
		if st := c.fused[n]; st != nil {
			for _, in := range st.Ins {
				need(in)
			}
			stepOf[n] = st
			return
		}
		if isLayout(n.Op) {
			v := c.viewOf(n)
			if v.Root != n && v.Contiguous() {
				need(v.Root)
				e.Root[n.ID], e.RootOff[n.ID] = e.Root[v.Root.ID], e.RootOff[v.Root.ID]+v.Off
				return
			}
			if n.Op == backends.OpTypeReshape || n.Op == backends.OpTypeIdentity {
				// every materialised value is contiguous: a reshape of one is the same storage
				in := n.Inputs[0]
				need(in)
				e.Root[n.ID], e.RootOff[n.ID] = e.Root[in.ID], e.RootOff[in.ID]
				return
			}
			if v.Root != n {
				need(v.Root)
				stepOf[n] = &Step{Label: fmt.Sprintf("copy %v", v.Dims), Out: n, Ins: []*Node{v.Root}, Kind: ptr(CopyOf(v))}
				return
			}
		}
		for _, in := range n.Inputs {
			need(in)
		}
		stepOf[n] = &Step{Label: fmt.Sprintf("%s %v", n.Op, n.Shape.Dimensions), Out: n, Ins: n.Inputs, Kind: &Generic{}}
	}
	for _, o := range c.outputs {
		need(o)
	}
	for _, n := range c.nodes {
		if st := stepOf[n]; st != nil && st.Out == n {
			e.Steps = append(e.Steps, st)
		}
	}
	for _, n := range c.nodes {
		if visited[n.ID] && n.Op == backends.OpTypeConstant {
			e.Consts = append(e.Consts, n)
		}
	}
	return e
}

func ptr[T any](v T) *T { return &v }

// computeLifetimes finds, for each step, which storage roots are read for the last time by it.
func (e *Plan) computeLifetimes() {
	last := map[int]int{}
	produced := map[int]bool{}
	for i, st := range e.Steps {
		produced[st.Out.ID] = true
		for _, in := range st.Ins {
			last[e.Root[in.ID]] = i
		}
	}
	keep := map[int]bool{}
	for _, o := range e.Outputs {
		keep[e.Root[o.ID]] = true
	}
	e.ReleaseAfter = make([][]int, len(e.Steps))
	for r, i := range last {
		if produced[r] && !keep[r] {
			e.ReleaseAfter[i] = append(e.ReleaseAfter[i], r)
		}
	}
	// a produced value nobody reads (should not happen after dead-code removal) is released right away
	for i, st := range e.Steps {
		if _, read := last[st.Out.ID]; !read && !keep[st.Out.ID] && e.Root[st.Out.ID] == st.Out.ID {
			e.ReleaseAfter[i] = append(e.ReleaseAfter[i], st.Out.ID)
		}
	}
}
