// Package hashinit regenerates the goldens' synthetic weights and inputs bit-exactly from the counter-based
// hash recipe of CAST.md §B.3, so tests can check a loaded checkpoint or run a parity forward without parsing
// model.pt.
//
// The recipe, for a state-dict key and a seed:
//
//	key = FNV-1a-64(utf8("<seed>:<state_dict key>"))
//	for i in 0..numel-1 (C order):
//	  x = key + (i+1)*0x9E3779B97F4A7C15 (mod 2^64)
//	  z = (x ^ (x>>30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z>>27)) * 0x94D049BB133111EB; z ^= z>>31
//	  v = float32(int(z>>40) - 2^23) / 2^23      (exact, in [-1, 1))
//	  w = float32(float32(v)*scale) + offset     (two separately rounded float32 operations)
//
// Every float32 operation here is written with an explicit float32 conversion so the compiler cannot fuse
// the multiply and add into an FMA (the Go spec guarantees that an explicit conversion rounds).
package hashinit

import (
	"math"
	"strconv"
	"strings"
)

const (
	fnvOffset64 = 0xcbf29ce484222325
	fnvPrime64  = 0x100000001b3
	golden      = 0x9E3779B97F4A7C15
	mix1        = 0xBF58476D1CE4E5B9
	mix2        = 0x94D049BB133111EB
	two23       = 1 << 23
)

// Key is FNV-1a-64 of the UTF-8 string "<seed>:<name>", the per-tensor stream key of the recipe.
func Key(seed int, name string) uint64 {
	h := uint64(fnvOffset64)
	for _, b := range []byte(strconv.Itoa(seed) + ":" + name) {
		h ^= uint64(b)
		h *= fnvPrime64
	}
	return h
}

// at is the recipe's value for element i of the stream with the given key: exactly representable, in [-1, 1).
func at(key uint64, i int) float32 {
	x := key + uint64(i+1)*golden
	z := (x ^ (x >> 30)) * mix1
	z = (z ^ (z >> 27)) * mix2
	z ^= z >> 31
	return float32(int64(z>>40)-two23) / two23
}

// Uniform returns the n raw values v of the stream "<seed>:<name>", each exact and in [-1, 1).
func Uniform(seed int, name string, n int) []float32 {
	key := Key(seed, name)
	out := make([]float32, n)
	for i := range out {
		out[i] = at(key, i)
	}
	return out
}

// Rule returns the scale and offset the recipe applies to a state-dict tensor, chosen by its name and
// shape: names ending in "bias" get (0.1, 0); names ending in "weight" get (0.1, 1) when 1-D (LayerNorm
// gammas) and (float32(sqrt(3/fan_in)), 0) when of rank >= 2, with fan_in = numel/shape[0] and the square
// root taken in float64; everything else (class, positional, time and space embeddings) gets (0.5, 0).
func Rule(name string, shape []int) (scale, offset float32) {
	switch {
	case strings.HasSuffix(name, "bias"):
		return 0.1, 0
	case strings.HasSuffix(name, "weight") && len(shape) >= 2:
		numel := 1
		for _, d := range shape {
			numel *= d
		}
		fanIn := numel / shape[0]
		return float32(math.Sqrt(3 / float64(fanIn))), 0
	case strings.HasSuffix(name, "weight"):
		return 0.1, 1
	default:
		return 0.5, 0
	}
}

// Tensor returns the recipe's values for the state-dict tensor name of the given shape, in C order, exactly
// as the goldens' model.pt holds them (generated with weights seed seed).
func Tensor(seed int, name string, shape []int) []float32 {
	numel := 1
	for _, d := range shape {
		numel *= d
	}
	scale, offset := Rule(name, shape)
	key := Key(seed, name)
	out := make([]float32, numel)
	for i := range out {
		out[i] = float32(float32(at(key, i)*scale) + offset)
	}
	return out
}

// Input returns the goldens' synthetic input of n values for the given input seed: the stream
// "<seed>:input" times 2, i.e. values in [-2, 2). Reshape it to [B, 3, T, H, W] in C order.
func Input(seed int, n int) []float32 {
	out := Uniform(seed, "input", n)
	for i, v := range out {
		out[i] = float32(v * 2)
	}
	return out
}
