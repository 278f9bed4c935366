// Package backend is castgo's own GoMLX backend, registered as "castgo": the facade GoMLX talks to. Its
// Builder records a graph of plan.Node; Compile hands it to package backend/plan, which fuses it into a
// target-neutral plan of typed steps (weight-packed GEMMs with epilogues, fused attention, layer norm,
// chunked elementwise loops, views, generic ops), and lowers the plan onto the CPU executor (package
// backend/cpu, over the kernels of package backend/kernels). A Target registered by its package (the
// WebGPU executor, package backend/webgpu, registers itself in js/wasm when imported) runs the plan on a
// device instead when the config selects it.
//
// Config string (comma separated): "threads=N" (kernel goroutines; default GOMAXPROCS, 1 in js/wasm),
// "profile" (record the wall time of each plan step, see Profile), "webgpu" (run compiled plans on the
// WebGPU device of the page or worker: js/wasm with package backend/webgpu linked in), "releasepacked"
// (inference only: a weight that an executable reads only as a GEMM's packed weight has its data released
// once packed, so that the packed form is its only copy; reading it back then fails), "floatattention" (an
// int8 model's attentions run in float32, as GoMLX's reference backend computes them, instead of the
// integer attention on int8 K and V that int8 models take by default on the CPU). The environment variable
// CASTGO_PROFILE=1 also turns profiling on.
package backend

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"

	"github.com/castvideo/castgo/backend/cpu"
	"github.com/castvideo/castgo/backend/kernels"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// Name is the name under which the backend is registered with GoMLX. ("go", the name cast/infer also
// accepts for it, is simplego's registered name.)
const Name = "castgo"

func init() {
	backends.Register(Name, func(config string) (backends.Backend, error) { return New(config) })
}

// Backend implements backends.Backend.
type Backend struct {
	config  string
	threads int
	profile bool
	target  Target // nil: the CPU
	// floatAttention: int8 models keep float32 attention on the CPU (option floatattention)
	floatAttention bool
	finalized      bool

	packs *cpu.PackCache
}

var _ backends.Backend = (*Backend)(nil)

// New returns a castgo backend configured by config (see the package documentation).
func New(config string) (*Backend, error) {
	b := &Backend{config: config, threads: runtime.GOMAXPROCS(0), packs: cpu.NewPackCache()}
	if runtime.GOOS == "js" {
		b.threads = 1
	}
	if v := os.Getenv("CASTGO_PROFILE"); v != "" && v != "0" {
		b.profile = true
	}
	for _, opt := range strings.Split(config, ",") {
		opt = strings.TrimSpace(opt)
		key, val, _ := strings.Cut(opt, "=")
		switch key {
		case "":
		case "profile":
			b.profile = true
		case "releasepacked":
			b.packs.ReleaseSources = true
		case "floatattention":
			b.floatAttention = true
		case "webgpu":
			t := registeredTarget(key)
			if t == nil {
				return nil, fmt.Errorf("castgo backend: the webgpu option needs js/wasm with the WebGPU executor (package backend/webgpu) linked in")
			}
			b.target = t
		case "threads", "parallelism":
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("castgo backend: bad %q in config %q", opt, config)
			}
			if n > 0 && runtime.GOOS != "js" {
				b.threads = n
			}
		default:
			return nil, fmt.Errorf("castgo backend: unknown option %q in config %q", opt, config)
		}
	}
	if b.packs.ReleaseSources && b.target != nil {
		return nil, fmt.Errorf("castgo backend: the releasepacked option is for the CPU executor, not with webgpu (config %q)", config)
	}
	kernels.SetThreads(b.threads)
	if b.profile {
		EnableProfile(true)
	}
	return b, nil
}

func (b *Backend) Name() string { return Name }

func (b *Backend) String() string { return Name }

func (b *Backend) Description() string {
	if b.target != nil {
		return "castgo, " + b.target.Description()
	}
	return fmt.Sprintf("castgo, %d threads", b.threads)
}

func (b *Backend) NumDevices() int { return 1 }

func (b *Backend) DeviceDescription(deviceNum backends.DeviceNum) string { return "cpu" }

func (b *Backend) Finalize() {
	b.packs.Clear()
	b.finalized = true
}

func (b *Backend) IsFinalized() bool { return b.finalized }

// Capabilities lists the ops and dtypes this backend implements.
func (b *Backend) Capabilities() backends.Capabilities {
	c := backends.Capabilities{Operations: map[backends.OpType]bool{}, DTypes: map[dtypes.DType]bool{}}
	for op := range supportedOps {
		c.Operations[op] = true
	}
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.Int8, dtypes.Int32, dtypes.Int64, dtypes.Uint8, dtypes.Bool} {
		c.DTypes[dt] = true
	}
	return c
}

func (b *Backend) toBuffer(buffer backends.Buffer) (*Buffer, error) {
	buf, ok := buffer.(*Buffer)
	if !ok || buf == nil {
		return nil, errors.Errorf("castgo backend: buffer %T is not a castgo buffer", buffer)
	}
	if buf.Flat == nil {
		return nil, errors.New("castgo backend: buffer already finalized")
	}
	return buf, nil
}

func (b *Backend) BufferFinalize(buffer backends.Buffer) error {
	buf, err := b.toBuffer(buffer)
	if err != nil {
		return err
	}
	b.packs.Drop(buf)
	buf.Flat = nil
	return nil
}

func (b *Backend) BufferShape(buffer backends.Buffer) (shapes.Shape, error) {
	buf, ok := buffer.(*Buffer)
	if !ok {
		return shapes.Invalid(), errors.Errorf("castgo backend: buffer %T is not a castgo buffer", buffer)
	}
	return buf.Shape, nil
}

func (b *Backend) BufferDeviceNum(buffer backends.Buffer) (backends.DeviceNum, error) { return 0, nil }

// errPacked is the error of reading a weight whose data was released once packed (the releasepacked
// option).
func errPacked(buf *Buffer) error {
	return errors.Errorf("castgo backend: the %s weight's data was released once packed (option releasepacked): only the GEMMs of its executable can read it", buf.Shape)
}

func (b *Backend) BufferToFlatData(buffer backends.Buffer, flat any) error {
	buf, err := b.toBuffer(buffer)
	if err != nil {
		return err
	}
	if buf.Packed {
		return errPacked(buf)
	}
	dst, src := reflect.ValueOf(flat), reflect.ValueOf(buf.Flat)
	if dst.Kind() != reflect.Slice || dst.Type() != src.Type() || dst.Len() != src.Len() {
		return errors.Errorf("castgo backend: BufferToFlatData into %T[%d], buffer is %s", flat, dst.Len(), buf.Shape)
	}
	reflect.Copy(dst, src)
	return nil
}

func (b *Backend) BufferFromFlatData(deviceNum backends.DeviceNum, flat any, shape shapes.Shape) (backends.Buffer, error) {
	src := reflect.ValueOf(flat)
	if src.Kind() != reflect.Slice || src.Len() != shape.Size() {
		return nil, errors.Errorf("castgo backend: BufferFromFlatData %T for shape %s", flat, shape)
	}
	buf, _, err := b.NewSharedBuffer(deviceNum, shape)
	if err != nil {
		return nil, err
	}
	dst := reflect.ValueOf(buf.(*Buffer).Flat)
	if dst.Type() != src.Type() {
		return nil, errors.Errorf("castgo backend: BufferFromFlatData %T for shape %s", flat, shape)
	}
	reflect.Copy(dst, src)
	return buf, nil
}

func (b *Backend) HasSharedBuffers() bool { return true }

// PackInt8 packs the int8 weight w (with its per-output-channel float32 scale) for the GEMMs that will
// read it, now instead of at their first run; with the releasepacked option its data is then dropped, so a
// loader that calls it as each weight arrives never holds more than one weight unpacked (cpu.PackCache.PackInt8).
// With a target (WebGPU) it does nothing: the weights are read there, not packed for the CPU.
func (b *Backend) PackInt8(w, scale backends.Buffer) error {
	if b.target != nil {
		return nil
	}
	wb, err := b.toBuffer(w)
	if err != nil {
		return err
	}
	sb, err := b.toBuffer(scale)
	if err != nil {
		return err
	}
	if err := b.packs.PackInt8(wb, sb); err != nil {
		return errors.Wrap(err, "castgo backend")
	}
	return nil
}

func (b *Backend) NewSharedBuffer(deviceNum backends.DeviceNum, shape shapes.Shape) (backends.Buffer, any, error) {
	goType := shape.DType.GoType()
	if goType == nil {
		return nil, nil, errors.Errorf("castgo backend: dtype %s not supported", shape.DType)
	}
	flat := reflect.MakeSlice(reflect.SliceOf(goType), shape.Size(), shape.Size()).Interface()
	return &Buffer{Shape: shape.Clone(), Flat: flat}, flat, nil
}

func (b *Backend) BufferData(buffer backends.Buffer) (any, error) {
	buf, err := b.toBuffer(buffer)
	if err != nil {
		return nil, err
	}
	if buf.Packed {
		return nil, errPacked(buf)
	}
	return buf.Flat, nil
}

func (b *Backend) BufferCopyToDevice(source backends.Buffer, deviceNum backends.DeviceNum) (backends.Buffer, error) {
	return nil, errors.New("castgo backend: only one device")
}
