// Package modelfile reads and writes the castgo model file: the single self-describing file that every
// front end (CLI, WASM, edge worker) loads. It holds the weights, the model configuration, the class labels
// of every head, the test-time view protocol and the quantization mode.
//
// # Layout
//
// The file is a safetensors file (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON header (padded with spaces to a multiple of 8), then the raw
// little-endian tensor bytes. Each header entry gives a tensor's dtype, shape and [begin, end) byte offsets
// into the data section; the "__metadata__" entry is a string → string map that carries the castgo
// metadata, each structured value as a JSON string:
//
//	castgo.format        "castgo/1"
//	castgo.name          free text
//	castgo.description   free text
//	castgo.config        JSON cast.Config
//	castgo.labels        JSON {"logits": [...]} or {"noun": [...], "verb": [...]}
//	castgo.protocol      JSON preprocess.Protocol
//	castgo.quantization  "none" or "int8"
//	castgo.clip_seconds  optional: the duration in seconds of the training clips, as a decimal number (e.g.
//	                     "2" for 16 frames at 8 fps); the page's live camera mode uses it as its window
//	castgo.stage         JSON StageMeta, only in a stage file (one stage of a split model, see package
//	                     shard): it then holds exactly that stage's tensors
//
// Float32 tensors are stored as F32 under their state-dict names. An int8 tensor is stored as I8 under its
// own name, and its per-output-channel float32 scales as an F32 tensor named "<name>.int8_scale" of shape
// [shape[0]]; the reader reassembles the pair into one weights.Tensor of dtype I8.
//
// # Library
//
// The header and data section are encoded and decoded with github.com/nlpodyssey/safetensors, a pure-Go
// (CGO-free, WASM-friendly) implementation of the format. It supports every dtype needed here, I8
// included; its reader works in place on a []byte (nothing is copied before the per-tensor decode, which
// suits a WASM ArrayBuffer) and validates strictly: header size, JSON shape, known dtypes, overflow-checked
// element counts, and data offsets that must tile the data section exactly (no gaps, overlaps or trailing
// bytes). Its writer is deterministic (JSON keys sorted; data ordered by descending dtype width, then by
// name), which keeps every F32 tensor 4-byte aligned within the file so a front end can view it as a
// Float32Array without copying. This package adds the castgo semantics on top: metadata, int8 scale
// pairing and consistency checks.
package modelfile

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/nlpodyssey/safetensors"
)

// Format is the value of castgo.format this package writes and accepts.
const Format = "castgo/1"

// MaxHeaderBytes bounds the JSON header (the largest real header, a base model's with labels, is well
// under 1 MiB).
const MaxHeaderBytes = 64 << 20

// Quantization modes.
const (
	QuantNone = "none" // every tensor is F32
	QuantInt8 = "int8" // some tensors (typically the large matrices) are I8 with per-channel scales
)

// ScaleSuffix is appended to an int8 tensor's name to name its per-output-channel scale tensor.
const ScaleSuffix = ".int8_scale"

// Keys of the safetensors __metadata__ map.
const (
	KeyFormat       = "castgo.format"
	KeyName         = "castgo.name"
	KeyDescription  = "castgo.description"
	KeyConfig       = "castgo.config"
	KeyLabels       = "castgo.labels"
	KeyProtocol     = "castgo.protocol"
	KeyQuantization = "castgo.quantization"
	KeyClipSeconds  = "castgo.clip_seconds"
	KeyStage        = "castgo.stage"
)

// StageMeta marks a stage file: stage Index of Count of a split model (cast.Stage: its block range and
// whether it embeds or has the head). A stage file holds exactly the tensors the stage owns.
type StageMeta struct {
	Index int `json:"index"`
	Count int `json:"count"`
	cast.Stage
}

// Validate checks the stage against cfg.
func (s *StageMeta) Validate(cfg cast.Config) error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("stage %d of %d is out of range", s.Index, s.Count)
	}
	if s.Embed != (s.Index == 0) || s.Head != (s.Index == s.Count-1) {
		return fmt.Errorf("stage %d of %d (%s): only the first stage embeds and only the last has the head", s.Index, s.Count, s.Stage)
	}
	return s.Stage.Validate(cfg)
}

// stateDict is the tensors a file of this metadata holds: the config's whole state dict, or a stage's.
func (m *Metadata) stateDict() []cast.ParamSpec {
	if m.Stage != nil {
		return m.Stage.StateDict(m.Config)
	}
	return m.Config.StateDict()
}

// MaxClipSeconds bounds Metadata.ClipSeconds: a training clip longer than ten minutes is a mistake.
const MaxClipSeconds = 600

// Metadata describes the model a file holds.
type Metadata struct {
	Format       string              // Format ("castgo/1"); Write fills it in when empty
	Name         string              // short model name, e.g. "cast-b16-ssv2"
	Description  string              // free text: provenance, licence, accuracy
	Config       cast.Config         // model shape
	Labels       map[string][]string // class names per head ("logits", or "noun"/"verb"), in class-index order
	Protocol     preprocess.Protocol // test-time view protocol
	Quantization string              // QuantNone or QuantInt8; Write derives it from the weights when empty
	// ClipSeconds is the duration of the model's training clips in seconds (0: unknown, the key is then
	// absent); front ends that classify a stream, like the page's live camera mode, use it as their window.
	ClipSeconds float64
	Stage       *StageMeta // set in a stage file only
}

// File is a decoded model file.
type File struct {
	Meta    Metadata
	Weights weights.Set
}

// Validate checks the metadata on its own: format, a valid config, labels for exactly the config's heads
// with one name per class, a usable protocol and a known quantization mode.
func (m *Metadata) Validate() error {
	if m.Format != Format {
		return fmt.Errorf("format %q is not %q", m.Format, Format)
	}
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if m.Stage != nil {
		if err := m.Stage.Validate(m.Config); err != nil {
			return err
		}
	}
	heads, classes := m.Config.Heads(), m.Config.HeadClasses()
	for i, h := range heads {
		l, ok := m.Labels[h]
		if !ok {
			return fmt.Errorf("labels: no labels for head %q (the config has heads %v)", h, heads)
		}
		if len(l) != classes[i] {
			return fmt.Errorf("labels: head %q has %d labels but the config gives it %d classes", h, len(l), classes[i])
		}
	}
	if len(m.Labels) != len(heads) {
		var extra []string
		for h := range m.Labels {
			if !contains(heads, h) {
				extra = append(extra, h)
			}
		}
		sort.Strings(extra)
		return fmt.Errorf("labels: heads %v are not outputs of this config (which has %v)", extra, heads)
	}
	if err := validateProtocol(m.Protocol); err != nil {
		return err
	}
	if m.Quantization != QuantNone && m.Quantization != QuantInt8 {
		return fmt.Errorf("quantization %q is neither %q nor %q", m.Quantization, QuantNone, QuantInt8)
	}
	if err := validateClipSeconds(m.ClipSeconds); err != nil {
		return err
	}
	return nil
}

// validateClipSeconds accepts 0 (unknown) or a finite duration in (0, MaxClipSeconds].
func validateClipSeconds(s float64) error {
	if s == 0 {
		return nil
	}
	if math.IsNaN(s) || s < 0 || s > MaxClipSeconds {
		return fmt.Errorf("clip seconds %v: want a duration in (0, %d] seconds, or 0 for unknown", s, MaxClipSeconds)
	}
	return nil
}

func validateProtocol(p preprocess.Protocol) error {
	switch {
	case p.Sampling != preprocess.Segment && p.Sampling != preprocess.Dense:
		return fmt.Errorf("protocol: sampling %q is neither %q nor %q", p.Sampling, preprocess.Segment, preprocess.Dense)
	case p.Clips < 1 || p.Crops < 1:
		return fmt.Errorf("protocol: clips (%d) and crops (%d) must be at least 1", p.Clips, p.Crops)
	case p.Sampling == preprocess.Dense && p.SamplingRate < 1:
		return fmt.Errorf("protocol: dense sampling needs a sampling rate >= 1, got %d", p.SamplingRate)
	}
	return nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// checkWeights checks the tensors and their agreement with the quantization mode.
func checkWeights(set weights.Set, quant string) error {
	if len(set) == 0 {
		return errors.New("no weights")
	}
	nI8 := 0
	for _, name := range set.Names() {
		t := set[name]
		if t == nil {
			return fmt.Errorf("tensor %q is nil", name)
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		if t.DType == weights.I8 {
			nI8++
			if _, clash := set[name+ScaleSuffix]; clash {
				return fmt.Errorf("tensor %q clashes with the scale tensor of int8 tensor %q", name+ScaleSuffix, name)
			}
		}
		if name == "__metadata__" {
			return errors.New(`a tensor cannot be named "__metadata__"`)
		}
	}
	switch {
	case quant == QuantNone && nI8 > 0:
		return fmt.Errorf("quantization is %q but %d tensors are int8", QuantNone, nI8)
	case quant == QuantInt8 && nI8 == 0:
		return fmt.Errorf("quantization is %q but no tensor is int8", QuantInt8)
	}
	return nil
}

// checkSetLayout is checkLayout for the weights of a file about to be written, so that Write never
// produces a file Parse would refuse.
func checkSetLayout(meta *Metadata, set weights.Set) error {
	infos := make(map[string]*safetensors.TensorInfo, len(set))
	for name, t := range set {
		switch t.DType {
		case weights.F32:
			infos[name] = &safetensors.TensorInfo{DType: safetensors.F32, Shape: u64shape(t.Shape)}
		case weights.I8:
			infos[name] = &safetensors.TensorInfo{DType: safetensors.I8, Shape: u64shape(t.Shape)}
			infos[name+ScaleSuffix] = &safetensors.TensorInfo{DType: safetensors.F32, Shape: []uint64{uint64(len(t.Scale))}}
		}
	}
	return checkLayout(meta, infos)
}

// view adapts a weights tensor (or an int8 tensor's scales) to safetensors.View; Data encodes on demand so
// the writer holds at most one tensor's bytes at a time.
type view struct {
	dtype safetensors.DType
	shape []uint64
	f32   []float32
	i8    []int8
}

func (v view) DType() safetensors.DType { return v.dtype }
func (v view) Shape() []uint64          { return v.shape }
func (v view) DataLen() uint64 {
	if v.dtype == safetensors.I8 {
		return uint64(len(v.i8))
	}
	return 4 * uint64(len(v.f32))
}
func (v view) Data() []byte {
	if v.dtype == safetensors.I8 {
		b := make([]byte, len(v.i8))
		for i, x := range v.i8 {
			b[i] = byte(x)
		}
		return b
	}
	b := make([]byte, 4*len(v.f32))
	for i, x := range v.f32 {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func u64shape(s []int) []uint64 {
	out := make([]uint64, len(s))
	for i, d := range s {
		out[i] = uint64(d)
	}
	return out
}

// Write encodes f to w. Empty Meta.Format and Meta.Quantization are filled in (the latter from the
// weights); the metadata and weights are validated first, so an invalid file is never written. The output
// is deterministic for a given File.
func Write(w io.Writer, f *File) error {
	if f == nil {
		return errors.New("modelfile: write: nil file")
	}
	meta := f.Meta
	if meta.Format == "" {
		meta.Format = Format
	}
	if meta.Quantization == "" {
		meta.Quantization = QuantNone
		for _, t := range f.Weights {
			if t != nil && t.DType == weights.I8 {
				meta.Quantization = QuantInt8
				break
			}
		}
	}
	if err := meta.Validate(); err != nil {
		return fmt.Errorf("modelfile: write: metadata: %w", err)
	}
	if err := checkWeights(f.Weights, meta.Quantization); err != nil {
		return fmt.Errorf("modelfile: write: %w", err)
	}
	if err := checkSetLayout(&meta, f.Weights); err != nil {
		return fmt.Errorf("modelfile: write: %w", err)
	}
	md, err := encodeMetadata(&meta)
	if err != nil {
		return fmt.Errorf("modelfile: write: %w", err)
	}
	views := make(map[string]safetensors.View, len(f.Weights))
	for name, t := range f.Weights {
		switch t.DType {
		case weights.F32:
			views[name] = view{dtype: safetensors.F32, shape: u64shape(t.Shape), f32: t.F32}
		case weights.I8:
			views[name] = view{dtype: safetensors.I8, shape: u64shape(t.Shape), i8: t.I8}
			views[name+ScaleSuffix] = view{dtype: safetensors.F32, shape: []uint64{uint64(len(t.Scale))}, f32: t.Scale}
		}
	}
	if err := safetensors.SerializeToWriter(views, md, w); err != nil {
		return fmt.Errorf("modelfile: write: %w", err)
	}
	return nil
}

func encodeMetadata(m *Metadata) (map[string]string, error) {
	cfg, err := json.Marshal(m.Config)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	labels, err := json.Marshal(m.Labels)
	if err != nil {
		return nil, fmt.Errorf("encoding labels: %w", err)
	}
	proto, err := json.Marshal(m.Protocol)
	if err != nil {
		return nil, fmt.Errorf("encoding protocol: %w", err)
	}
	md := map[string]string{
		KeyFormat:       m.Format,
		KeyName:         m.Name,
		KeyDescription:  m.Description,
		KeyConfig:       string(cfg),
		KeyLabels:       string(labels),
		KeyProtocol:     string(proto),
		KeyQuantization: m.Quantization,
	}
	if m.ClipSeconds != 0 {
		md[KeyClipSeconds] = strconv.FormatFloat(m.ClipSeconds, 'g', -1, 64)
	}
	if m.Stage != nil {
		st, err := json.Marshal(m.Stage)
		if err != nil {
			return nil, fmt.Errorf("encoding stage: %w", err)
		}
		md[KeyStage] = string(st)
	}
	return md, nil
}

// Save writes f to path atomically: it writes a temporary file in the same directory and renames it over
// path only once everything has been written and synced.
func Save(path string, f *File) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("modelfile: save: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := Write(bw, f); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("modelfile: save %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("modelfile: save %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("modelfile: save %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("modelfile: save %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("modelfile: save: %w", err)
	}
	return nil
}

// Load reads and parses the model file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("modelfile: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes a model file held in memory. The tensor values are decoded straight from data into the
// returned tensors (data is not retained). Every structural or semantic problem gives an error naming it;
// Parse never panics.
func Parse(data []byte) (f *File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("modelfile: malformed file: decoder failed: %v", p)
		}
	}()
	f, err = parse(data)
	if err != nil {
		return nil, fmt.Errorf("modelfile: %w", err)
	}
	return f, nil
}

func parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for a safetensors header", len(data))
	}
	if n := binary.LittleEndian.Uint64(data); n > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d runs past the end of the %d-byte file (truncated, or not a model file)", n, len(data))
	}
	if n := binary.LittleEndian.Uint64(data); n > MaxHeaderBytes {
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit", n, MaxHeaderBytes)
	}
	n, header, err := safetensors.ReadMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("invalid safetensors file: %w", err)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d runs past the end of the %d-byte file", n, len(data))
	}
	meta, err := decodeMetadata(header.Metadata())
	if err != nil {
		return nil, err
	}
	body := data[8+n:]
	infos := header.Tensors()
	// Every offset and size is checked against the data section here, whatever the library checked.
	for name, info := range infos {
		if err := checkInfo(name, info, uint64(len(body))); err != nil {
			return nil, err
		}
	}
	// The config must describe exactly the tensors the file carries before anything is decoded: a config
	// that disagrees with them (a depth of 2³⁰ with a few tensors, say) is refused here, not when the
	// model is built from it.
	if err := checkLayout(meta, infos); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(infos))
	for name := range infos {
		names = append(names, name)
	}
	sort.Strings(names)
	set := make(weights.Set, len(infos))
	for _, name := range names {
		info := infos[name]
		raw := body[info.DataOffsets[0]:info.DataOffsets[1]]
		shape := make([]int, len(info.Shape))
		for i, d := range info.Shape {
			if d > math.MaxInt32 {
				return nil, fmt.Errorf("tensor %q: dimension %d is too large", name, d)
			}
			shape[i] = int(d)
		}
		switch info.DType {
		case safetensors.F32:
			if strings.HasSuffix(name, ScaleSuffix) {
				base := strings.TrimSuffix(name, ScaleSuffix)
				if bi, ok := infos[base]; !ok || bi.DType != safetensors.I8 {
					return nil, fmt.Errorf("scale tensor %q has no int8 tensor %q to go with", name, base)
				}
				continue // consumed with its int8 tensor
			}
			set[name] = weights.NewF32(shape, decodeF32(raw))
		case safetensors.I8:
			if len(shape) == 0 {
				return nil, fmt.Errorf("int8 tensor %q must have at least one dimension", name)
			}
			si, ok := infos[name+ScaleSuffix]
			if !ok {
				return nil, fmt.Errorf("int8 tensor %q has no scale tensor %q", name, name+ScaleSuffix)
			}
			if si.DType != safetensors.F32 || len(si.Shape) != 1 || si.Shape[0] != info.Shape[0] {
				return nil, fmt.Errorf("scale tensor %q is %s%v, want F32[%d]", name+ScaleSuffix, si.DType, si.Shape, info.Shape[0])
			}
			q := make([]int8, len(raw))
			for i, b := range raw {
				q[i] = int8(b)
			}
			set[name] = &weights.Tensor{Shape: shape, DType: weights.I8, I8: q,
				Scale: decodeF32(body[si.DataOffsets[0]:si.DataOffsets[1]])}
		default:
			return nil, fmt.Errorf("tensor %q has dtype %s; castgo model files hold only F32 and I8 tensors", name, info.DType)
		}
	}
	if err := checkWeights(set, meta.Quantization); err != nil {
		return nil, err
	}
	return &File{Meta: *meta, Weights: set}, nil
}

// checkInfo checks one header entry against the data section: offsets in order and inside it, and a
// byte length equal to the element count (overflow-checked) times the dtype's size.
func checkInfo(name string, info *safetensors.TensorInfo, bodyLen uint64) error {
	begin, end := info.DataOffsets[0], info.DataOffsets[1]
	if begin > end || end > bodyLen {
		return fmt.Errorf("tensor %q: data offsets [%d, %d) are outside the %d-byte data section", name, begin, end, bodyLen)
	}
	size := uint64(0)
	switch info.DType {
	case safetensors.F32:
		size = 4
	case safetensors.I8:
		size = 1
	default:
		return fmt.Errorf("tensor %q has dtype %s; castgo model files hold only F32 and I8 tensors", name, info.DType)
	}
	n := uint64(1)
	for _, d := range info.Shape {
		if d > math.MaxInt32 {
			return fmt.Errorf("tensor %q: dimension %d is too large", name, d)
		}
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > bodyLen {
			return fmt.Errorf("tensor %q: shape %v has more elements than the file has bytes", name, info.Shape)
		}
		n = lo
	}
	if n*size != end-begin {
		return fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, but its data offsets span %d", name, info.Shape, info.DType, n*size, end-begin)
	}
	return nil
}

// checkLayout checks the header's tensors against the state dict of cfg (cast.Config.StateDict): every
// expected tensor present with its shape, as F32, or (in an int8 file, for a quantizable weight) as I8
// with an F32 scale tensor of one value per output channel; nothing missing and nothing else.
func checkLayout(meta *Metadata, infos map[string]*safetensors.TensorInfo) error {
	cfg, quant := meta.Config, meta.Quantization
	var missing, unexpected, wrong []string
	seen := make(map[string]bool, len(infos))
	for _, spec := range meta.stateDict() {
		info, ok := infos[spec.Name]
		if !ok {
			missing = append(missing, spec.Name)
			continue
		}
		seen[spec.Name] = true
		if _, ok := infos[spec.Name+ScaleSuffix]; ok && info.DType == safetensors.I8 {
			seen[spec.Name+ScaleSuffix] = true // checked below, or moot when the shape is wrong
		}
		shape := make([]int, len(info.Shape))
		for i, d := range info.Shape {
			shape[i] = int(d) // bounded by checkInfo
		}
		if !slices.Equal(shape, spec.Shape) {
			wrong = append(wrong, fmt.Sprintf("%s is %s%v, want %v", spec.Name, info.DType, shape, spec.Shape))
			continue
		}
		if info.DType != safetensors.I8 {
			continue
		}
		switch {
		case quant != QuantInt8:
			wrong = append(wrong, fmt.Sprintf("%s is I8 but the quantization is %q", spec.Name, quant))
		case !cast.Quantizable(spec.Name, spec.Shape):
			wrong = append(wrong, fmt.Sprintf("%s is I8 but the int8 scheme keeps it float32", spec.Name))
		default:
			sname := spec.Name + ScaleSuffix
			si, ok := infos[sname]
			if !ok {
				wrong = append(wrong, fmt.Sprintf("int8 tensor %q has no scale tensor %q", spec.Name, sname))
				continue
			}
			if si.DType != safetensors.F32 || len(si.Shape) != 1 || si.Shape[0] != info.Shape[0] {
				wrong = append(wrong, fmt.Sprintf("scale tensor %q is %s%v, want F32[%d]", sname, si.DType, si.Shape, info.Shape[0]))
			}
		}
	}
	for name := range infos {
		if !seen[name] {
			unexpected = append(unexpected, name)
		}
	}
	if len(missing)+len(unexpected)+len(wrong) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	sort.Strings(wrong)
	var parts []string
	if len(wrong) > 0 {
		parts = append(parts, fmt.Sprintf("%d mismatched: %s", len(wrong), listSome(wrong, 8, "; ")))
	}
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing: %s", len(missing), listSome(missing, 8, ", ")))
	}
	if len(unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected: %s", len(unexpected), listSome(unexpected, 8, ", ")))
	}
	of := ""
	if meta.Stage != nil {
		of = fmt.Sprintf(" stage %d of %d (%s) of", meta.Stage.Index, meta.Stage.Count, meta.Stage.Stage)
	}
	return fmt.Errorf("the tensors do not match the%s config (depth %d, embed_dim %d, %d heads, %d frames, classes %v): %s",
		of, cfg.Depth, cfg.EmbedDim, cfg.NumHeads, cfg.AllFrames, cfg.HeadClasses(), strings.Join(parts, "; "))
}

// listSome joins the first n items of list, noting how many more there are.
func listSome(list []string, n int, sep string) string {
	if len(list) <= n {
		return strings.Join(list, sep)
	}
	return fmt.Sprintf("%s%s… (%d more)", strings.Join(list[:n], sep), sep, len(list)-n)
}

func decodeF32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func decodeMetadata(md map[string]string) (*Metadata, error) {
	if md == nil {
		return nil, errors.New("no __metadata__ in the header: a plain safetensors file, not a castgo model file")
	}
	format, ok := md[KeyFormat]
	if !ok {
		return nil, fmt.Errorf("metadata has no %s: not a castgo model file", KeyFormat)
	}
	if format != Format {
		return nil, fmt.Errorf("%s is %q; this build reads %q", KeyFormat, format, Format)
	}
	for _, k := range []string{KeyConfig, KeyLabels, KeyProtocol, KeyQuantization} {
		if _, ok := md[k]; !ok {
			return nil, fmt.Errorf("metadata has no %s", k)
		}
	}
	m := &Metadata{Format: format, Name: md[KeyName], Description: md[KeyDescription], Quantization: md[KeyQuantization]}
	cfg, err := cast.ParseConfig([]byte(md[KeyConfig]))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyConfig, err)
	}
	m.Config = cfg
	if err := json.Unmarshal([]byte(md[KeyLabels]), &m.Labels); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object of string lists: %w", KeyLabels, err)
	}
	if err := json.Unmarshal([]byte(md[KeyProtocol]), &m.Protocol); err != nil {
		return nil, fmt.Errorf("%s: %w", KeyProtocol, err)
	}
	if v, ok := md[KeyClipSeconds]; ok {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s == 0 {
			return nil, fmt.Errorf("%s: %q is not a positive number of seconds", KeyClipSeconds, v)
		}
		m.ClipSeconds = s
	}
	if st, ok := md[KeyStage]; ok {
		m.Stage = &StageMeta{}
		if err := json.Unmarshal([]byte(st), m.Stage); err != nil {
			return nil, fmt.Errorf("%s: %w", KeyStage, err)
		}
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return m, nil
}

// LabelsFromFile reads class names, one per line, from a labels file such as labels/ssv2.txt.
// See ParseLabels.
func LabelsFromFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	l, err := ParseLabels(string(b))
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	return l, nil
}

// ParseLabels splits text into class names, one per line in class-index order. Line endings ("\n" or
// "\r\n") and one trailing newline are removed; spaces inside and around a name are kept. A leading UTF-8
// byte-order mark is ignored. Empty lines are an error (they would shift every later class index).
func ParseLabels(text string) ([]string, error) {
	text = strings.TrimPrefix(text, "\ufeff")
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil, errors.New("no labels")
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			return nil, fmt.Errorf("line %d is empty", i+1)
		}
		lines[i] = l
	}
	return lines, nil
}
