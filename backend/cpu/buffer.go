// Package cpu is castgo's CPU executor: it lowers the steps of a plan (package backend/plan) onto the
// kernels of package backend/kernels (Lower; an MLP's two GEMMs run together in row blocks: chain.go), runs
// them with their intermediates in one arena per program (Program.Run, arena.go), and holds the generic
// implementation of every op (Eval: the fallback step and the planner's constant folding) and the cache of
// packed weights shared by a backend's programs (PackCache).
package cpu

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sync"
	"weak"

	"github.com/castvideo/castgo/backend/kernels"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Buffer is a tensor's storage: a flat Go slice of the shape's dtype.
type Buffer struct {
	Shape shapes.Shape
	Flat  any
	// Packed says the data was released once packed (PackCache.ReleaseSources): Flat is an empty slice of
	// the dtype, and only the packed GEMMs that packed it can read the weight.
	Packed bool
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
	print [FingerprintSamples]uint32 // bits of sampled values, to notice a shared buffer mutated in place
}

// FingerprintSamples is the number of values Fingerprint samples.
const FingerprintSamples = 64

// PackCache holds the packed form of the weights (kernels.PackedB) by the buffer they were packed from,
// shared by every program of a backend (the forward graph of each batch size, the taps graph).
type PackCache struct {
	// ReleaseSources makes the cache release a weight's data once it has packed it, when the program
	// says that nothing else reads it (an inference-only backend: see Lower): the packed form is then the
	// weight's only copy. Set it before the first run.
	ReleaseSources bool

	mu    sync.Mutex
	packs map[packKey]*packEntry
}

// NewPackCache returns an empty cache.
func NewPackCache() *PackCache { return &PackCache{packs: map[packKey]*packEntry{}} }

// Clear forgets every packed weight.
func (c *PackCache) Clear() {
	c.mu.Lock()
	c.packs = map[packKey]*packEntry{}
	c.mu.Unlock()
}

// Fingerprint samples a weight (and its scale) at evenly spaced positions.
func Fingerprint(w, scale *Buffer) (fp [FingerprintSamples]uint32) {
	switch f := w.Flat.(type) {
	case []float32:
		for i := range fp {
			if len(f) > 0 {
				fp[i] = math.Float32bits(f[i*(len(f)-1)/(FingerprintSamples-1)])
			}
		}
	case []int8:
		for i := range fp[:FingerprintSamples/2] {
			if len(f) > 0 {
				fp[i] = uint32(uint8(f[i*(len(f)-1)/(FingerprintSamples/2-1)]))
			}
		}
	}
	if scale != nil {
		f := scale.Flat.([]float32)
		for i := range fp[FingerprintSamples/2:] {
			if len(f) > 0 {
				fp[FingerprintSamples/2+i] = math.Float32bits(f[i*(len(f)-1)/(FingerprintSamples/2-1)])
			}
		}
	}
	return fp
}

// Drop forgets the packed weights packed from buf or scaled by it (buf is being finalized).
func (c *PackCache) Drop(buf *Buffer) {
	c.mu.Lock()
	wp := weak.Make(buf)
	for k, e := range c.packs {
		if k.buf == wp || e.scale == wp {
			delete(c.packs, k)
		}
	}
	c.mu.Unlock()
}

// packed returns the packed form of a weight, packing it on first use per weight buffer (shared by every
// executable of this backend: the forward graph of each batch size, the taps graph).
//
// release says that the program reads w only through this packing: with ReleaseSources set, w's data is
// then dropped after packing (Buffer.Packed).
func (c *PackCache) packed(w, scale *Buffer, transposed bool, k, n int, release bool) *kernels.PackedB {
	key := packKey{buf: weak.Make(w), transposed: transposed}
	ws := weak.Make(scale)
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.Packed {
		if e := c.packs[key]; e != nil && e.p.K == k && e.p.N == n && e.scale == ws {
			return e.p
		}
		panic(fmt.Sprintf("a %s weight was released after packing (ReleaseSources) and is read as a %d×%d GEMM weight (transposed %v) it was not packed as", w.Shape, k, n, transposed))
	}
	fp := Fingerprint(w, scale)
	if e := c.packs[key]; e != nil && e.p.K == k && e.p.N == n && e.scale == ws && e.print == fp {
		if release && c.ReleaseSources {
			releaseData(w)
		}
		return e.p
	}
	var p *kernels.PackedB
	if scale != nil {
		p = kernels.PackBInt8(w.Flat.([]int8), scale.Flat.([]float32), k, n)
	} else if transposed {
		p = kernels.PackB(nil, w.Flat.([]float32), k, k, n, true)
	} else {
		p = kernels.PackB(nil, w.Flat.([]float32), n, k, n, false)
	}
	if _, had := c.packs[key]; !had {
		runtime.AddCleanup(w, func(key packKey) {
			c.mu.Lock()
			delete(c.packs, key)
			c.mu.Unlock()
		}, key)
	}
	c.packs[key] = &packEntry{p: p, scale: ws, print: fp}
	if release && c.ReleaseSources {
		releaseData(w)
	}
	return p
}

// PackInt8 packs the int8 weight w ([N, …] with the float32 scale of each of its N output channels, read by
// GEMMs as the transposed weight of K = the rest of its size) now instead of at its first GEMM, and with
// ReleaseSources set drops its data (Buffer.Packed): a loader calls it as each weight arrives, so that no
// weight's unpacked data outlives its own loading. A program that reads the weight otherwise than as that
// GEMM weight then fails with an error saying so.
func (c *PackCache) PackInt8(w, scale *Buffer) error {
	q, ok := w.Flat.([]int8)
	if !ok || w.Packed || w.Shape.Rank() < 1 || w.Shape.Dimensions[0] == 0 {
		return fmt.Errorf("PackInt8: the weight is %s (packed %v), want int8 [N, …] with data", w.Shape, w.Packed)
	}
	n := w.Shape.Dimensions[0]
	if sc, ok := scale.Flat.([]float32); !ok || len(sc) != n || scale.Packed {
		return fmt.Errorf("PackInt8: the scale of a %s weight is %s, want float32 [%d]", w.Shape, scale.Shape, n)
	}
	c.packed(w, scale, true, len(q)/n, n, true)
	return nil
}

// releaseData drops w's data, keeping its dtype: the packed form is its only copy now.
func releaseData(w *Buffer) {
	w.Flat = reflect.MakeSlice(reflect.TypeOf(w.Flat), 0, 0).Interface()
	w.Packed = true
}
