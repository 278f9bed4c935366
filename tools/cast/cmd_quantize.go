package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/spf13/cobra"
)

// quantizeOptions are the flags of `cast quantize`.
type quantizeOptions struct {
	streams
	model, out, name string
}

// newQuantizeCmd builds `cast quantize`.
func newQuantizeCmd() *cobra.Command {
	var o quantizeOptions
	cmd := &cobra.Command{
		Use:   "quantize --model MODEL.safetensors --out MODEL-int8.safetensors",
		Short: "Write the int8 twin of a float32 model file (per-output-channel symmetric int8 weight matrices)",
		Long: `Quantize a float32 model file (from convert or train) the way convert --quantize int8 does: every Linear
and patch-embedding weight becomes int8 with a float32 scale per output channel; norms, biases and embeddings stay
float32. Name, description, config, labels and protocol are kept.`,
		Example: `  cast quantize --model default --out demo-int8.safetensors
  cast quantize --model default --name my-int8 --out my-int8.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.streams = streamsOf(cmd)
			return runQuantize(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.model, "model", "", "float32 model file (or default)")
	cmd.Flags().StringVar(&o.out, "out", "", "int8 model file to write")
	cmd.Flags().StringVar(&o.name, "name", "", "new model name (default: keep)")
	return cmd
}

// runQuantize writes the int8 twin of the model of o.
func runQuantize(_ context.Context, o quantizeOptions) error {
	if o.out == "" {
		return errors.New("--out is required")
	}
	f, err := loadModelFile(o.model)
	if err != nil {
		return err
	}
	if f.Meta.Quantization == modelfile.QuantInt8 {
		return fmt.Errorf("model %s is already int8", o.model)
	}
	q, err := cast.QuantizeInt8(f.Weights, nil)
	if err != nil {
		return err
	}
	meta := f.Meta
	meta.Quantization = modelfile.QuantInt8
	if o.name != "" {
		meta.Name = o.name
	}
	if err := modelfile.Save(o.out, &modelfile.File{Meta: meta, Weights: q}); err != nil {
		return err
	}
	st, err := os.Stat(o.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.stdout, "wrote %s: %.2f MB (float32 weights %.2f MB)\n", o.out, float64(st.Size())/1e6, float64(f.Weights.Bytes())/1e6)
	return nil
}
