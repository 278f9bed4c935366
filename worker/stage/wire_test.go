package stage

import (
	"encoding/binary"
	"errors"
	"math"
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

// TestWireLayout checks the bytes against the format: the values are little-endian float32 after the
// header and the element counts, whichever way Encode copies them.
func TestWireLayout(t *testing.T) {
	in := [][]float32{{1, -2.5, float32(math.Inf(-1))}, {float32(math.NaN()), 5}}
	msg := Encode(7, in)
	if string(msg[:4]) != Magic || binary.LittleEndian.Uint32(msg[4:]) != 7 || binary.LittleEndian.Uint32(msg[8:]) != 2 ||
		binary.LittleEndian.Uint32(msg[16:]) != 3 || binary.LittleEndian.Uint32(msg[20:]) != 2 {
		t.Fatalf("header % x", msg[:24])
	}
	off := 24
	for _, tn := range in {
		for _, v := range tn {
			if got := binary.LittleEndian.Uint32(msg[off:]); got != math.Float32bits(v) {
				t.Fatalf("byte %d: %08x, want %08x (%v)", off, got, math.Float32bits(v), v)
			}
			off += 4
		}
	}
	if off != len(msg) {
		t.Fatalf("%d bytes, want %d", len(msg), off)
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

// BenchmarkWire times a base view's message (9.7 MB): encoding, checking (CRC-32) and decoding.
func BenchmarkWire(b *testing.B) {
	in := [][]float32{make([]float32, 1576*768), make([]float32, 1568*768)}
	for i := range in[0] {
		in[0][i] = float32(i) * 1e-3
	}
	want := []int{len(in[0]), len(in[1])}
	msg := Encode(1, in)
	b.Run("Encode", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			Encode(1, in)
		}
	})
	b.Run("Check", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if err := Check(msg, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Values", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		fill := Values(msg, want)
		for b.Loop() {
			for i := range in {
				if err := fill(i, in[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
