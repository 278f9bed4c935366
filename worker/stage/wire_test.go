package stage

import (
	"errors"
	"testing"
)

func TestWireRoundTripAndCorruption(t *testing.T) {
	in := [][]float32{{1, -2.5, 3e-9}, {4, 5}}
	msg := Encode(3, in)
	got, err := Decode(msg, 3, []int{3, 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		for j := range in[i] {
			if got[i][j] != in[i][j] {
				t.Fatalf("tensor %d value %d: %v, want %v", i, j, got[i][j], in[i][j])
			}
		}
	}
	dst := make([]float32, 2)
	if err := Values(msg, []int{3, 2})(1, dst); err != nil || dst[0] != 4 || dst[1] != 5 {
		t.Fatalf("Values: %v %v", dst, err)
	}
	flipped := append([]byte(nil), msg...)
	flipped[len(flipped)-1] ^= 1
	for name, tc := range map[string]struct {
		b    []byte
		to   int
		want []int
	}{
		"flipped bit":  {flipped, 3, []int{3, 2}},
		"wrong stage":  {msg, 2, []int{3, 2}},
		"wrong shape":  {msg, 3, []int{2, 3}},
		"truncated":    {msg[:len(msg)-4], 3, []int{3, 2}},
		"no header":    {[]byte("CGA"), 3, []int{3, 2}},
		"wrong tensor": {msg, 3, []int{3}},
	} {
		if _, err := Decode(tc.b, tc.to, tc.want); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want a corrupt activation error", name, err)
		}
	}
}

func TestMessageBytes(t *testing.T) {
	in := [][]float32{{1, -2.5, 3e-9}, {4, 5}}
	if got, want := MessageBytes([]int{3, 2}), int64(len(Encode(1, in))); got != want {
		t.Fatalf("MessageBytes = %d, want the encoded length %d", got, want)
	}
	// base: the spatial 1576×768 and temporal 1568×768 tokens of one view, 9.66 MB.
	if got := MessageBytes([]int{1576 * 768, 1568 * 768}); got != 16+8+4*(1576+1568)*768 {
		t.Fatalf("base message: %d bytes", got)
	}
}
