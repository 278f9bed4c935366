package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/labels"
	"github.com/spf13/cobra"
)

// convertOptions are the flags of `cast convert`.
type convertOptions struct {
	streams
	checkpoint, config, out, name, description string
	labels, labelsVerb, labelsNoun             string
	quantize, protocol, views                  string
}

// newConvertCmd builds `cast convert`.
func newConvertCmd() *cobra.Command {
	var o convertOptions
	cmd := &cobra.Command{
		Use:   "convert --checkpoint IN.pt --config PRESET|CONFIG.json --out MODEL.safetensors",
		Short: "Convert an official CAST PyTorch checkpoint into a castgo model file",
		Long: `Convert reads an official CAST checkpoint (torch.save, fp32 or fp16; DeepSpeed "module" or "model" layout),
checks every tensor name and shape against the config, and writes one self-describing model file (safetensors)
with the config, class labels, test-time view protocol and, with --quantize int8, int8 weights.

Missing keys and shape mismatches are errors that name each tensor. Unexpected keys that the official loader
also ignores (such as CLIP's unused clip_proj) are dropped with a warning.

Labels: --labels FILE (one class per line) for a single-head model, --labels-verb and --labels-noun for the
EPIC model. Without them the built-in lists are used when the class count matches (174 SSv2, 400 Kinetics-400,
EPIC 97 verbs / 300 nouns), else generic names "class 0", "class 1", … with a warning.

Protocol: Kinetics-400's dense 5x3 for a 400-class model, SSv2's segment 2x3 otherwise (EPIC included);
--protocol segment|dense and --views CLIPSxCROPS override it.

An official checkpoint converts the same way, with its preset: cast convert --checkpoint cast_ssv2.pt
--config base-ssv2 --out cast-ssv2.safetensors (the examples below use the goldens' tiny checkpoint, beside
the checkout in ../shared/goldens).`,
		Example: `  cast convert --checkpoint ../shared/goldens/tiny/model.pt --config ../shared/goldens/tiny/config.json --out tiny.safetensors
  cast convert --checkpoint ../shared/goldens/tiny/model.pt --config ../shared/goldens/tiny/config.json --quantize int8 --views 1x1 --out tiny-int8.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.streams = streamsOf(cmd)
			return runConvert(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.checkpoint, "checkpoint", "", "official checkpoint (.pt) to convert (required)")
	f.StringVar(&o.config, "config", "", "model shape: a preset ("+presetList()+") or a JSON config (required)")
	f.StringVar(&o.out, "out", "", "model file to write (required)")
	f.StringVar(&o.labels, "labels", "", "class names, one per line (single-head models)")
	f.StringVar(&o.labelsVerb, "labels-verb", "", "verb class names, one per line (EPIC model)")
	f.StringVar(&o.labelsNoun, "labels-noun", "", "noun class names, one per line (EPIC model)")
	f.StringVar(&o.quantize, "quantize", "", `"int8" stores the weight matrices as int8 with per-output-channel scales`)
	f.StringVar(&o.name, "name", "", "model name stored in the file (default: the output file's name)")
	f.StringVar(&o.description, "description", "", "free-text description stored in the file")
	f.StringVar(&o.protocol, "protocol", "", `test-time sampling: "segment" (SSv2/EPIC, 2x3) or "dense" (K400, 5x3); default by class count`)
	f.StringVar(&o.views, "views", "", "test-time views CLIPSxCROPS, e.g. 1x1, 2x3, 5x3 (default: the protocol's)")
	return cmd
}

// presetList is the comma-separated list of preset names for help texts.
func presetList() string { return strings.Join(cast.PresetNames(), ", ") }

// runConvert converts the checkpoint of o into a model file.
func runConvert(_ context.Context, o convertOptions) error {
	log := o.stderr
	switch {
	case o.checkpoint == "":
		return errors.New("--checkpoint is required")
	case o.out == "":
		return errors.New("--out is required")
	case o.quantize != "" && o.quantize != "int8" && o.quantize != "none":
		return fmt.Errorf("--quantize %q: the only scheme is int8", o.quantize)
	}
	cfg, err := resolveConfig(o.config)
	if err != nil {
		return err
	}
	// Everything that depends only on flags is checked before the (possibly large) checkpoint is read.
	names, err := convertLabels(cfg, o, log)
	if err != nil {
		return err
	}
	proto, err := convertProtocol(cfg, o)
	if err != nil {
		return err
	}
	set, err := readCheckpoint(o.checkpoint, cfg, log)
	if err != nil {
		return err
	}
	fp32Bytes := int64(4 * numel(set))
	total, trainable := cfg.ParamCounts()
	fmt.Fprintf(log, "ok: %d tensors, %s parameters (%s officially trainable)\n", len(set), commas(int64(total)), commas(int64(trainable)))
	quant := modelfile.QuantNone
	if o.quantize == "int8" {
		fmt.Fprintf(log, "quantizing the weight matrices to int8 (per-output-channel scales)\n")
		if set, err = cast.QuantizeInt8(set, nil); err != nil {
			return fmt.Errorf("quantizing: %w", err)
		}
		quant = modelfile.QuantInt8
	}
	name := o.name
	if name == "" {
		name = fileStem(o.out)
	}
	desc := o.description
	if desc == "" {
		desc = fmt.Sprintf("converted by `cast convert` from %s (config %s)", fileStem(o.checkpoint)+".pt", o.config)
	}
	file := &modelfile.File{Meta: modelfile.Metadata{Format: modelfile.Format, Name: name, Description: desc, Config: cfg,
		Labels: names, Protocol: proto, Quantization: quant}, Weights: set}
	fmt.Fprintf(log, "writing %s (%s of weights)\n", o.out, humanBytes(set.Bytes()))
	if err := modelfile.Save(o.out, file); err != nil {
		return fmt.Errorf("writing %s: %w", o.out, err)
	}
	st, err := os.Stat(o.out)
	if err != nil {
		return fmt.Errorf("checking %s: %w", o.out, err)
	}
	fmt.Fprintf(o.stdout, "wrote %s: %s (fp32 weights %s; file is %.0f%% of that)\n  model %q, quantization %s, protocol %s\n",
		o.out, humanBytes(st.Size()), humanBytes(fp32Bytes), 100*float64(st.Size())/float64(fp32Bytes), name, quant, describeProtocol(proto))
	return nil
}

// convertLabels picks the class names of every head: the files given, else the built-in list of that size,
// else generic names (with a warning).
func convertLabels(cfg cast.Config, o convertOptions, log io.Writer) (map[string][]string, error) {
	builtin, _ := labels.ForConfig(cfg)
	out := map[string][]string{}
	fromFile := func(head, flag, path string, n int) error {
		if path == "" {
			out[head] = builtin[head]
			if isGeneric(builtin[head]) {
				fmt.Fprintf(log, "warning: no built-in labels for a %d-class %s head; using \"class 0\" … \"class %d\" (pass %s FILE)\n", n, head, n-1, flag)
			}
			return nil
		}
		names, err := modelfile.LabelsFromFile(path)
		if err != nil {
			return fmt.Errorf("%s %s: %w", flag, path, err)
		}
		if len(names) != n {
			return fmt.Errorf("%s %s has %d names but the %s head has %d classes", flag, path, len(names), head, n)
		}
		out[head] = names
		return nil
	}
	if cfg.Composition {
		if o.labels != "" {
			return nil, errors.New("--labels is for single-head models; the EPIC model takes --labels-verb and --labels-noun")
		}
		if err := fromFile("verb", "--labels-verb", o.labelsVerb, cfg.VerbClasses); err != nil {
			return nil, err
		}
		if err := fromFile("noun", "--labels-noun", o.labelsNoun, cfg.NounClasses); err != nil {
			return nil, err
		}
		return out, nil
	}
	if o.labelsVerb != "" || o.labelsNoun != "" {
		return nil, errors.New("--labels-verb and --labels-noun are for the EPIC (composition) model; use --labels")
	}
	if err := fromFile("logits", "--labels", o.labels, cfg.NumClasses); err != nil {
		return nil, err
	}
	return out, nil
}

// isGeneric reports whether names are the placeholder names of labels.Generic.
func isGeneric(names []string) bool {
	return len(names) > 0 && names[0] == "class 0"
}

// convertProtocol is the config's default protocol with the --protocol and --views overrides applied.
func convertProtocol(cfg cast.Config, o convertOptions) (preprocess.Protocol, error) {
	p := defaultProtocol(cfg)
	switch o.protocol {
	case "":
	case string(preprocess.Segment):
		p = preprocess.SSv2
	case string(preprocess.Dense):
		p = preprocess.K400
	default:
		return p, fmt.Errorf("--protocol %q: want segment (SSv2/EPIC) or dense (K400)", o.protocol)
	}
	p, err := classify.ParseViews(o.views, p)
	if err != nil {
		return p, fmt.Errorf("--views: %w", err)
	}
	return p, nil
}
