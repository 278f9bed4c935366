package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/castvideo/castgo/backend/kernels"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/checkpoint"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/models"
	"github.com/spf13/cobra"
)

// infoHead is one output head in `cast info --json`.
type infoHead struct {
	Name    string `json:"name"`
	Classes int    `json:"classes"`
}

// infoReport is what `cast info` prints (its --json form).
type infoReport struct {
	Name            string              `json:"name"`
	Source          string              `json:"source"` // "model file", "checkpoint", "preset", "config file" or "embedded"
	Path            string              `json:"path,omitempty"`
	FileBytes       int64               `json:"file_bytes,omitempty"`
	Description     string              `json:"description,omitempty"`
	Config          cast.Config         `json:"config"`
	Heads           []infoHead          `json:"heads"`
	Protocol        preprocess.Protocol `json:"protocol"`
	Quantization    string              `json:"quantization"`
	Kernels         string              `json:"kernels"`      // castgo's CPU kernel tier on this machine (kernels.Tier)
	Int8Kernels     string              `json:"int8_kernels"` // its int8 GEMM kernel (kernels.Int8Kernels)
	ParamsTotal     int                 `json:"params_total"`
	ParamsTrainable int                 `json:"params_trainable"`
	GMACPerView     float64             `json:"gmac_per_view"`
	Labels          map[string][]string `json:"-"`
	Unexpected      []string            `json:"unexpected_keys,omitempty"`
}

// infoOptions are the flags and argument of `cast info`.
type infoOptions struct {
	streams
	arg, configSpec string // the argument (model file, checkpoint, preset, config, default) and --config
	asJSON          bool
}

// newInfoCmd builds `cast info`.
func newInfoCmd() *cobra.Command {
	var o infoOptions
	cmd := &cobra.Command{
		Use:   "info [MODEL.safetensors | CHECKPOINT.pt | PRESET | CONFIG.json | default] [--config PRESET|CONFIG.json]",
		Short: "Describe a model file, checkpoint, preset or config: heads, protocol, parameters, compute",
		Long: `Info prints a model's name, configuration (JSON), heads and class counts, test-time protocol, quantization,
file size, parameter counts (total and officially trainable, i.e. adapters, B-CAST, final norms and heads) and
the analytic compute per view in GMAC (multiply-accumulates of one forward pass of one clip). For a model
fine-tuned with cast train --init it also says which model it started from and what it inherited.

The argument is a castgo model file, "default" (the embedded model), an official .pt checkpoint, a preset name or
a JSON config; with no argument, --config names the preset or config. A checkpoint needs --config unless its
tensors fit one of the presets.`,
		Example: `  cast info base-ssv2
  cast info default-int8 --json
  cast info --config demo`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.streams, o.arg = streamsOf(cmd), ""
			if len(args) == 1 {
				o.arg = args[0]
			}
			return runInfo(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.configSpec, "config", "", "model shape: a preset or a JSON config (for a checkpoint, or alone)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print one JSON object")
	return cmd
}

// runInfo describes the model of o.
func runInfo(_ context.Context, o infoOptions) error {
	r, err := buildInfo(o.arg, o.configSpec, o.stderr)
	if err != nil {
		return err
	}
	if o.asJSON {
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return printInfo(o.stdout, r)
}

// buildInfo describes arg (see the command's help).
func buildInfo(arg, configSpec string, log io.Writer) (*infoReport, error) {
	r := &infoReport{Quantization: modelfile.QuantNone, Kernels: kernels.Tier(), Int8Kernels: kernels.Int8Kernels()}
	fromConfig := func(name, source string, cfg cast.Config) {
		r.Name, r.Source, r.Config, r.Protocol = name, source, cfg, defaultProtocol(cfg)
	}
	_, isPreset := cast.Presets[arg]
	switch {
	case arg == "":
		if configSpec == "" {
			return nil, errors.New("give a model file, checkpoint, preset or config (or --config)")
		}
		cfg, err := resolveConfig(configSpec)
		if err != nil {
			return nil, err
		}
		source := "config file"
		if _, ok := cast.Presets[configSpec]; ok {
			source = "preset"
		}
		fromConfig(configName(configSpec), source, cfg)
	case isPreset:
		fromConfig(arg, "preset", cast.Presets[arg])
	case arg == models.DefaultName || arg == models.DefaultName+"-int8":
		f, err := loadModelFile(arg)
		if err != nil {
			return nil, err
		}
		r.fromFile(f)
		r.Source = "embedded"
		if arg == models.DefaultName {
			r.FileBytes = int64(len(models.DefaultBytes()))
		} else {
			r.FileBytes = int64(len(models.DefaultInt8Bytes()))
		}
	case strings.HasSuffix(strings.ToLower(arg), ".json"):
		cfg, err := resolveConfig(arg)
		if err != nil {
			return nil, err
		}
		fromConfig(configName(arg), "config file", cfg)
		r.Path = arg
	case strings.HasSuffix(strings.ToLower(arg), ".pt") || strings.HasSuffix(strings.ToLower(arg), ".pth") || isZip(arg):
		fmt.Fprintf(log, "reading checkpoint %s (%s)\n", arg, fileSize(arg))
		set, err := checkpoint.Load(arg)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", arg, err)
		}
		var cfg cast.Config
		name := configSpec
		if configSpec != "" {
			if cfg, err = resolveConfig(configSpec); err != nil {
				return nil, err
			}
		} else if name, cfg, err = inferPreset(set); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", arg, err)
		} else {
			fmt.Fprintf(log, "the tensors fit preset %s\n", name)
		}
		_, unexpected, err := checkCheckpoint(set, cfg)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", arg, err)
		}
		fromConfig(fileStem(arg), "checkpoint", cfg)
		r.Unexpected = unexpected
		r.Path = arg
	default:
		if configSpec != "" {
			return nil, errors.New("--config goes with a checkpoint or alone; a model file carries its own config")
		}
		f, err := loadModelFile(arg)
		if err != nil {
			return nil, err
		}
		r.fromFile(f)
		r.Source, r.Path = "model file", arg
	}
	if r.Path != "" {
		if st, err := os.Stat(r.Path); err == nil {
			r.FileBytes = st.Size()
		}
	}
	for i, h := range r.Config.Heads() {
		r.Heads = append(r.Heads, infoHead{Name: h, Classes: r.Config.HeadClasses()[i]})
	}
	r.ParamsTotal, r.ParamsTrainable = r.Config.ParamCounts()
	r.GMACPerView = float64(r.Config.MACs()) / 1e9
	return r, nil
}

// fromFile fills the report from a model file's metadata.
func (r *infoReport) fromFile(f *modelfile.File) {
	m := f.Meta
	r.Name, r.Description, r.Config, r.Protocol, r.Quantization, r.Labels = m.Name, m.Description, m.Config, m.Protocol, m.Quantization, m.Labels
}

// isZip reports whether path starts like a zip archive (a torch.save checkpoint), whatever its extension.
func isZip(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	n, _ := f.Read(b[:])
	return n == 4 && string(b[:]) == "PK\x03\x04"
}

// printInfo writes the human-readable form of r.
func printInfo(w io.Writer, r *infoReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "name\t%s\n", r.Name)
	src := r.Source
	if r.Path != "" {
		src += " " + r.Path
	}
	if r.FileBytes > 0 {
		src += fmt.Sprintf(" (%s, %s bytes)", humanBytes(r.FileBytes), commas(r.FileBytes))
	}
	fmt.Fprintf(tw, "source\t%s\n", src)
	if r.Description != "" {
		fmt.Fprintf(tw, "description\t%s\n", r.Description)
	}
	for _, h := range r.Heads {
		example := ""
		if names := r.Labels[h.Name]; len(names) > 0 {
			example = fmt.Sprintf(" (%s", names[0])
			if len(names) > 1 {
				example += ", " + names[1]
			}
			if len(names) > 2 {
				example += ", …"
			}
			example += ")"
		}
		fmt.Fprintf(tw, "head %s\t%d classes%s\n", h.Name, h.Classes, example)
	}
	fmt.Fprintf(tw, "protocol\t%s\n", describeProtocol(r.Protocol))
	fmt.Fprintf(tw, "quantization\t%s\n", r.Quantization)
	fmt.Fprintf(tw, "kernels\t%s (castgo's CPU kernels on this machine; CAST_KERNELS=portable|avx2|avx512 forces a lower tier), int8 GEMM %s\n", r.Kernels, r.Int8Kernels)
	fmt.Fprintf(tw, "parameters\t%s total, %s trainable (official PEFT: adapters, B-CAST, final norms, heads)\n",
		commas(int64(r.ParamsTotal)), commas(int64(r.ParamsTrainable)))
	fmt.Fprintf(tw, "compute\t%.3f GMAC per view (analytic; %s MAC)\n", r.GMACPerView, commas(r.Config.MACs()))
	if len(r.Unexpected) > 0 {
		fmt.Fprintf(tw, "ignored keys\t%s\n", strings.Join(r.Unexpected, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(r.Config, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "config %s\n", cfg)
	return err
}
