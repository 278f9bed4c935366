package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// pw writes protocol-2 pickles the way torch.save does, for synthetic test checkpoints.
type pw struct{ bytes.Buffer }

func (p *pw) op(b ...byte) *pw { p.Write(b); return p }

func (p *pw) str(s string) *pw {
	p.op('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pw) int(n int) *pw {
	p.op('J')
	binary.Write(&p.Buffer, binary.LittleEndian, int32(n))
	return p
}

func (p *pw) global(module, name string) *pw {
	p.op('c')
	p.WriteString(module + "\n" + name + "\n")
	return p
}

func (p *pw) ints(v []int) *pw {
	p.op('(')
	for _, n := range v {
		p.int(n)
	}
	return p.op('t')
}

// tensor writes _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
func (p *pw) tensor(storageType, key string, numel, offset int, size, stride []int) *pw {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(')
	p.op('(').str("storage").global("torch", storageType).str(key).str("cpu").int(numel).op('t', 'Q')
	p.int(offset).ints(size).ints(stride).op(0x89)
	p.global("collections", "OrderedDict").op(')', 'R')
	return p.op('t', 'R')
}

// object writes an instance of an arbitrary class the way pickle protocol 2 does: NEWOBJ, then BUILD
// with a state dict.
func (p *pw) object(module, name string) *pw {
	p.global(module, name).op(')', 0x81)
	p.op('}', '(').str("cur_scale").int(65536).str("flag").op(0x88, 'u')
	return p.op('b')
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func u16bytes(v ...uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

// zipFile builds a stored (uncompressed) zip archive with the given records, in order.
func zipFile(t testing.TB, records ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(records); i += 2 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: records[i].(string), Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(records[i+1].([]byte))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// syntheticPickle is a checkpoint in the non-DeepSpeed layout {'model', 'optimizer', 'args', 'epoch', …}
// whose state dict exercises prefixes, views with offsets and strides, and a half storage.
func syntheticPickle() []byte {
	p := &pw{}
	p.op(0x80, 2, '}', '(')
	p.str("model").global("collections", "OrderedDict").op(')', 'R', '(')
	p.str("module.backbone.w").tensor("FloatStorage", "0", 8, 0, []int{2, 3}, []int{3, 1})
	p.str("module.t").tensor("FloatStorage", "0", 8, 0, []int{3, 2}, []int{1, 3})
	p.str("encoder.off").tensor("FloatStorage", "0", 8, 5, []int{3}, []int{1})
	p.str("exp").tensor("FloatStorage", "0", 8, 6, []int{2, 2}, []int{0, 1})
	p.str("h").tensor("HalfStorage", "1", 4, 0, []int{4}, []int{1})
	p.str("scalar").tensor("FloatStorage", "0", 8, 7, []int{}, []int{})
	p.op('u')
	p.str("optimizer").object("deepspeed.runtime.fp16.loss_scaler", "DynamicLossScaler")
	p.str("args").object("argparse", "Namespace")
	p.str("epoch").int(3)
	p.str("moments").tensor("FloatStorage", "99", 1000, 0, []int{1000}, []int{1}) // storage absent: never read
	p.op('u', '.')
	return p.Bytes()
}

func syntheticCheckpoint(t testing.TB) []byte {
	return zipFile(t,
		"ckpt/data.pkl", syntheticPickle(),
		"ckpt/data/0", f32bytes(0, 1, 2, 3, 4, 5, 6, 7),
		"ckpt/data/1", u16bytes(0x3c00, 0xc000, 0x3800, 0x0001),
		"ckpt/version", []byte("3\n"),
		"ckpt/byteorder", []byte("little"),
	)
}
