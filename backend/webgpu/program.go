package webgpu

import (
	"embed"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/pkg/errors"
)

// This file turns a plan into a device-independent GPU program: storage slots (one per parameter, constant
// and pooled intermediate buffer), and per step one or more compute dispatches, each a WGSL kernel, the
// slots it reads, the slot it writes and its parameter words. device_js.go runs such a program on WebGPU;
// nothing here depends on js, so the translation is tested natively (Describe, backend's webgpu_test.go).

//go:embed wgsl/*.wgsl
var wgslFS embed.FS

// wgslFragment returns the code of a fragment file: its lines after the first (a comment saying where it
// goes), without the final newline.
func wgslFragment(name string) string {
	_, code, _ := strings.Cut(wgsl(name), "\n")
	return strings.TrimSuffix(code, "\n")
}

// wgsl returns an embedded shader file.
func wgsl(name string) string {
	b, err := wgslFS.ReadFile("wgsl/" + name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return string(b)
}

// ---------------------------------------------------------------- program

type gpuSlotKind int

const (
	gpuSlotParam gpuSlotKind = iota
	gpuSlotConst
	gpuSlotTemp
)

// gpuSlot is one GPU storage buffer of a program.
type gpuSlot struct {
	kind  gpuSlotKind
	Param int        // gpuSlotParam: parameter index
	node  *plan.Node // gpuSlotConst: the constant
	bytes int        // size, a multiple of 4
}

// gpuDispatch is one compute dispatch: binding 0 is its parameter words, 1… the slots ins (read-only), then
// the slot out (read-write).
type gpuDispatch struct {
	label  string
	kernel string // WGSL source (pipelines are cached by it)
	ins    []int
	out    int
	meta   []uint32
	groups [3]int
	// ownOut says out was set by the step's translation (a scratch buffer), not the step's output.
	ownOut bool
}

// gpuOutput is where one output of the graph is read back from.
type gpuOutput struct {
	slot, Off, size int
}

type gpuProgram struct {
	slots      []gpuSlot
	dispatches []gpuDispatch
	outputs    []gpuOutput
	paramSlot  []int // slot of each parameter, -1 if the program does not read it
	flops      int64 // multiply-adds ×2 of the GEMMs and attention
	// int8Attn says the program holds an int8 GEMM: an int8 model, whose attentions then run the CPU's
	// integer algorithm (attentionInt8Dispatch), as the CPU backend does for such programs.
	int8Attn bool
	// pool holds, during the translation, the temporary slots free for reuse, by size in bytes.
	pool map[int][]int
}

// takeTemp returns a free temporary slot of the given size from the pool, or a new one.
func (p *gpuProgram) takeTemp(bytes int) int {
	if l := p.pool[bytes]; len(l) > 0 {
		p.pool[bytes] = l[:len(l)-1]
		return l[len(l)-1]
	}
	p.slots = append(p.slots, gpuSlot{kind: gpuSlotTemp, bytes: bytes})
	return len(p.slots) - 1
}

// freeTemp returns temporary slot s to the pool.
func (p *gpuProgram) freeTemp(s int) {
	if p.pool == nil {
		p.pool = map[int][]int{}
	}
	b := p.slots[s].bytes
	p.pool[b] = append(p.pool[b], s)
}

// hasInt8Gemm says e holds an int8 GEMM (the CPU backend's test of the same name, backend/cpu/lower.go).
func hasInt8Gemm(e *plan.Plan) bool {
	for _, st := range e.Steps {
		if g, ok := st.Kind.(*plan.Gemm); ok && g.Scale != nil {
			return true
		}
	}
	return false
}

const gpuMaxRank = 8

// gpuProgramOf translates a compiled plan; it fails (naming the step) when a step has no GPU form.
func programOf(e *plan.Plan) (*gpuProgram, error) {
	p := &gpuProgram{paramSlot: make([]int, len(e.Params)), int8Attn: hasInt8Gemm(e), pool: map[int][]int{}}
	for i := range p.paramSlot {
		p.paramSlot[i] = -1
	}
	rootSlot := map[int]int{}
	slotOfRoot := func(r *plan.Node) (int, error) {
		if s, ok := rootSlot[r.ID]; ok {
			return s, nil
		}
		switch r.Op {
		case backends.OpTypeParameter:
			var bytes int
			switch r.Shape.DType {
			case dtypes.Float32:
				bytes = 4 * r.Shape.Size()
			case dtypes.Int8:
				bytes = (r.Shape.Size() + 3) &^ 3
			default:
				return 0, errors.Errorf("webgpu: parameter %q has dtype %s (float32 and int8 only)", r.Name, r.Shape.DType)
			}
			p.slots = append(p.slots, gpuSlot{kind: gpuSlotParam, Param: r.Param, bytes: max(bytes, 4)})
			p.paramSlot[r.Param] = len(p.slots) - 1
		case backends.OpTypeConstant:
			if r.Shape.DType != dtypes.Float32 {
				return 0, errors.Errorf("webgpu: a %s constant is read on the device (float32 only)", r.Shape.DType)
			}
			p.slots = append(p.slots, gpuSlot{kind: gpuSlotConst, node: r, bytes: max(4*r.Shape.Size(), 4)})
		default:
			return 0, errors.Errorf("webgpu: internal error: node #%d (%s) read before it is computed", r.ID, r.Op)
		}
		rootSlot[r.ID] = len(p.slots) - 1
		return len(p.slots) - 1, nil
	}
	byID := map[int]*plan.Node{}
	var walk func(x *plan.Node)
	walk = func(x *plan.Node) {
		if _, ok := byID[x.ID]; !ok {
			byID[x.ID] = x
			for _, in := range x.Inputs {
				walk(in)
			}
		}
	}
	for _, st := range e.Steps {
		walk(st.Out)
		for _, in := range st.Ins {
			walk(in)
		}
	}
	for _, o := range e.Outputs {
		walk(o)
	}
	// addr returns the slot and element offset of node n's values.
	addr := func(n *plan.Node) (int, int, error) {
		r := byID[e.Root[n.ID]]
		if r == nil {
			return 0, 0, errors.Errorf("webgpu: internal error: no storage root for node #%d", n.ID)
		}
		s, err := slotOfRoot(r)
		return s, e.RootOff[n.ID], err
	}
	for i, st := range e.Steps {
		if st.Out.Shape.DType != dtypes.Float32 {
			return nil, errors.Errorf("webgpu: step %q produces %s (float32 only)", st.Label, st.Out.Shape.DType)
		}
		out := p.takeTemp(max(4*st.Out.Shape.Size(), 4))
		ds, err := dispatchesOf(p, st, addr)
		if err != nil {
			return nil, err
		}
		for k := range ds {
			if !ds[k].ownOut {
				ds[k].out = out
			}
			ds[k].label = st.Label
		}
		rootSlot[st.Out.ID] = out
		p.dispatches = append(p.dispatches, ds...)
		for _, r := range e.ReleaseAfter[i] {
			if s, ok := rootSlot[r]; ok && p.slots[s].kind == gpuSlotTemp {
				p.freeTemp(s)
			}
		}
	}
	for _, o := range e.Outputs {
		if o.Shape.DType != dtypes.Float32 {
			return nil, errors.Errorf("webgpu: output of dtype %s (float32 only)", o.Shape.DType)
		}
		s, off, err := addr(o)
		if err != nil {
			return nil, err
		}
		p.outputs = append(p.outputs, gpuOutput{slot: s, Off: off, size: o.Shape.Size()})
	}
	return p, nil
}

func u32s(vs ...int) []uint32 {
	out := make([]uint32, len(vs))
	for i, v := range vs {
		out[i] = uint32(v)
	}
	return out
}

func f32bits(f float32) uint32 { return math.Float32bits(f) }

// groups1D spreads n workgroups over x and y (at most 65535 each way).
func groups1D(n int) [3]int {
	n = max(n, 1)
	if n <= 65535 {
		return [3]int{n, 1, 1}
	}
	return [3]int{65535, (n + 65534) / 65535, 1}
}

type addrFunc func(n *plan.Node) (slot, off int, err error)

func dispatchesOf(p *gpuProgram, st *plan.Step, addr addrFunc) ([]gpuDispatch, error) {
	switch g := st.Kind.(type) {
	case *plan.Gemm:
		return gemmDispatch(p, g, addr)
	case *plan.Attention:
		return attentionDispatch(p, g, addr)
	case *plan.LayerNorm:
		x, xo, err := addr(g.X)
		if err != nil {
			return nil, err
		}
		gs, gOff, err := addr(g.Gamma)
		if err != nil {
			return nil, err
		}
		bs, bOff, err := addr(g.Beta)
		if err != nil {
			return nil, err
		}
		return []gpuDispatch{{kernel: wgslLayerNorm(p.f32Math()), ins: []int{x, gs, bs},
			meta: append(u32s(g.Rows, g.N, xo, gOff+g.GammaOff, bOff+g.BetaOff), f32bits(g.Eps), 0), groups: groups1D(g.Rows)}}, nil
	case *plan.Softmax:
		x, xo, err := addr(g.X)
		if err != nil {
			return nil, err
		}
		return []gpuDispatch{{kernel: wgsl("softmax.wgsl"), ins: []int{x}, meta: u32s(g.Rows, g.N, xo), groups: groups1D(g.Rows)}}, nil
	case *plan.Elementwise:
		return elementwiseDispatch(g, addr, p.f32Math())
	case *plan.Copy:
		d, err := copyDispatch(*g, addr)
		return []gpuDispatch{d}, err
	case *plan.Concat:
		var out []gpuDispatch
		for _, c := range g.Parts {
			d, err := copyDispatch(c, addr)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, nil
	case *plan.Generic:
		return genericDispatch(st.Out, addr, p.f32Math())
	}
	return nil, errors.Errorf("webgpu: step %q has no GPU form", st.Label)
}

func gemmDispatch(p *gpuProgram, g *plan.Gemm, addr addrFunc) ([]gpuDispatch, error) {
	a, aOff, err := addr(g.LHS)
	if err != nil {
		return nil, err
	}
	w, wOff, err := addr(g.W)
	if err != nil {
		return nil, err
	}
	s, sOff, b, bOff, r, rOff := a, 0, a, 0, a, 0
	flags := 0
	if g.Scale != nil {
		if s, sOff, err = addr(g.Scale); err != nil {
			return nil, err
		}
	}
	if g.Bias != nil {
		if b, bOff, err = addr(g.Bias); err != nil {
			return nil, err
		}
		bOff += g.BiasOff
		flags |= 1
	}
	if g.Residual != nil {
		if r, rOff, err = addr(g.Residual); err != nil {
			return nil, err
		}
		flags |= 2
	}
	if g.Transposed {
		flags |= 4
	}
	act := 0
	switch g.Act {
	case plan.ActGELU:
		act = 1
	case plan.ActQuickGELU:
		act = 2
	}
	p.flops += 2 * int64(g.M) * int64(g.K) * int64(g.N)
	meta := append(u32s(g.M, g.K, g.N, aOff, wOff, sOff, bOff, rOff, act), f32bits(g.PostScale), uint32(flags))
	groups := [3]int{(g.N + 31) / 32, (g.M + 31) / 32, 1}
	if g.Scale == nil {
		src := strings.Replace(wgsl("gemm.wgsl"), "{{EPILOGUE}}", gemmEpilogue(p.f32Math()), 1)
		meta = append(meta, 0) // opq's zero
		return []gpuDispatch{{kernel: src, ins: []int{a, w, s, b, r}, meta: meta, groups: groups}}, nil
	}
	// int8 weights: A's rows quantized into a scratch slot, then the integer GEMM (as the CPU's int8 GEMM)
	if !g.Transposed {
		return nil, errors.New("webgpu: int8 weights must be [N, K]")
	}
	k2h := (g.K + 1) / 2
	words := g.M*k2h + g.M // levels, then row scales
	if int64(words)*4 > math.MaxUint32 {
		return nil, errors.Errorf("webgpu: int8 GEMM of %d×%d is too large for its scratch buffer", g.M, g.K)
	}
	scratch := p.takeTemp(4 * words)
	defer p.freeTemp(scratch)
	quant := append(u32s(g.M, g.K, aOff), f32bits(kernels.Int8QMax((g.K+1)&^1)), 0, uint32(g.M*k2h))
	meta[3] = 0 // the levels' offset in the scratch slot
	meta = append(meta, 0, uint32(g.M*k2h))
	return []gpuDispatch{
		{kernel: wgslWithQuantize("gemm_int8_quant.wgsl"), ins: []int{a}, out: scratch, ownOut: true, meta: quant, groups: groups1D((g.M + 63) / 64)},
		{kernel: wgslGemmInt8(), ins: []int{scratch, w, s, b, r}, meta: meta, groups: groups},
	}, nil
}

// wgslWithQuantize returns the kernel name with f32exact.wgsl and quantize.wgsl spliced in at its {{QUANTIZE}}
// placeholder (gemm_int8_quant.wgsl, attention_int8_quant.wgsl).
func wgslWithQuantize(name string) string {
	return strings.Replace(wgsl(name), "{{QUANTIZE}}", wgslQuantize(), 1)
}

// wgslLayerNorm returns layernorm.wgsl completed with the float functions fmath (f32Math).
func wgslLayerNorm(fmath string) string {
	return strings.Replace(wgsl("layernorm.wgsl"), "{{F32EXACT}}", fmath, 1)
}

// f32Math is the fragment of float functions the program's kernels splice in: f32exact.wgsl in an int8 program,
// whose outputs are then the CPU's bits wherever the GPU rounds +, −, · and √ correctly; f32fast.wgsl in a float
// program, whose GEMMs and attentions add in another order than the CPU's anyway, so the GPU's own exp, tanh,
// division and fused operations cost less for the same agreement (≈ 1e-7 relative).
func (p *gpuProgram) f32Math() string {
	if p.int8Attn {
		return wgslFragment("f32exact.wgsl")
	}
	return wgslFragment("f32fast.wgsl")
}

// wgslQuantize is the QUANTIZE placeholder's code: f32exact.wgsl (divRN, opq) and quantize.wgsl.
func wgslQuantize() string {
	return wgslFragment("f32exact.wgsl") + "\n\n" + wgslFragment("quantize.wgsl")
}

// wgslGemmInt8 returns gemm_int8.wgsl completed with its fragment.
func wgslGemmInt8() string {
	return strings.Replace(wgsl("gemm_int8.wgsl"), "{{EPILOGUE}}", gemmEpilogue(wgslFragment("f32exact.wgsl")), 1)
}

// gemmEpilogue returns the GEMM kernels' epilogue: the float functions fmath (f32Math: GELU and QuickGELU) and
// gemm_epilogue.wgsl.
func gemmEpilogue(fmath string) string {
	return fmath + "\n\n" + wgslFragment("gemm_epilogue.wgsl")
}

func attentionDispatch(p *gpuProgram, g *plan.Attention, addr addrFunc) ([]gpuDispatch, error) {
	if g.HD > 128 || g.HD < 1 {
		return nil, errors.Errorf("webgpu: attention head dim %d (at most 128)", g.HD)
	}
	if g.B > 65535 || g.H > 65535 || (g.Lq+63)/64 > 65535 {
		return nil, errors.Errorf("webgpu: attention of %d×%d×%d rows is too large", g.B, g.H, g.Lq)
	}
	if p.int8Attn && g.Lk >= kernels.Int8AttnMinLk {
		return attentionInt8Dispatch(p, g, addr)
	}
	few := p.int8Attn && kernels.Int8FewKeys(g.Lk, g.HD) // the CPU's direct path of few keys, its bits
	var ins []int
	meta := u32s(g.B, g.H, g.Lq, g.Lk)
	meta = append(meta, f32bits(g.Scale))
	for _, v := range []plan.View{g.Q, g.K, g.V} {
		s, off, err := addr(v.Root)
		if err != nil {
			return nil, err
		}
		ins = append(ins, s)
		meta = append(meta, u32s(off+v.Off, v.Strides[0], v.Strides[1], v.Strides[2])...)
	}
	meta = append(meta, u32s(g.Out.Batch, g.Out.Row, g.Out.Head)...)
	p.flops += 4 * int64(g.B) * int64(g.H) * int64(g.Lq) * int64(g.Lk) * int64(g.HD)
	src := wgslAttention(g.HD)
	if few {
		src = wgslAttentionFew(g.HD)
		meta = append(meta, 0) // opq's zero
	}
	return []gpuDispatch{{kernel: src, ins: ins, meta: meta, groups: [3]int{(g.Lq + 63) / 64, g.H, g.B}}}, nil
}

// attentionInt8Dispatch runs an int8 program's attention as the CPU does (kernels.Attention.Int8): a dispatch
// quantizing K and V of every (batch, head) into a scratch slot (attention_int8_quant.wgsl), then the integer
// attention (attention_int8.wgsl, wgslAttentionInt8) reading them. The scratch slot comes from the pool of
// temporaries and goes back to it after the step.
func attentionInt8Dispatch(p *gpuProgram, g *plan.Attention, addr addrFunc) ([]gpuDispatch, error) {
	hdp := (g.HD + 3) &^ 3
	bh := g.B * g.H
	kLev, kSc := 0, 2*bh*g.Lk*hdp // scratch layout (i32 words): K's levels, V's levels, K's scales, V's scales
	vLev, vSc := bh*g.Lk*hdp, kSc+bh*g.Lk
	words := vSc + bh*hdp
	if int64(words)*4 > math.MaxUint32 {
		return nil, errors.Errorf("webgpu: attention of %d×%d heads × %d keys is too large for its scratch buffer", g.B, g.H, g.Lk)
	}
	scratch := p.takeTemp(4 * words)
	defer p.freeTemp(scratch)
	var kv []int
	quant := u32s(g.B, g.H, g.Lk, g.HD, hdp)
	for _, v := range []plan.View{g.K, g.V} {
		s, off, err := addr(v.Root)
		if err != nil {
			return nil, err
		}
		kv = append(kv, s)
		quant = append(quant, u32s(off+v.Off, v.Strides[0], v.Strides[1], v.Strides[2])...)
	}
	quant = append(quant, u32s(kLev, kSc, vLev, vSc)...)
	q, qOff, err := addr(g.Q.Root)
	if err != nil {
		return nil, err
	}
	meta := u32s(g.B, g.H, g.Lq, g.Lk)
	meta = append(meta, f32bits(g.Scale))
	meta = append(meta, u32s(qOff+g.Q.Off, g.Q.Strides[0], g.Q.Strides[1], g.Q.Strides[2])...)
	meta = append(meta, u32s(g.Out.Batch, g.Out.Row, g.Out.Head)...)
	meta = append(meta, f32bits(kernels.Int8QMax((g.HD+1)&^1)), f32bits(kernels.Int8QMax((g.Lk+1)&^1)), 0, f32bits(float32(math.NaN())))
	meta = append(meta, u32s(kLev, kSc, vLev, vSc)...)
	p.flops += 4 * int64(bh) * int64(g.Lq) * int64(g.Lk) * int64(g.HD)
	return []gpuDispatch{
		{kernel: wgslWithQuantize("attention_int8_quant.wgsl"), ins: kv, out: scratch, ownOut: true, meta: quant,
			groups: [3]int{(g.Lk + hdp + 63) / 64, g.H, g.B}},
		{kernel: wgslAttentionInt8(g.HD), ins: []int{q, scratch}, meta: meta, groups: [3]int{(g.Lq + 63) / 64, g.H, g.B}},
	}, nil
}

func copyDispatch(c plan.Copy, addr addrFunc) (gpuDispatch, error) {
	s, off, err := addr(c.Src.Root)
	if err != nil {
		return gpuDispatch{}, err
	}
	r := len(c.Src.Dims)
	if r > gpuMaxRank {
		return gpuDispatch{}, errors.Errorf("webgpu: copy of rank %d (at most %d)", r, gpuMaxRank)
	}
	total := 1
	for _, d := range c.Src.Dims {
		total *= d
	}
	meta := make([]uint32, 4+3*gpuMaxRank)
	copy(meta, u32s(total, r, off+c.Src.Off, c.DstOff))
	for a := 0; a < r; a++ {
		meta[4+a] = uint32(c.Src.Dims[a])
		meta[4+gpuMaxRank+a] = uint32(c.Src.Strides[a])
		meta[4+2*gpuMaxRank+a] = uint32(c.DstStrides[a])
	}
	return gpuDispatch{kernel: wgsl("copy.wgsl"), ins: []int{s}, meta: meta, groups: groups1D((total + 255) / 256)}, nil
}

// genericDispatch handles the plan's single-op steps: layout ops as strided copies, reductions, and
// float32 unary/binary ops as one-instruction elementwise loops.
func genericDispatch(n *plan.Node, addr addrFunc, fmath string) ([]gpuDispatch, error) {
	dims := n.Shape.Dimensions
	if len(n.Inputs) > 0 && n.Inputs[0].Shape.DType != dtypes.Float32 && n.Op != backends.OpTypeGather {
		return nil, errors.Errorf("webgpu: %s of a %s input (float32 only)", n.Op, n.Inputs[0].Shape.DType)
	}
	inView := func(in *plan.Node) plan.View {
		return plan.View{Root: in, Dims: in.Shape.Dimensions, Strides: plan.RowMajorStrides(in.Shape.Dimensions)}
	}
	copyOf := func(v plan.View) ([]gpuDispatch, error) {
		d, err := copyDispatch(plan.CopyOf(v), addr)
		return []gpuDispatch{d}, err
	}
	switch n.Op {
	case backends.OpTypeReshape, backends.OpTypeIdentity:
		return copyOf(plan.View{Root: n.Inputs[0], Dims: []int{n.Shape.Size()}, Strides: []int{1}})
	case backends.OpTypeTranspose:
		in := inView(n.Inputs[0])
		strides := make([]int, len(dims))
		for i, a := range n.Axes {
			strides[i] = in.Strides[a]
		}
		return copyOf(plan.View{Root: in.Root, Dims: dims, Strides: strides})
	case backends.OpTypeBroadcastInDim:
		in := inView(n.Inputs[0])
		strides := make([]int, len(dims))
		for i, a := range n.Axes {
			if in.Dims[i] == dims[a] {
				strides[a] = in.Strides[i]
			}
		}
		return copyOf(plan.View{Root: in.Root, Dims: dims, Strides: strides})
	case backends.OpTypeSlice:
		in := inView(n.Inputs[0])
		off := 0
		strides := make([]int, len(dims))
		for i := range dims {
			off += n.Slice.Starts[i] * in.Strides[i]
			strides[i] = in.Strides[i] * n.Slice.Strides[i]
		}
		return copyOf(plan.View{Root: in.Root, Off: off, Dims: dims, Strides: strides})
	case backends.OpTypeGather:
		if start, step, axis, ok := plan.GatherAsSlice(n); ok && n.Inputs[0].Shape.DType == dtypes.Float32 {
			in := inView(n.Inputs[0])
			strides := []int{in.Strides[axis] * step}
			for a := range in.Dims {
				if a != axis {
					strides = append(strides, in.Strides[a])
				}
			}
			return copyOf(plan.View{Root: in.Root, Off: start * in.Strides[axis], Dims: dims, Strides: strides})
		}
	case backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin:
		return reduceDispatch(n, addr)
	}
	if plan.IsElementwise(n) {
		leaves := make([]plan.Leaf, len(n.Inputs))
		for i, in := range n.Inputs {
			if !slices.Equal(in.Shape.Dimensions, dims) {
				return nil, errors.Errorf("webgpu: %s of shapes %v and %v", n.Op, in.Shape.Dimensions, dims)
			}
			leaves[i] = plan.Leaf{Root: in, Strides: plan.RowMajorStrides(dims), Contiguous: true}
		}
		ins := plan.Instr{Op: n.Op, A: -1}
		if len(n.Inputs) > 1 {
			ins.B = -2
		}
		return elementwiseDispatch(&plan.Elementwise{Dims: dims, Leaves: leaves, Instrs: []plan.Instr{ins}}, addr, fmath)
	}
	return nil, errors.Errorf("webgpu: op %s %v has no GPU kernel", n.Op, dims)
}

func reduceDispatch(n *plan.Node, addr addrFunc) ([]gpuDispatch, error) {
	in := n.Inputs[0]
	s, off, err := addr(in)
	if err != nil {
		return nil, err
	}
	idims := in.Shape.Dimensions
	istr := plan.RowMajorStrides(idims)
	var kd, ks, rd, rs []int
	redTotal := 1
	for a, d := range idims {
		if slices.Contains(n.Axes, a) {
			rd, rs = append(rd, d), append(rs, istr[a])
			redTotal *= d
		} else {
			kd, ks = append(kd, d), append(ks, istr[a])
		}
	}
	if len(kd) > gpuMaxRank || len(rd) > gpuMaxRank {
		return nil, errors.Errorf("webgpu: reduction of rank %d", len(idims))
	}
	op := 0
	switch n.Op {
	case backends.OpTypeReduceMax:
		op = 1
	case backends.OpTypeReduceMin:
		op = 2
	}
	total := n.Shape.Size()
	meta := make([]uint32, 6+4*gpuMaxRank)
	copy(meta, u32s(total, len(kd), len(rd), redTotal, off, op))
	for i := range kd {
		meta[6+i], meta[6+gpuMaxRank+i] = uint32(kd[i]), uint32(ks[i])
	}
	for i := range rd {
		meta[6+2*gpuMaxRank+i], meta[6+3*gpuMaxRank+i] = uint32(rd[i]), uint32(rs[i])
	}
	return []gpuDispatch{{kernel: wgsl("reduce.wgsl"), ins: []int{s}, meta: meta, groups: groups1D((total + 255) / 256)}}, nil
}

// wgslElementwise is the WGSL expression of each elementwise op over its operands' registers, %[1]s and
// (binary ops) %[2]s; an op missing here has no GPU form. Each rounded operation is the CPU's (f32exact.wgsl:
// opq keeps a compiler from fusing a product into the next sum; exp, erf, the logistic and tanh are the CPU's
// polynomials).
var wgslElementwise = map[backends.OpType]string{
	backends.OpTypeAdd:      "opq(%[1]s + %[2]s)",
	backends.OpTypeSub:      "opq(%[1]s - %[2]s)",
	backends.OpTypeMul:      "opq(%[1]s * %[2]s)",
	backends.OpTypeDiv:      "fdiv(%[1]s, %[2]s)",
	backends.OpTypeMax:      "max(%[1]s, %[2]s)",
	backends.OpTypeMin:      "min(%[1]s, %[2]s)",
	backends.OpTypeNeg:      "-%[1]s",
	backends.OpTypeExp:      "exp32(%[1]s)",
	backends.OpTypeErf:      "erf_(%[1]s)",
	backends.OpTypeLogistic: "logistic_(%[1]s)",
	backends.OpTypeTanh:     "tanh_(%[1]s)",
	backends.OpTypeSqrt:     "opq(sqrt(%[1]s))",
	backends.OpTypeRsqrt:    "inverseSqrt(%[1]s)",
	backends.OpTypeAbs:      "abs(%[1]s)",
	backends.OpTypeLog:      "log(%[1]s)",
}

// elementwiseDispatch generates the WGSL of one fused elementwise loop: every leaf is read through its
// strides (parameter words), scalars are literals, the instructions are straight-line code.
func elementwiseDispatch(g *plan.Elementwise, addr addrFunc, fmath string) ([]gpuDispatch, error) {
	r := len(g.Dims)
	if r > gpuMaxRank {
		return nil, errors.Errorf("webgpu: elementwise loop of rank %d (at most %d)", r, gpuMaxRank)
	}
	total := 1
	for _, d := range g.Dims {
		total *= d
	}
	var ins []int
	binding := map[int]int{}
	meta := u32s(total, r)
	meta = append(meta, u32s(g.Dims...)...)
	var sb strings.Builder
	var body strings.Builder
	metaPos := 2 + r
	for li, l := range g.Leaves {
		if l.IsScalar {
			continue
		}
		s, off, err := addr(l.Root)
		if err != nil {
			return nil, err
		}
		b, ok := binding[s]
		if !ok {
			ins = append(ins, s)
			b = len(ins)
			binding[s] = b
		}
		fmt.Fprintf(&body, "  var p%d = prm[%du];\n", li, metaPos)
		meta = append(meta, uint32(off+l.Off))
		for a := 0; a < r; a++ {
			fmt.Fprintf(&body, "  p%d += idx[%d] * prm[%du];\n", li, a, metaPos+1+a)
			meta = append(meta, uint32(l.Strides[a]))
		}
		fmt.Fprintf(&body, "  let l%d = X%d[p%d];\n", li, b, li)
		metaPos += 1 + r
	}
	if len(ins) > 7 {
		return nil, errors.Errorf("webgpu: elementwise loop over %d buffers (at most 7)", len(ins))
	}
	reg := func(x int) string {
		if x < 0 {
			l := g.Leaves[-x-1]
			if l.IsScalar {
				return fmt.Sprintf("bitcast<f32>(%du)", math.Float32bits(l.Scalar))
			}
			return fmt.Sprintf("l%d", -x-1)
		}
		return fmt.Sprintf("r%d", x)
	}
	for k, in := range g.Instrs {
		a, b := reg(in.A), ""
		if in.Binary() {
			b = reg(in.B)
		}
		form, ok := wgslElementwise[in.Op]
		if !ok {
			return nil, errors.Errorf("webgpu: elementwise op %s has no GPU form", in.Op)
		}
		expr := fmt.Sprintf(form, a, b)
		fmt.Fprintf(&body, "  let r%d = %s;\n", k, expr)
	}
	sb.WriteString("// Fused elementwise loop (generated by castgo's WebGPU executor).\n")
	sb.WriteString("@group(0) @binding(0) var<storage, read> prm: array<u32>;\n")
	for i := range ins {
		fmt.Fprintf(&sb, "@group(0) @binding(%d) var<storage, read> X%d: array<f32>;\n", i+1, i+1)
	}
	fmt.Fprintf(&sb, "@group(0) @binding(%d) var<storage, read_write> OUT: array<f32>;\n", len(ins)+1)
	sb.WriteString(fmath)
	sb.WriteString("\n\n")
	sb.WriteString(`@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + li;
  if (i >= prm[0]) { return; }
`)
	fmt.Fprintf(&sb, "  zero = prm[%du];\n", metaPos) // opq's zero: the last parameter word
	meta = append(meta, 0)
	fmt.Fprintf(&sb, "  var idx: array<u32, %d>;\n  var rem = i;\n", max(r, 1))
	for a := r - 1; a >= 0; a-- {
		fmt.Fprintf(&sb, "  idx[%d] = rem %% prm[%du]; rem = rem / prm[%du];\n", a, 2+a, 2+a)
	}
	sb.WriteString(body.String())
	fmt.Fprintf(&sb, "  OUT[i] = r%d;\n}\n", len(g.Instrs)-1)
	return []gpuDispatch{{kernel: sb.String(), ins: ins, meta: meta, groups: groups1D((total + 255) / 256)}}, nil
}

// ProgramInfo describes the WebGPU program a plan translates to: the number of dispatches, storage buffers
// and distinct kernels, and the GEMM + attention FLOPs per execution.
type ProgramInfo struct {
	Dispatches, Buffers, Kernels int
	BufferBytes                  int64
	FLOPs                        int64
}

// Describe translates a plan into its WebGPU program (without a device) and describes it; the error names
// the first step without a GPU form. For tests and tools.
func Describe(pl *plan.Plan) (ProgramInfo, error) {
	p, err := programOf(pl)
	if err != nil {
		return ProgramInfo{}, err
	}
	info := ProgramInfo{Dispatches: len(p.dispatches), Buffers: len(p.slots), FLOPs: p.flops}
	kernels := map[string]bool{}
	for _, d := range p.dispatches {
		kernels[d.kernel] = true
	}
	info.Kernels = len(kernels)
	for _, s := range p.slots {
		info.BufferBytes += int64(s.bytes)
	}
	return info, nil
}
