package cpu

import (
	"math/rand"
	"testing"
)

// gatherStrided (runs along the last axis) against the position computed from each output index.
func TestGatherStrided(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	src := make([]float32, 5000)
	for i := range src {
		src[i] = float32(i)
	}
	for _, c := range []struct{ dims, strides []int }{
		{[]int{7}, []int{1}}, {[]int{7}, []int{0}}, {[]int{7}, []int{3}},
		{[]int{4, 9}, []int{1, 0}}, {[]int{4, 9}, []int{9, 1}}, {[]int{4, 9}, []int{1, 4}},
		{[]int{3, 5, 6}, []int{0, 6, 1}}, {[]int{3, 5, 6}, []int{30, 1, 0}}, {[]int{2, 3, 4, 5}, []int{60, 1, 15, 3}},
		{[]int{2, 1, 300}, []int{300, 0, 1}}, {[]int{1000}, []int{2}}, {[]int{3, 1}, []int{1, 0}},
	} {
		size := 1
		for _, d := range c.dims {
			size *= d
		}
		off := r.Intn(100)
		want := make([]float32, size)
		for i := range want {
			p, rem := off, i
			for a := len(c.dims) - 1; a >= 0; a-- {
				p += (rem % c.dims[a]) * c.strides[a]
				rem /= c.dims[a]
			}
			want[i] = src[p]
		}
		for _, start := range []int{0, 1, size / 3, size - 1} {
			for _, n := range []int{1, 5, 256, size} {
				if start+n > size {
					continue
				}
				dst := make([]float32, n)
				gatherStrided(dst, src, c.dims, c.strides, off, start, make([]int, len(c.dims)))
				for i, v := range dst {
					if v != want[start+i] {
						t.Fatalf("%v strides %v off %d from %d: [%d] = %g, want %g", c.dims, c.strides, off, start, i, v, want[start+i])
					}
				}
			}
		}
	}
}
