package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/internal/npy"
	"github.com/spf13/cobra"
)

// logitsOptions are the flags of `cast logits`.
type logitsOptions struct {
	streams
	backend                                string // the global --backend
	model, ckpt, configSpec, input, outDir string
	batch                                  int
}

// newLogitsCmd builds `cast logits`.
func newLogitsCmd() *cobra.Command {
	var o logitsOptions
	cmd := &cobra.Command{
		Use:   "logits (--model MODEL.safetensors | --checkpoint IN.pt --config PRESET|CONFIG.json) --input CLIP.npy --out-dir DIR",
		Short: "Run the model on normalised clips from a .npy file and write the raw logits as .npy",
		Long: `Logits runs CAST on already preprocessed clips: a float32 .npy array [B, 3, T, H, W] (C order, normalised
like the official loader's output) whose T, H and W match the model's config. It writes DIR/logits.npy
[B, classes], or DIR/logits_noun.npy and DIR/logits_verb.npy for the EPIC model, as float32 — the layout of the
goldens, so the output can be compared with PyTorch's directly.`,
		Example: `  cast logits --model default --input clips.npy --out-dir out/
  cast logits --checkpoint ../shared/goldens/tiny/model.pt --config ../shared/goldens/tiny/config.json --input ../shared/goldens/tiny/input.npy --out-dir out-tiny/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.streams, o.backend = streamsOf(cmd), backendFlag
			return runLogits(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.model, "model", "", "model file (or default for the embedded model)")
	fl.StringVar(&o.ckpt, "checkpoint", "", "official checkpoint (.pt), with --config")
	fl.StringVar(&o.configSpec, "config", "", "model shape for --checkpoint: a preset or a JSON config")
	fl.StringVar(&o.input, "input", "", "float32 .npy clips [B, 3, T, H, W] (required)")
	fl.StringVar(&o.outDir, "out-dir", "", "directory for logits*.npy (required; created if needed)")
	fl.IntVar(&o.batch, "batch", 0, "clips per model call (default: all at once)")
	return cmd
}

// runLogits runs the model of o on the clips of --input and writes the logits.
func runLogits(_ context.Context, o logitsOptions) error {
	if o.input == "" || o.outDir == "" {
		return errors.New("--input and --out-dir are required")
	}
	f, err := loadModelOrCheckpoint(o.model, o.ckpt, o.configSpec, o.stderr)
	if err != nil {
		return err
	}
	cfg := f.Meta.Config
	x, b, err := readClips(o.input, cfg)
	if err != nil {
		return err
	}
	be, err := openBackend(o.backend, o.stderr)
	if err != nil {
		return err
	}
	m, err := infer.New(be, cfg, f.Weights)
	if err != nil {
		return fmt.Errorf("loading the model: %w", err)
	}
	batch := o.batch
	if batch <= 0 {
		batch = b
	}
	heads, classes := cfg.Heads(), cfg.HeadClasses()
	outs := make([][]float32, len(heads))
	clip := m.ClipLen()
	for start := 0; start < b; start += batch {
		n := min(batch, b-start)
		logits, err := m.Run(x[start*clip:(start+n)*clip], n)
		if err != nil {
			return fmt.Errorf("clips %d–%d: %w", start, start+n-1, err)
		}
		for h := range heads {
			outs[h] = append(outs[h], logits[h]...)
		}
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return fmt.Errorf("--out-dir: %w", err)
	}
	for h, head := range heads {
		name := "logits.npy"
		if head != "logits" {
			name = "logits_" + head + ".npy"
		}
		path := filepath.Join(o.outDir, name)
		if err := npy.WriteFile(path, npy.FromFloat32([]int{b, classes[h]}, outs[h])); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		fmt.Fprintf(o.stdout, "wrote %s [%d, %d]\n", path, b, classes[h])
	}
	return nil
}

// readClips reads a .npy of clips [B, 3, T, H, W] and checks it against cfg.
func readClips(path string, cfg cast.Config) ([]float32, int, error) {
	a, err := npy.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("--input %s: %w", path, err)
	}
	want := []int{cfg.InChans, cfg.AllFrames, cfg.ImgSize, cfg.ImgSize}
	if len(a.Shape) != 5 || !slices.Equal(a.Shape[1:], want) || a.Shape[0] < 1 {
		return nil, 0, fmt.Errorf("--input %s has shape %v, but the model takes [B, %d, %d, %d, %d] (B ≥ 1 clips of %d channels, %d frames, %d×%d pixels)",
			path, a.Shape, want[0], want[1], want[2], want[3], want[0], want[1], want[2], want[3])
	}
	x, err := a.Float32s()
	if err != nil {
		return nil, 0, fmt.Errorf("--input %s: %w", path, err)
	}
	return x, a.Shape[0], nil
}
