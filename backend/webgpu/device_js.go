package webgpu

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"syscall/js"
	"unsafe"
	"weak"

	"github.com/castvideo/castgo/backend"
	"github.com/castvideo/castgo/backend/cpu"
	"github.com/castvideo/castgo/backend/plan"
	"github.com/pkg/errors"
)

// The WebGPU executor: a plan (program.go translates it) runs as one command encoder of compute dispatches
// per execution. Variables (the weights) are uploaded once per plan and again only when a different buffer
// (or changed values) is passed, other parameters (the clip) on every execution; intermediate values live
// in pooled GPU buffers; only the outputs (the logits) are read back. Calls block the calling goroutine on
// the JavaScript Promises of WebGPU (requestAdapter, mapAsync, popErrorScope), so they must not run inside
// a js.FuncOf callback.

// init registers the executor as the castgo backend's "webgpu" target: importing this package is what
// makes the option available (the wasm module does; the edge worker, which has no WebGPU, does not).
func init() { backend.RegisterTarget("webgpu", target{}) }

// target implements backend.Target on the WebGPU device of the page or worker.
type target struct{}

// Description names the device kind.
func (target) Description() string { return "WebGPU" }

// Release destroys the GPU buffers held for p now, rather than when p is collected.
func (target) Release(p *plan.Plan) { releaseGPUExec(weak.Make(p)) }

// GPU buffer usage and map mode flags (WebGPU constants).
const (
	gpuMapRead  = 1
	gpuCopySrc  = 4
	gpuCopyDst  = 8
	gpuStorage  = 128
	gpuMapModeR = 1
)

// Info describes the WebGPU adapter the "webgpu" option of the castgo backend runs on, and what ran there.
type Info struct {
	Vendor       string `json:"vendor"`
	Architecture string `json:"architecture"`
	Device       string `json:"device"`
	Description  string `json:"description"`
	ShaderF16    bool   `json:"shaderF16"`
	// MaxBufferMB is the largest storage buffer binding the device was created with.
	MaxBufferMB int `json:"maxBufferMB"`
	// Runs counts executions on the GPU; CPURuns those of graphs that have no GPU form (CPUReason says
	// why the last one had none).
	Runs      int    `json:"runs"`
	CPURuns   int    `json:"cpuRuns"`
	CPUReason string `json:"cpuReason,omitempty"`
	// Lost is the reason the device was lost, if it was (every later execution fails).
	Lost string `json:"lost,omitempty"`
	// WeightBytes and InputBytes count the bytes written to the device for variables (the weights: once
	// per model) and for the other parameters (the clips: every run).
	WeightBytes int64 `json:"weightBytes"`
	InputBytes  int64 `json:"inputBytes"`
	// BufferBytes is the size of the GPU buffers the executables hold now (weights, intermediates, read-back):
	// it falls when an executable is finalized (its model disposed).
	BufferBytes int64 `json:"bufferBytes"`
}

type gpuDevice struct {
	device, queue js.Value
	info          Info
	align         int
	maxStorage    int // storage buffers per shader stage

	mu        sync.Mutex
	pipelines map[string]js.Value
	layouts   map[int][2]js.Value // bind group layout and pipeline layout by number of read-only inputs
}

var (
	gpuMu      sync.Mutex
	gpuDev     *gpuDevice
	gpuDevErr  error
	gpuStats   Info
	gpuExecsMu sync.Mutex
	// gpuExecs holds the device side of each executable run so far (nil: it has no GPU form). The key is
	// weak: when an executable is collected (its model disposed), its GPU buffers are destroyed.
	gpuExecs = map[weak.Pointer[plan.Plan]]*gpuExec{}
)

// await blocks until promise p settles: its value, or an error with the rejection's message.
func await(p js.Value) (js.Value, error) {
	type res struct {
		v   js.Value
		err error
	}
	ch := make(chan res, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any {
		v := js.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		ch <- res{v: v}
		return nil
	})
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "rejected"
		if len(args) > 0 {
			msg = jsMessage(args[0])
		}
		ch <- res{err: errors.New(msg)}
		return nil
	})
	p.Call("then", then, catch)
	r := <-ch
	then.Release()
	catch.Release()
	return r.v, r.err
}

func jsMessage(v js.Value) string {
	if v.Type() == js.TypeObject {
		if m := v.Get("message"); m.Type() == js.TypeString {
			return m.String()
		}
	}
	return v.String()
}

func jsString(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

// Device opens (once) the WebGPU device of this page or worker and describes its adapter; it fails
// when navigator.gpu is missing or yields no adapter, and after a device loss.
func Device() (Info, error) {
	d, err := openGPU()
	gpuMu.Lock()
	defer gpuMu.Unlock()
	info := gpuStats
	if d != nil {
		stats := info
		info = d.info
		info.Runs, info.CPURuns, info.CPUReason, info.Lost = stats.Runs, stats.CPURuns, stats.CPUReason, stats.Lost
		info.WeightBytes, info.InputBytes, info.BufferBytes = stats.WeightBytes, stats.InputBytes, stats.BufferBytes
	}
	if err == nil && info.Lost != "" {
		err = errors.Errorf("webgpu: device lost: %s", info.Lost)
	}
	return info, err
}

func openGPU() (*gpuDevice, error) {
	gpuMu.Lock()
	defer gpuMu.Unlock()
	if gpuDev != nil || gpuDevErr != nil {
		return gpuDev, gpuDevErr
	}
	gpuDev, gpuDevErr = requestGPU()
	return gpuDev, gpuDevErr
}

func requestGPU() (*gpuDevice, error) {
	nav := js.Global().Get("navigator")
	gpu := js.Undefined()
	if nav.Type() == js.TypeObject {
		gpu = nav.Get("gpu")
	}
	if gpu.Type() != js.TypeObject {
		return nil, errors.New("webgpu: not available here (navigator.gpu is missing)")
	}
	opts := js.Global().Get("Object").New()
	opts.Set("powerPreference", "high-performance")
	adapter, err := await(gpu.Call("requestAdapter", opts))
	if err != nil {
		return nil, errors.Wrap(err, "webgpu: requestAdapter")
	}
	if adapter.Type() != js.TypeObject {
		return nil, errors.New("webgpu: navigator.gpu yields no adapter")
	}
	d := &gpuDevice{pipelines: map[string]js.Value{}, layouts: map[int][2]js.Value{}}
	if ai := adapter.Get("info"); ai.Type() == js.TypeObject {
		d.info.Vendor, d.info.Architecture = jsString(ai.Get("vendor")), jsString(ai.Get("architecture"))
		d.info.Device, d.info.Description = jsString(ai.Get("device")), jsString(ai.Get("description"))
	}
	limits := adapter.Get("limits")
	req := js.Global().Get("Object").New()
	for _, l := range []string{"maxStorageBufferBindingSize", "maxBufferSize", "maxStorageBuffersPerShaderStage", "maxComputeWorkgroupStorageSize"} {
		req.Set(l, limits.Get(l))
	}
	desc := js.Global().Get("Object").New()
	desc.Set("requiredLimits", req)
	if adapter.Get("features").Call("has", "shader-f16").Bool() {
		// requested and reported, but the kernels compute in fp32 (the reference precision)
		desc.Set("requiredFeatures", js.Global().Get("Array").Call("of", "shader-f16"))
		d.info.ShaderF16 = true
	}
	dev, err := await(adapter.Call("requestDevice", desc))
	if err != nil {
		return nil, errors.Wrap(err, "webgpu: requestDevice")
	}
	d.device, d.queue = dev, dev.Get("queue")
	dl := dev.Get("limits")
	d.align = dl.Get("minStorageBufferOffsetAlignment").Int()
	d.maxStorage = dl.Get("maxStorageBuffersPerShaderStage").Int()
	d.info.MaxBufferMB = int(dl.Get("maxStorageBufferBindingSize").Float() / (1 << 20))
	go func() {
		v, _ := await(dev.Get("lost"))
		msg := "unknown reason"
		if v.Type() == js.TypeObject {
			msg = jsString(v.Get("reason")) + ": " + jsString(v.Get("message"))
		}
		gpuMu.Lock()
		gpuStats.Lost = msg
		gpuMu.Unlock()
	}()
	return d, nil
}

func gpuLost() string {
	gpuMu.Lock()
	defer gpuMu.Unlock()
	return gpuStats.Lost
}

// layout returns the bind group layout and pipeline layout of a kernel with n read-only inputs.
func (d *gpuDevice) layout(n int) [2]js.Value {
	if l, ok := d.layouts[n]; ok {
		return l
	}
	entries := js.Global().Get("Array").New()
	for i := 0; i <= n+1; i++ {
		e := js.Global().Get("Object").New()
		e.Set("binding", i)
		e.Set("visibility", 4) // GPUShaderStage.COMPUTE
		b := js.Global().Get("Object").New()
		if i == n+1 {
			b.Set("type", "storage")
		} else {
			b.Set("type", "read-only-storage")
		}
		e.Set("buffer", b)
		entries.Call("push", e)
	}
	desc := js.Global().Get("Object").New()
	desc.Set("entries", entries)
	bgl := d.device.Call("createBindGroupLayout", desc)
	pd := js.Global().Get("Object").New()
	pd.Set("bindGroupLayouts", js.Global().Get("Array").Call("of", bgl))
	l := [2]js.Value{bgl, d.device.Call("createPipelineLayout", pd)}
	d.layouts[n] = l
	return l
}

func (d *gpuDevice) pipeline(src string, n int) js.Value {
	key := fmt.Sprint(n, "|", src)
	if p, ok := d.pipelines[key]; ok {
		return p
	}
	md := js.Global().Get("Object").New()
	md.Set("code", src)
	mod := d.device.Call("createShaderModule", md)
	comp := js.Global().Get("Object").New()
	comp.Set("module", mod)
	comp.Set("entryPoint", "main")
	pd := js.Global().Get("Object").New()
	pd.Set("layout", d.layout(n)[1])
	pd.Set("compute", comp)
	p := d.device.Call("createComputePipeline", pd)
	d.pipelines[key] = p
	return p
}

// gpuExec is the device side of one executable.
type gpuExec struct {
	mu         sync.Mutex
	prog       *gpuProgram
	dev        *gpuDevice
	bufs       []js.Value // one per slot of prog, then the parameter words of the dispatches
	bytes      int64      // the size of bufs and readback, counted in gpuStats.BufferBytes while they exist
	groups     []js.Value
	pipes      []js.Value
	stamps     []paramStamp
	readback   js.Value
	readBytes  int
	outOffsets []int
}

type paramStamp struct {
	buf   weak.Pointer[cpu.Buffer]
	print [cpu.FingerprintSamples]uint32
	ok    bool
}

// withErrorScope runs f inside validation and out-of-memory error scopes and returns their first error.
func (d *gpuDevice) withErrorScope(what string, f func()) error {
	d.device.Call("pushErrorScope", "out-of-memory")
	d.device.Call("pushErrorScope", "validation")
	f()
	var first error
	for _, kind := range []string{"validation", "out-of-memory"} {
		v, err := await(d.device.Call("popErrorScope"))
		if err == nil && v.Type() == js.TypeObject {
			err = errors.New(jsMessage(v))
		}
		if err != nil && first == nil {
			first = errors.Wrapf(err, "webgpu: %s (%s)", what, kind)
		}
	}
	return first
}

// errNoGPUForm marks a plan that has no GPU translation (it then runs on the CPU); any other error of
// newGPUExec comes from the device and fails the execution.
type errNoGPUForm struct{ error }

func newGPUExec(e *plan.Plan, d *gpuDevice) (*gpuExec, error) {
	prog, err := programOf(e)
	if err != nil {
		return nil, errNoGPUForm{err}
	}
	for _, ds := range prog.dispatches {
		if len(ds.ins)+2 > d.maxStorage {
			return nil, errNoGPUForm{errors.Errorf("webgpu: step %q needs %d storage buffers, the device allows %d", ds.label, len(ds.ins)+2, d.maxStorage)}
		}
	}
	g := &gpuExec{prog: prog, dev: d, stamps: make([]paramStamp, len(e.Params))}
	err = d.withErrorScope("preparing the plan", func() {
		dev := d.device
		for _, s := range prog.slots {
			bd := js.Global().Get("Object").New()
			bd.Set("size", s.bytes)
			bd.Set("usage", gpuStorage|gpuCopySrc|gpuCopyDst)
			b := dev.Call("createBuffer", bd)
			g.bufs = append(g.bufs, b)
			g.bytes += int64(s.bytes)
			if s.kind == gpuSlotConst {
				d.write(b, bytesOf(s.node.Data), s.bytes)
			}
		}
		// all parameter words in one buffer, each dispatch's at an aligned offset
		align := max(d.align, 4)
		offs := make([]int, len(prog.dispatches))
		total := 0
		for i, ds := range prog.dispatches {
			offs[i] = total
			total += (4*len(ds.meta) + align - 1) / align * align
		}
		words := make([]uint32, total/4)
		for i, ds := range prog.dispatches {
			copy(words[offs[i]/4:], ds.meta)
		}
		bd := js.Global().Get("Object").New()
		bd.Set("size", max(total, 4))
		bd.Set("usage", gpuStorage|gpuCopyDst)
		meta := dev.Call("createBuffer", bd)
		g.bufs = append(g.bufs, meta) // after the slots: g.bufs[s] is still slot s
		g.bytes += int64(max(total, 4))
		d.write(meta, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), 4*len(words)), max(total, 4))
		d.mu.Lock()
		for i, ds := range prog.dispatches {
			pipe := d.pipeline(ds.kernel, len(ds.ins))
			entries := js.Global().Get("Array").New()
			add := func(binding int, buf js.Value, off, size int) {
				e := js.Global().Get("Object").New()
				e.Set("binding", binding)
				r := js.Global().Get("Object").New()
				r.Set("buffer", buf)
				if size > 0 {
					r.Set("offset", off)
					r.Set("size", size)
				}
				e.Set("resource", r)
				entries.Call("push", e)
			}
			add(0, meta, offs[i], max(4*len(ds.meta), 4))
			for k, s := range ds.ins {
				add(k+1, g.bufs[s], 0, 0)
			}
			add(len(ds.ins)+1, g.bufs[ds.out], 0, 0)
			desc := js.Global().Get("Object").New()
			desc.Set("layout", d.layout(len(ds.ins))[0])
			desc.Set("entries", entries)
			g.groups = append(g.groups, dev.Call("createBindGroup", desc))
			g.pipes = append(g.pipes, pipe)
		}
		d.mu.Unlock()
		for _, o := range prog.outputs {
			g.outOffsets = append(g.outOffsets, g.readBytes)
			g.readBytes += 4 * o.size
		}
		bd = js.Global().Get("Object").New()
		bd.Set("size", max(g.readBytes, 4))
		bd.Set("usage", gpuMapRead|gpuCopyDst)
		g.readback = dev.Call("createBuffer", bd)
		g.bytes += int64(max(g.readBytes, 4))
	})
	gpuMu.Lock()
	gpuStats.BufferBytes += g.bytes
	gpuMu.Unlock()
	if err != nil {
		g.destroy()
		return nil, err
	}
	return g, nil
}

// destroy frees g's GPU buffers (once; the caller holds g.mu or is its only user).
func (g *gpuExec) destroy() {
	for _, b := range g.bufs {
		b.Call("destroy")
	}
	if g.readback.Type() == js.TypeObject {
		g.readback.Call("destroy")
	}
	g.bufs, g.readback, g.groups = nil, js.Undefined(), nil
	gpuMu.Lock()
	gpuStats.BufferBytes -= g.bytes
	gpuMu.Unlock()
	g.bytes = 0
}

// releaseGPUExec forgets the device side of the executable key and destroys its buffers.
func releaseGPUExec(key weak.Pointer[plan.Plan]) {
	gpuExecsMu.Lock()
	g := gpuExecs[key]
	delete(gpuExecs, key)
	gpuExecsMu.Unlock()
	if g != nil {
		g.mu.Lock()
		g.destroy()
		g.mu.Unlock()
	}
}

// bytesOf views a flat float32 or int8 slice as bytes.
func bytesOf(flat any) []byte {
	switch f := flat.(type) {
	case []float32:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
	case []int8:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), len(f))
	}
	return nil
}

// write copies data (zero-padded to size bytes) into buffer b.
func (d *gpuDevice) write(b js.Value, data []byte, size int) {
	u8 := js.Global().Get("Uint8Array").New(size)
	js.CopyBytesToJS(u8, data)
	d.queue.Call("writeBuffer", b, 0, u8)
}

// Run runs e on the WebGPU device. handled is false when e has no GPU form (it then runs on the CPU).
func (target) Run(e *plan.Plan, inputs []*cpu.Buffer) (outs []*cpu.Buffer, handled bool, err error) {
	if lost := gpuLost(); lost != "" {
		return nil, true, errors.Errorf("webgpu: device lost: %s", lost)
	}
	d, err := openGPU()
	if err != nil {
		return nil, true, err
	}
	key := weak.Make(e)
	gpuExecsMu.Lock()
	g, ok := gpuExecs[key]
	gpuExecsMu.Unlock()
	if !ok {
		var perr error
		g, perr = newGPUExec(e, d)
		if lost := gpuLost(); lost != "" {
			return nil, true, errors.Errorf("webgpu: device lost: %s", lost)
		}
		if perr != nil {
			if _, ok := perr.(errNoGPUForm); !ok {
				return nil, true, perr // the device refused the plan: an error, not a silent CPU run
			}
			gpuMu.Lock()
			gpuStats.CPUReason = perr.Error()
			gpuMu.Unlock()
			g = nil // remembered: this executable runs on the CPU
		}
		gpuExecsMu.Lock()
		gpuExecs[key] = g
		gpuExecsMu.Unlock()
		runtime.AddCleanup(e, releaseGPUExec, key)
	}
	if g == nil {
		gpuMu.Lock()
		gpuStats.CPURuns++
		gpuMu.Unlock()
		return nil, false, nil
	}
	outs, err = g.run(e, inputs)
	if err != nil {
		if lost := gpuLost(); lost != "" {
			err = errors.Errorf("webgpu: device lost: %s (%v)", lost, err)
		}
		return nil, true, err
	}
	gpuMu.Lock()
	gpuStats.Runs++
	gpuMu.Unlock()
	return outs, true, nil
}

func (g *gpuExec) run(e *plan.Plan, inputs []*cpu.Buffer) ([]*cpu.Buffer, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bufs == nil {
		return nil, errors.New("castgo backend: the executable was finalized")
	}
	d := g.dev
	var outs []*cpu.Buffer
	err := d.withErrorScope("running the plan", func() {
		for i, b := range inputs {
			s := g.prog.paramSlot[i]
			if s < 0 {
				continue
			}
			// Variables (GoMLX names them "var:…": the weights) stay on the device while the same buffer
			// with the same sampled values is passed; every other parameter (the clip) is written each run.
			variable := strings.HasPrefix(e.Params[i].Name, "var:")
			if variable {
				st := paramStamp{buf: weak.Make(b), print: cpu.Fingerprint(b, nil), ok: true}
				if g.stamps[i] == st {
					continue
				}
				g.stamps[i] = st
			}
			d.write(g.bufs[s], bytesOf(b.Flat), g.prog.slots[s].bytes)
			gpuMu.Lock()
			if variable {
				gpuStats.WeightBytes += int64(g.prog.slots[s].bytes)
			} else {
				gpuStats.InputBytes += int64(g.prog.slots[s].bytes)
			}
			gpuMu.Unlock()
		}
		enc := d.device.Call("createCommandEncoder")
		pass := enc.Call("beginComputePass")
		for i, ds := range g.prog.dispatches {
			pass.Call("setPipeline", g.pipes[i])
			pass.Call("setBindGroup", 0, g.groups[i])
			pass.Call("dispatchWorkgroups", ds.groups[0], ds.groups[1], ds.groups[2])
		}
		pass.Call("end")
		for i, o := range g.prog.outputs {
			enc.Call("copyBufferToBuffer", g.bufs[o.slot], 4*o.Off, g.readback, g.outOffsets[i], 4*o.size)
		}
		d.queue.Call("submit", js.Global().Get("Array").Call("of", enc.Call("finish")))
	})
	if err != nil {
		return nil, err
	}
	if _, err := await(g.readback.Call("mapAsync", gpuMapModeR, 0, max(g.readBytes, 4))); err != nil {
		return nil, errors.Wrap(err, "webgpu: reading the outputs back")
	}
	u8 := js.Global().Get("Uint8Array").New(g.readback.Call("getMappedRange", 0, max(g.readBytes, 4)))
	for i, o := range g.prog.outputs {
		flat := make([]float32, o.size)
		js.CopyBytesToGo(bytesOf(flat), u8.Call("subarray", g.outOffsets[i], g.outOffsets[i]+4*o.size))
		outs = append(outs, &cpu.Buffer{Shape: e.Outputs[i].Shape.Clone(), Flat: flat})
	}
	g.readback.Call("unmap")
	return outs, nil
}

// DestroyDevice destroys the WebGPU device (if one is open), as a device loss would: every later
// execution on it fails with a "device lost" error. For tests of the callers' fallback.
func DestroyDevice() {
	gpuMu.Lock()
	d := gpuDev
	gpuMu.Unlock()
	if d != nil {
		d.device.Call("destroy")
	}
}
