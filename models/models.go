// Package models embeds the default model: the small CAST trained on the procedural action dataset
// (see docs/demo-model.md), as float32 and int8 model files. `--model default` (or no --model) in every
// cast command, the web page and the edge worker use it.
package models

import (
	_ "embed"

	"github.com/castvideo/castgo/cast/modelfile"
)

//go:embed default.safetensors
var defaultFP32 []byte

//go:embed default-int8.safetensors
var defaultInt8 []byte

// DefaultName is what --model accepts for the embedded default model.
const DefaultName = "default"

// DefaultBytes returns the embedded float32 default model file.
func DefaultBytes() []byte { return defaultFP32 }

// DefaultInt8Bytes returns the embedded int8 default model file.
func DefaultInt8Bytes() []byte { return defaultInt8 }

// Default parses the embedded float32 default model.
func Default() (*modelfile.File, error) { return modelfile.Parse(defaultFP32) }

// DefaultInt8 parses the embedded int8 default model.
func DefaultInt8() (*modelfile.File, error) { return modelfile.Parse(defaultInt8) }
