// Package shard splits a castgo model file into stage files (one cast.Stage each: the embedding, a range of
// blocks, the head) described by a manifest, and checks them back: a sharded model is served by a chain of
// edge isolates that each hold one stage (worker/README.md, "Sharded models").
//
// A sharded model is a directory:
//
//	manifest.json           Manifest: the model's metadata and, per stage, its file's name, size, sha256
//	                        and block range
//	stage-0.safetensors     a model file (package modelfile) with castgo.stage set and only the stage's
//	stage-1.safetensors     tensors; int8 tensors stay int8
//	…
package shard

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/weights"
)

// Format is the manifest format this package writes and reads.
const Format = "castgo-shards/1"

// ManifestName is the manifest's file name in a sharded model's directory.
const ManifestName = "manifest.json"

// Manifest describes a sharded model: the metadata of the model file it came from and its stages, in
// chain order.
type Manifest struct {
	Format       string              `json:"format"`
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	Config       cast.Config         `json:"config"`
	Labels       map[string][]string `json:"labels"`
	Protocol     preprocess.Protocol `json:"protocol"`
	Quantization string              `json:"quantization"`
	Stages       []Entry             `json:"stages"`
}

// Entry is one stage file of a manifest.
type Entry struct {
	Name   string `json:"name"`   // "stage-0", …: the stage's service name
	File   string `json:"file"`   // its file in the directory (and its R2 key under a prefix)
	Blocks [2]int `json:"blocks"` // block range [from, to)
	Embed  bool   `json:"embed"`  // the stage embeds (the first one)
	Head   bool   `json:"head"`   // the stage has the head (the last one)
	Params int    `json:"params"` // parameters it holds
	Size   int64  `json:"size"`   // the file's size in bytes
	SHA256 string `json:"sha256"` // the file's sha256, hex
}

// Stage is the entry's cast.Stage.
func (e Entry) Stage() cast.Stage {
	return cast.Stage{Embed: e.Embed, From: e.Blocks[0], To: e.Blocks[1], Head: e.Head}
}

// Metadata is the model file metadata the manifest carries (without a stage).
func (m *Manifest) Metadata() modelfile.Metadata {
	return modelfile.Metadata{Format: modelfile.Format, Name: m.Name, Description: m.Description, Config: m.Config,
		Labels: m.Labels, Protocol: m.Protocol, Quantization: m.Quantization}
}

// Validate checks the manifest on its own: format, the model's metadata, and a chain of stages that covers
// the forward exactly once (cast.CheckChain) with distinct names and files.
func (m *Manifest) Validate() error {
	if m.Format != Format {
		return fmt.Errorf("manifest format %q is not %q", m.Format, Format)
	}
	meta := m.Metadata()
	if err := meta.Validate(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	stages := make([]cast.Stage, len(m.Stages))
	names, files := map[string]bool{}, map[string]bool{}
	for i, e := range m.Stages {
		stages[i] = e.Stage()
		if e.Name == "" || names[e.Name] || e.File == "" || files[e.File] || filepath.Base(e.File) != e.File {
			return fmt.Errorf("manifest: stage %d: name %q / file %q missing, repeated or not a plain file name", i, e.Name, e.File)
		}
		names[e.Name], files[e.File] = true, true
		if len(e.SHA256) != 64 || e.Size <= 0 {
			return fmt.Errorf("manifest: stage %q: no sha256 or size", e.Name)
		}
	}
	if err := cast.CheckChain(m.Config, stages); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// Split cuts f into the given stages (a chain, see cast.CheckChain): one stage file per stage, holding that
// stage's tensors as they are (int8 stays int8).
func Split(f *modelfile.File, stages []cast.Stage) ([]*modelfile.File, error) {
	if f.Meta.Stage != nil {
		return nil, errors.New("the model file is already a stage file")
	}
	if err := cast.CheckChain(f.Meta.Config, stages); err != nil {
		return nil, err
	}
	quant := f.Meta.Quantization
	if quant == "" {
		quant = modelfile.QuantNone
		for _, t := range f.Weights {
			if t != nil && t.DType == weights.I8 {
				quant = modelfile.QuantInt8
			}
		}
	}
	out := make([]*modelfile.File, len(stages))
	for i, st := range stages {
		meta := f.Meta
		meta.Quantization = quant
		meta.Stage = &modelfile.StageMeta{Index: i, Count: len(stages), Stage: st}
		set := weights.Set{}
		for name, t := range f.Weights {
			if st.Owns(name) {
				set[name] = t
			}
		}
		out[i] = &modelfile.File{Meta: meta, Weights: set}
	}
	return out, nil
}

// Write splits f into stages and writes the stage files and the manifest into dir (created if needed).
func Write(dir string, f *modelfile.File, stages []cast.Stage) (*Manifest, error) {
	files, err := Split(f, stages)
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	m := &Manifest{Format: Format, Name: f.Meta.Name, Description: f.Meta.Description, Config: f.Meta.Config,
		Labels: f.Meta.Labels, Protocol: f.Meta.Protocol, Quantization: f.Meta.Quantization}
	for i, sf := range files {
		var buf bytes.Buffer
		if err := modelfile.Write(&buf, sf); err != nil {
			return nil, fmt.Errorf("shard: stage %d: %w", i, err)
		}
		m.Quantization = sf.Meta.Quantization
		name := fmt.Sprintf("stage-%d", i)
		e := Entry{Name: name, File: name + ".safetensors", Blocks: [2]int{stages[i].From, stages[i].To},
			Embed: stages[i].Embed, Head: stages[i].Head, Params: stages[i].ParamCount(f.Meta.Config),
			Size: int64(buf.Len()), SHA256: sum(buf.Bytes())}
		if err := os.WriteFile(filepath.Join(dir, e.File), buf.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("shard: %w", err)
		}
		m.Stages = append(m.Stages, e)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	js, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), append(js, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	return m, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ParseManifest decodes and validates a manifest.
func ParseManifest(data []byte) (*Manifest, error) {
	m := &Manifest{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// ReadManifest reads and validates dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("shard: %s: %w", filepath.Join(dir, ManifestName), err)
	}
	return m, nil
}

// CheckStage checks stage file data against the manifest's entry i, before it is parsed: its size and
// sha256 (a missing, swapped or altered file fails here, named), then parses it and checks that it is that
// stage of this model. The error names the stage.
func (m *Manifest) CheckStage(i int, data []byte) (*modelfile.File, error) {
	if i < 0 || i >= len(m.Stages) {
		return nil, fmt.Errorf("no stage %d (the manifest has %d)", i, len(m.Stages))
	}
	e := m.Stages[i]
	if int64(len(data)) != e.Size {
		return nil, fmt.Errorf("stage %q (%s): the file is %d bytes, the manifest says %d", e.Name, e.File, len(data), e.Size)
	}
	if got := sum(data); got != e.SHA256 {
		return nil, fmt.Errorf("stage %q (%s): sha256 %s does not match the manifest's %s (altered or swapped)", e.Name, e.File, got, e.SHA256)
	}
	f, err := modelfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("stage %q (%s): %w", e.Name, e.File, err)
	}
	st := f.Meta.Stage
	if st == nil {
		return nil, fmt.Errorf("stage %q (%s): a whole model file, not a stage file", e.Name, e.File)
	}
	if st.Index != i || st.Count != len(m.Stages) || st.Stage != e.Stage() {
		return nil, fmt.Errorf("stage %q (%s): the file holds stage %d of %d (%s), the manifest wants stage %d of %d (%s)",
			e.Name, e.File, st.Index, st.Count, st.Stage, i, len(m.Stages), e.Stage())
	}
	if f.Meta.Name != m.Name || f.Meta.Quantization != m.Quantization || f.Meta.Config != m.Config {
		return nil, fmt.Errorf("stage %q (%s): from model %q (%s), the manifest is of %q (%s)", e.Name, e.File, f.Meta.Name, f.Meta.Quantization, m.Name, m.Quantization)
	}
	return f, nil
}

// Verify reads the manifest of dir and checks every stage file against it (CheckStage); the error names the
// first bad stage.
func Verify(dir string) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	for i, e := range m.Stages {
		data, err := os.ReadFile(filepath.Join(dir, e.File))
		if err != nil {
			return nil, fmt.Errorf("shard: stage %q: %w", e.Name, err)
		}
		if _, err := m.CheckStage(i, data); err != nil {
			return nil, fmt.Errorf("shard: %w", err)
		}
	}
	return m, nil
}
