package main

import (
	"fmt"
	"os"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/spf13/cobra"
)

func init() {
	var model, out, name string
	cmd := &cobra.Command{
		Use:   "quantize --model MODEL.safetensors --out MODEL-int8.safetensors",
		Short: "Write the int8 twin of a float32 model file (per-output-channel symmetric int8 weight matrices)",
		Long: `Quantize a float32 model file (from convert or train) the way convert --quantize int8 does: every Linear
and patch-embedding weight becomes int8 with a float32 scale per output channel; norms, biases and embeddings stay
float32. Name, description, config, labels and protocol are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			f, err := loadModelFile(model)
			if err != nil {
				return err
			}
			if f.Meta.Quantization == modelfile.QuantInt8 {
				return fmt.Errorf("model %s is already int8", model)
			}
			q, err := cast.QuantizeInt8(f.Weights, nil)
			if err != nil {
				return err
			}
			meta := f.Meta
			meta.Quantization = modelfile.QuantInt8
			if name != "" {
				meta.Name = name
			}
			if err := modelfile.Save(out, &modelfile.File{Meta: meta, Weights: q}); err != nil {
				return err
			}
			st, err := os.Stat(out)
			if err != nil {
				return err
			}
			fmt.Printf("wrote %s: %.2f MB (float32 weights %.2f MB)\n", out, float64(st.Size())/1e6, float64(f.Weights.Bytes())/1e6)
			return nil
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "float32 model file (or default)")
	cmd.Flags().StringVar(&out, "out", "", "int8 model file to write")
	cmd.Flags().StringVar(&name, "name", "", "new model name (default: keep)")
	rootCmd.AddCommand(cmd)
}
