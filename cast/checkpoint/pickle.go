package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// scanPickle walks the opcode stream of data.pkl without executing it and checks that every
// length-prefixed argument fits in the bytes that remain. gopickle allocates the buffer for such an argument
// before reading it, so without this check a 9-byte BINBYTES8 could ask for exabytes and kill the process
// (an out-of-memory fault cannot be recovered). After the scan every allocation the unpickler makes is
// bounded by len(data).
func scanPickle(data []byte) error {
	i := 0
	for i < len(data) {
		op := data[i]
		pos := i
		i++
		spec := opArgs[op]
		rest := len(data) - i
		switch spec.kind {
		case argInvalid:
			return fmt.Errorf("unknown pickle opcode 0x%02x at byte %d", op, pos)
		case argNone:
			if op == '.' { // STOP
				return nil
			}
		case argFixed:
			if rest < spec.n {
				return fmt.Errorf("pickle opcode %q at byte %d needs %d argument bytes, %d remain", op, pos, spec.n, rest)
			}
			if op == 0x95 { // FRAME: the frame's opcodes follow inline and are scanned as usual
				if n := binary.LittleEndian.Uint64(data[i:]); n > uint64(rest-8) {
					return fmt.Errorf("pickle frame at byte %d declares %d bytes, only %d remain", pos, n, rest-8)
				}
			}
			i += spec.n
		case argLen:
			if rest < spec.n {
				return fmt.Errorf("pickle opcode %q at byte %d needs a %d-byte length, %d bytes remain", op, pos, spec.n, rest)
			}
			var n uint64
			switch spec.n {
			case 1:
				n = uint64(data[i])
			case 4:
				n = uint64(binary.LittleEndian.Uint32(data[i:]))
			case 8:
				n = binary.LittleEndian.Uint64(data[i:])
			}
			i += spec.n
			if n > uint64(len(data)-i) {
				return fmt.Errorf("pickle opcode %q at byte %d declares %d bytes of data, only %d remain (truncated or corrupt data.pkl)", op, pos, n, len(data)-i)
			}
			i += int(n)
		case argLines:
			for range spec.n {
				j := i
				for j < len(data) && data[j] != '\n' {
					j++
				}
				if j == len(data) {
					return fmt.Errorf("pickle opcode %q at byte %d: unterminated text argument", op, pos)
				}
				i = j + 1
			}
		}
	}
	return fmt.Errorf("pickle stream ends after %d bytes without a STOP opcode (truncated data.pkl)", len(data))
}

const (
	argInvalid = iota // not a pickle opcode
	argNone           // no argument
	argFixed          // n argument bytes
	argLen            // n-byte little-endian length, then that many bytes
	argLines          // n newline-terminated text arguments
)

type opArg struct{ kind, n int }

// opArgs describes the argument of every opcode of pickle protocols 0–5 (see Python's pickletools).
var opArgs = func() (t [256]opArg) {
	for _, op := range []byte("(.012NQRabd}elo]stu)\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98") {
		t[op] = opArg{argNone, 0}
	}
	for op, n := range map[byte]int{'J': 4, 'K': 1, 'M': 2, 'h': 1, 'j': 4, 'q': 1, 'r': 4, 'G': 8,
		0x80: 1, 0x82: 1, 0x83: 2, 0x84: 4, 0x95: 8} {
		t[op] = opArg{argFixed, n}
	}
	for op, n := range map[byte]int{'T': 4, 'U': 1, 'X': 4, 'B': 4, 'C': 1, 0x8a: 1, 0x8b: 4, 0x8c: 1,
		0x8d: 8, 0x8e: 8, 0x96: 8} {
		t[op] = opArg{argLen, n}
	}
	for _, op := range []byte("FILPSVgp") {
		t[op] = opArg{argLines, 1}
	}
	t['c'] = opArg{argLines, 2}
	t['i'] = opArg{argLines, 2}
	return t
}()

// storageType is a torch.*Storage class named by a GLOBAL: how many bytes one element takes and how to turn
// those bytes into a float32.
type storageType struct {
	name   string
	size   int
	decode func(b []byte) float32
}

var storageTypes = map[string]*storageType{
	"FloatStorage":    {"FloatStorage", 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }},
	"HalfStorage":     {"HalfStorage", 2, func(b []byte) float32 { return halfToFloat32(binary.LittleEndian.Uint16(b)) }},
	"BFloat16Storage": {"BFloat16Storage", 2, func(b []byte) float32 { return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16) }},
	"DoubleStorage":   {"DoubleStorage", 8, func(b []byte) float32 { return float32(math.Float64frombits(binary.LittleEndian.Uint64(b))) }},
	"LongStorage":     {"LongStorage", 8, func(b []byte) float32 { return float32(int64(binary.LittleEndian.Uint64(b))) }},
	"IntStorage":      {"IntStorage", 4, func(b []byte) float32 { return float32(int32(binary.LittleEndian.Uint32(b))) }},
	"ShortStorage":    {"ShortStorage", 2, func(b []byte) float32 { return float32(int16(binary.LittleEndian.Uint16(b))) }},
	"CharStorage":     {"CharStorage", 1, func(b []byte) float32 { return float32(int8(b[0])) }},
	"ByteStorage":     {"ByteStorage", 1, func(b []byte) float32 { return float32(b[0]) }},
	"BoolStorage":     {"BoolStorage", 1, func(b []byte) float32 { return float32(b[0] & 1) }},
}

// halfToFloat32 converts IEEE 754 binary16 bits to float32 exactly (subnormals, infinities and NaNs included).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	default: // subnormal: mant × 2^-24, exact in float32
		v := float32(mant) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// storageRef is a persistent reference to the raw storage record <prefix>data/<key>, not yet read.
type storageRef struct {
	typ   *storageType
	key   string
	numel int
}

// tensorRef is a torch tensor as _rebuild_tensor_v2 describes it: a strided view of a storage.
type tensorRef struct {
	storage *storageRef
	offset  int
	size    []int
	stride  []int
}

// rebuildTensor stands for torch._utils._rebuild_tensor_v2 (and _rebuild_tensor): it records the view
// without touching the storage bytes, so tensors outside the chosen state dict (optimizer moments) are never read.
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: want at least 4 arguments, got %d", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: first argument is %T, not a storage", args[0])
	}
	off, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset is %T, not an int", args[1])
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %w", err)
	}
	return &tensorRef{storage: st, offset: off, size: size, stride: stride}, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data, requires_grad, hooks): the parameter is
// its data tensor.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter: no arguments")
	}
	if _, ok := args[0].(*tensorRef); !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is %T, not a tensor", args[0])
	}
	return args[0], nil
}

// rebuildFromType stands for torch._tensor._rebuild_from_type_v2(func, type, args, state): it calls func(*args).
type rebuildFromType struct{}

func (rebuildFromType) Call(args ...any) (any, error) {
	if len(args) < 3 {
		return nil, fmt.Errorf("_rebuild_from_type_v2: want 4 arguments, got %d", len(args))
	}
	fn, ok := args[0].(types.Callable)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type_v2: function is %T, not callable", args[0])
	}
	tup, ok := args[2].(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type_v2: arguments are %T, not a tuple", args[2])
	}
	return fn.Call(*tup...)
}

func intTuple(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%T is not a tuple", v)
	}
	out := make([]int, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok {
			if b, isBig := t.Get(i).(*big.Int); isBig {
				return nil, fmt.Errorf("element %d (%s) is too large", i, b)
			}
			return nil, fmt.Errorf("element %d is %T, not an int", i, t.Get(i))
		}
		out[i] = n
	}
	return out, nil
}

// opaqueClass is any GLOBAL the loader does not model (DeepSpeed loss scalers, argparse.Namespace, numpy
// scalars, torch.device, …). It can be called, instantiated and given state, and yields an opaqueObject, so
// such objects elsewhere in the checkpoint do not stop the state dict from loading.
type opaqueClass struct{ module, name string }

func (c *opaqueClass) Call(args ...any) (any, error)  { return &opaqueObject{class: c}, nil }
func (c *opaqueClass) PyNew(args ...any) (any, error) { return &opaqueObject{class: c}, nil }

// opaqueObject is an instance of an opaqueClass; its state is discarded.
type opaqueObject struct{ class *opaqueClass }

func (o *opaqueObject) PySetState(any) error                  { return nil }
func (o *opaqueObject) PyDictSet(key, value any) error        { return nil }
func (o *opaqueObject) PySetAttr(key string, value any) error { return nil }

func (o *opaqueObject) String() string { return o.class.module + "." + o.class.name + " object" }

// findClass resolves the GLOBALs a torch.save pickle names (collections.OrderedDict is handled by gopickle
// before this hook runs).
func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	case "torch._tensor._rebuild_from_type_v2":
		return rebuildFromType{}, nil
	}
	if module == "torch" {
		if st, ok := storageTypes[name]; ok {
			return st, nil
		}
	}
	return &opaqueClass{module: module, name: name}, nil
}
