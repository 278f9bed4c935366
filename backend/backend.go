// Package backend is castgo's own GoMLX backend, registered as "castgo": it compiles a GoMLX graph into a
// plan of fused steps (weight-packed GEMMs with epilogues, fused attention, layer norm, chunked elementwise
// loops) executed by the kernels of package backend/kernels, with buffers reused by liveness.
//
// Config string (comma separated): "threads=N" (kernel goroutines; default GOMAXPROCS, 1 in js/wasm),
// "profile" (record the wall time of each plan step, see Profile), "webgpu" (run compiled plans on the
// WebGPU device of the page or worker, js/wasm only: see gpu.go and gpu_js.go). The environment variable
// CASTGO_PROFILE=1 also turns profiling on.
package backend

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pkg/errors"
)

// Name is the name under which the backend is registered with GoMLX.
const Name = "castgo"

func init() {
	backends.Register(Name, func(config string) (backends.Backend, error) { return New(config) })
}

// Backend implements backends.Backend.
type Backend struct {
	config    string
	threads   int
	profile   bool
	webgpu    bool
	finalized bool

	packMu sync.Mutex
	packs  map[packKey]*packEntry
}

var _ backends.Backend = (*Backend)(nil)

// New returns a castgo backend configured by config (see the package documentation).
func New(config string) (*Backend, error) {
	b := &Backend{config: config, threads: runtime.GOMAXPROCS(0), packs: map[packKey]*packEntry{}}
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
		case "webgpu":
			if !webgpuAvailable {
				return nil, fmt.Errorf("castgo backend: the webgpu option needs js/wasm (a browser with WebGPU)")
			}
			b.webgpu = true
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
	kernels.SetThreads(b.threads)
	if b.profile {
		EnableProfile(true)
	}
	return b, nil
}

func (b *Backend) Name() string   { return Name }
func (b *Backend) String() string { return Name }
func (b *Backend) Description() string {
	if b.webgpu {
		return "castgo, WebGPU"
	}
	return fmt.Sprintf("castgo, %d threads", b.threads)
}
func (b *Backend) NumDevices() int                                       { return 1 }
func (b *Backend) DeviceDescription(deviceNum backends.DeviceNum) string { return "cpu" }
func (b *Backend) Finalize() {
	b.packMu.Lock()
	b.packs = map[packKey]*packEntry{}
	b.packMu.Unlock()
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

// Buffer is a tensor's storage: a flat Go slice of the shape's dtype.
type Buffer struct {
	Shape shapes.Shape
	Flat  any
}

// packKey identifies a packed weight by the buffer it was packed from. The pointer is weak, so the cache
// never keeps a weight alive: an entry goes when its buffer is finalized or collected.
type packKey struct {
	buf        weak.Pointer[Buffer]
	transposed bool
}

type packEntry struct {
	p     *kernels.PackedB
	scale weak.Pointer[Buffer]
	print [fingerprintSamples]uint32 // bits of sampled values, to notice a shared buffer mutated in place
}

const fingerprintSamples = 64

// fingerprint samples a weight (and its scale) at evenly spaced positions.
func fingerprint(w, scale *Buffer) (fp [fingerprintSamples]uint32) {
	switch f := w.Flat.(type) {
	case []float32:
		for i := range fp {
			if len(f) > 0 {
				fp[i] = math.Float32bits(f[i*(len(f)-1)/(fingerprintSamples-1)])
			}
		}
	case []int8:
		for i := range fp[:fingerprintSamples/2] {
			if len(f) > 0 {
				fp[i] = uint32(uint8(f[i*(len(f)-1)/(fingerprintSamples/2-1)]))
			}
		}
	}
	if scale != nil {
		f := scale.Flat.([]float32)
		for i := range fp[fingerprintSamples/2:] {
			if len(f) > 0 {
				fp[fingerprintSamples/2+i] = math.Float32bits(f[i*(len(f)-1)/(fingerprintSamples/2-1)])
			}
		}
	}
	return fp
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
	b.dropPacks(buf)
	buf.Flat = nil
	return nil
}

func (b *Backend) dropPacks(buf *Buffer) {
	b.packMu.Lock()
	wp := weak.Make(buf)
	for k, e := range b.packs {
		if k.buf == wp || e.scale == wp {
			delete(b.packs, k)
		}
	}
	b.packMu.Unlock()
}

func (b *Backend) BufferShape(buffer backends.Buffer) (shapes.Shape, error) {
	buf, ok := buffer.(*Buffer)
	if !ok {
		return shapes.Invalid(), errors.Errorf("castgo backend: buffer %T is not a castgo buffer", buffer)
	}
	return buf.Shape, nil
}

func (b *Backend) BufferDeviceNum(buffer backends.Buffer) (backends.DeviceNum, error) { return 0, nil }

func (b *Backend) BufferToFlatData(buffer backends.Buffer, flat any) error {
	buf, err := b.toBuffer(buffer)
	if err != nil {
		return err
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
	return buf.Flat, nil
}

func (b *Backend) BufferCopyToDevice(source backends.Buffer, deviceNum backends.DeviceNum) (backends.Buffer, error) {
	return nil, errors.New("castgo backend: only one device")
}
