package stage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"unsafe"
)

// The activations between stages travel as one binary message (Content-Type ContentType):
//
//	offset 0   4 bytes  magic "CGA1"
//	offset 4   uint32   the index of the stage the message is for (the sender's index + 1; the coordinator
//	                    sends index 0), so that a message cannot reach the wrong stage unnoticed
//	offset 8   uint32   tensor count k
//	offset 12  uint32   CRC-32 (IEEE) of everything after the header
//	offset 16  k × uint32 element counts, then the tensors' values as little-endian float32, in order
//
// float32, not float16: the chain then computes exactly what one process computes (the split's logits
// have the unsplit model's bits, and the probabilities equal `cast classify`'s), at 9.7 MB per hop for a
// base view (1576×768 + 1568×768 values), which a service binding within one machine carries in
// milliseconds against the seconds of CPU a stage spends.
const (
	Magic       = "CGA1"
	ContentType = "application/x-castgo-activations"
	headerBytes = 16
)

// Encode frames tensors as the activation message for stage index to.
func Encode(to int, tensors [][]float32) []byte {
	n := headerBytes + 4*len(tensors)
	for _, t := range tensors {
		n += 4 * len(t)
	}
	b := make([]byte, n)
	copy(b, Magic)
	binary.LittleEndian.PutUint32(b[4:], uint32(to))
	binary.LittleEndian.PutUint32(b[8:], uint32(len(tensors)))
	off := headerBytes
	for _, t := range tensors {
		binary.LittleEndian.PutUint32(b[off:], uint32(len(t)))
		off += 4
	}
	for _, t := range tensors {
		if littleEndian {
			off += copy(b[off:], f32Bytes(t))
			continue
		}
		for _, v := range t {
			binary.LittleEndian.PutUint32(b[off:], math.Float32bits(v))
			off += 4
		}
	}
	binary.LittleEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[headerBytes:]))
	return b
}

// ErrCorrupt wraps every reason a message is refused.
var ErrCorrupt = errors.New("corrupt activation")

// Check checks a message's header and CRC for stage index to without decoding it.
func Check(b []byte, to int) error {
	if len(b) < headerBytes || string(b[:4]) != Magic {
		return fmt.Errorf("%w: %d bytes without the %q header", ErrCorrupt, len(b), Magic)
	}
	if got := int(binary.LittleEndian.Uint32(b[4:])); got != to {
		return fmt.Errorf("%w: the message is for stage %d, not %d", ErrCorrupt, got, to)
	}
	if sum := crc32.ChecksumIEEE(b[headerBytes:]); sum != binary.LittleEndian.Uint32(b[12:]) {
		return fmt.Errorf("%w: CRC-32 %08x does not match the header's %08x", ErrCorrupt, sum, binary.LittleEndian.Uint32(b[12:]))
	}
	return nil
}

// Decode checks a message for stage index to whose tensors must have the element counts want, and returns
// the tensors.
func Decode(b []byte, to int, want []int) ([][]float32, error) {
	if err := CheckSizes(b, to, want); err != nil {
		return nil, err
	}
	k, off := len(want), headerBytes+4*len(want)
	out := make([][]float32, k)
	for i := range out {
		out[i] = make([]float32, want[i])
	}
	fill(b, off, out)
	return out, nil
}

// Values returns the function that writes tensor i of a message Decode accepted (with the same want)
// into dst, for decoding straight into a tensor's storage.
func Values(b []byte, want []int) func(i int, dst []float32) error {
	return func(i int, dst []float32) error {
		if i >= len(want) || len(dst) != want[i] {
			return fmt.Errorf("%w: tensor %d does not have %d values", ErrCorrupt, i, len(dst))
		}
		off := headerBytes + 4*len(want)
		for _, n := range want[:i] {
			off += 4 * n
		}
		fill(b, off, [][]float32{dst})
		return nil
	}
}

// fill decodes consecutive float32 tensors from b at off into dst.
func fill(b []byte, off int, dst [][]float32) {
	for _, t := range dst {
		if littleEndian {
			off += copy(f32Bytes(t), b[off:off+4*len(t)])
			continue
		}
		for j := range t {
			t[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
			off += 4
		}
	}
}

// CheckSizes checks a message for stage index to whose tensors must have the element counts want, without
// decoding the values (see Values).
func CheckSizes(b []byte, to int, want []int) error {
	if err := Check(b, to); err != nil {
		return err
	}
	k := int(binary.LittleEndian.Uint32(b[8:]))
	if k != len(want) {
		return fmt.Errorf("%w: %d tensors, want %d", ErrCorrupt, k, len(want))
	}
	size := headerBytes + 4*k
	if len(b) < size {
		return fmt.Errorf("%w: truncated header", ErrCorrupt)
	}
	for i := range k {
		n := int(binary.LittleEndian.Uint32(b[headerBytes+4*i:]))
		if n != want[i] {
			return fmt.Errorf("%w: tensor %d has %d values, want %d", ErrCorrupt, i, n, want[i])
		}
		size += 4 * n
	}
	if len(b) != size {
		return fmt.Errorf("%w: %d bytes, want %d", ErrCorrupt, len(b), size)
	}
	return nil
}

// MessageBytes is the size of the message of tensors with the element counts counts.
func MessageBytes(counts []int) int64 {
	n := int64(headerBytes + 4*len(counts))
	for _, c := range counts {
		n += 4 * int64(c)
	}
	return n
}

// InputBytes is the size of st's input message for one view (a larger request body is not an activation
// for this stage).
func InputBytes(st *Stage) int64 {
	shapes := st.Entry.Stage().Inputs(st.Manifest.Config, 1)
	counts := make([]int, len(shapes))
	for i, dims := range shapes {
		counts[i] = numel(dims)
	}
	return MessageBytes(counts)
}

// littleEndian is true on the machines castgo runs on (wasm, amd64, arm64): their float32 values are the
// wire's bytes, copied whole (a per-value loop takes ~100 ms a base message in wasm, a copy a few).
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// f32Bytes is t's memory as bytes.
func f32Bytes(t []float32) []byte {
	if len(t) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&t[0])), 4*len(t))
}
