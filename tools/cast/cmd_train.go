package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/synth"
	"github.com/castvideo/castgo/cast/training"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/spf13/cobra"
)

// trainOptions are the flags of `cast train`.
type trainOptions struct {
	streams
	backend                                                                  string // the global --backend
	configSpec, experts, out, dir, initModel, name, plot, description, views string
	steps, batch, warmUp, evalClips, evalEvery, logEvery, workers            int
	lr, wd                                                                   float64
	seed                                                                     uint64
	dataSeed, evalSeed                                                       int64
	peft                                                                     bool
	annotations, videosDir, labelsFile, evalAnnotations, evalVideosDir       string
	expertsSet, labelsSet                                                    bool // --experts, --labels given
}

// newTrainCmd builds `cast train`.
func newTrainCmd() *cobra.Command {
	var o trainOptions
	cmd := &cobra.Command{
		Use:   "train --out MODEL.safetensors [flags]",
		Short: "Train CAST on the procedural action dataset (from scratch, or fine-tune a model file)",
		Long: `Train a CAST model with GoMLX's autodiff and Adam on castgo's pure-Go backend (--backend simplego: GoMLX's
pure-Go backend; or XLA). It prints the training speed in steps per second.
Clips come from the procedural dataset of package synth (seeded, unbounded); the evaluation at the end uses
--eval-seed, which training never sees (the default model's recipe checks seed 9000 there: a regression
check, since that seed chose the recipe; docs/demo-model.md gives the held-out figure). --dir keeps
checkpoints and resumes a run.

Your own clips: --annotations FILE --videos DIR (the official 'video.mp4 LABEL' list, any format ffmpeg reads)
train on labelled videos instead, with --labels FILE for the class names and --eval-annotations/--eval-videos
for a held-out split.

--init MODEL starts from a model file, or default / default-int8 (the embedded models; int8 weights are
dequantized): its experts and B-CAST are kept, the head is retrained for the new classes, and --peft trains only
adapters, B-CAST, the final norms and the head — the official parameter-efficient recipe. The new model inherits
the init model's test-time protocol, its class labels (when the training data has as many classes and --labels
is not given) and its description (with a line saying what it was fine-tuned from, which cast info shows);
--views, --labels and --description override them.`,
		Example: `  cast train --steps 2 --batch 2 --eval-clips 4 --out demo.safetensors
  cast train --experts temporal --steps 2 --batch 2 --eval-clips 4 --out temporal-only.safetensors
  cast dataset --seed 3 --clips 4 --out clips
  cast train --init default --peft --annotations clips/annotations.csv --videos clips --steps 2 --batch 2 \
      --eval-annotations clips/annotations.csv --eval-videos clips --out my-cast.safetensors
  cast info my-cast.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.streams, o.backend = streamsOf(cmd), backendFlag
			o.expertsSet, o.labelsSet = cmd.Flags().Changed("experts"), cmd.Flags().Changed("labels")
			return runTrain(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configSpec, "config", "demo", "model shape: a preset or a JSON file (ignored with --init)")
	f.StringVar(&o.experts, "experts", "", `ablation: "" (CAST), "spatial" or "temporal" (one expert only); default: the config's "experts" field`)
	f.StringVar(&o.out, "out", "", "model file to write")
	f.StringVar(&o.name, "name", "", "model name stored in the file (default castgo-synth-cast|spatial|temporal)")
	f.StringVar(&o.description, "description", "", "description stored in the file (default: how it was trained; with --init, the init model's and a fine-tuning line)")
	f.StringVar(&o.views, "views", "", "test views CLIPSxCROPS stored in the file (default: the --init model's protocol, else segment 2x1 for procedural data, 2x3 for --annotations)")
	f.StringVar(&o.dir, "dir", "", "checkpoint directory (resumes when it holds a checkpoint)")
	f.StringVar(&o.annotations, "annotations", "", "train on your own clips: a 'video.mp4 LABEL' list (instead of procedural data)")
	f.StringVar(&o.videosDir, "videos", ".", "folder the --annotations paths are relative to")
	f.StringVar(&o.labelsFile, "labels", "", "class names for --annotations, one per line (default: the --init model's when it has as many, else class 0 … class N-1)")
	f.StringVar(&o.evalAnnotations, "eval-annotations", "", "held-out 'video.mp4 LABEL' list for --annotations training")
	f.StringVar(&o.evalVideosDir, "eval-videos", ".", "folder the --eval-annotations paths are relative to")
	f.StringVar(&o.initModel, "init", "", "start from this model file (or default, default-int8) instead of random weights")
	f.BoolVar(&o.peft, "peft", false, "train only adapters, B-CAST, final norms and head (the official recipe)")
	f.IntVar(&o.steps, "steps", 600, "optimizer steps")
	f.IntVar(&o.batch, "batch", 8, "clips per step")
	f.IntVar(&o.warmUp, "warmup", 30, "learning-rate warm-up steps")
	f.IntVar(&o.evalClips, "eval-clips", 320, "procedural clips to evaluate at the end")
	f.StringVar(&o.plot, "plot", "", "write the training curves (loss, accuracy vs steps) of the whole run in --dir as a PNG")
	f.IntVar(&o.evalEvery, "eval-every", 0, "evaluate the evaluation clips every N steps, on the log line (0: only at the end)")
	f.IntVar(&o.logEvery, "log-every", 10, "steps between log lines (when stderr is not a terminal, or with --eval-every)")
	f.IntVar(&o.workers, "workers", 1, "goroutines rendering the next training batches while the model works")
	f.Float64Var(&o.lr, "lr", 2e-3, "peak learning rate (cosine decay)")
	f.Float64Var(&o.wd, "weight-decay", 0.01, "weight decay")
	f.Uint64Var(&o.seed, "seed", 1, "initialisation and augmentation seed")
	f.Int64Var(&o.dataSeed, "data-seed", 1000, "procedural training data seed")
	f.Int64Var(&o.evalSeed, "eval-seed", 9000, "procedural evaluation data seed (never used for training)")
	return cmd
}

// trainInit is what a model trained with --init starts from and inherits.
type trainInit struct {
	file    *modelfile.File
	weights weights.Set // float32 (an int8 model's weights dequantized)
}

// loadTrainInit loads --init (a model file, default or default-int8) with float32 weights.
func loadTrainInit(spec string) (*trainInit, error) {
	f, err := loadModelFile(spec)
	if err != nil {
		return nil, fmt.Errorf("--init: %w", err)
	}
	set := make(weights.Set, len(f.Weights))
	for name, t := range f.Weights {
		if t.DType == weights.I8 {
			t = weights.NewF32(t.Shape, t.Float32())
		}
		set[name] = t
	}
	return &trainInit{file: f, weights: set}, nil
}

// runTrain trains the model of o and writes it.
func runTrain(_ context.Context, o trainOptions) error {
	if o.out == "" {
		return fmt.Errorf("--out is required")
	}
	cfg, err := resolveConfig(o.configSpec)
	if err != nil {
		return err
	}
	var (
		init   *trainInit
		initWs weights.Set
	)
	if o.initModel != "" {
		if init, err = loadTrainInit(o.initModel); err != nil {
			return err
		}
		cfg, initWs = init.file.Meta.Config, init.weights
	}
	if o.expertsSet {
		// Without --experts the config's own "experts" field (a JSON config, an --init model) stands.
		cfg.Experts = o.experts
	}
	classes := synth.Classes
	var trainSrc, evalSrc training.Source
	evalClips := o.evalClips
	protocol := preprocess.Protocol{Sampling: preprocess.Segment, Clips: 2, Crops: 1}
	if o.annotations != "" {
		vids, err := readLabelledVideos(o.annotations, o.videosDir)
		if err != nil {
			return err
		}
		maxLabel := 0
		for _, v := range vids {
			maxLabel = max(maxLabel, v.Label)
		}
		if classes, err = trainLabels(o.labelsFile, maxLabel+1); err != nil {
			return err
		}
		trainSrc = &training.VideoSource{Videos: vids, Size: cfg.ImgSize, T: cfg.AllFrames}
		if o.evalAnnotations != "" {
			ev, err := readLabelledVideos(o.evalAnnotations, o.evalVideosDir)
			if err != nil {
				return err
			}
			evalSrc = &training.VideoSource{Videos: ev, Size: cfg.ImgSize, T: cfg.AllFrames}
			evalClips = len(ev)
		}
		protocol = preprocess.SSv2
	}
	var inherited []string // what the model takes from --init
	if init != nil {
		protocol = init.file.Meta.Protocol
		inherited = append(inherited, "protocol "+describeProtocol(protocol))
		if names := init.file.Meta.Labels["logits"]; !o.labelsSet && !cfg.Composition && len(names) == len(classes) {
			classes = names
			inherited = append(inherited, "labels")
		}
	}
	if o.views != "" {
		if protocol, err = classify.ParseViews(o.views, protocol); err != nil {
			return fmt.Errorf("--views: %w", err)
		}
	}
	cfg.NumClasses, cfg.Composition = len(classes), false
	if initWs != nil {
		// Keep the experts (and B-CAST) of the init model; the head is retrained for the new classes.
		for name := range initWs {
			if strings.HasPrefix(name, "head") {
				delete(initWs, name)
			}
		}
		fresh := cast.InitWeights(cfg, o.seed)
		for name, t := range fresh {
			if _, ok := initWs[name]; !ok {
				initWs[name] = t
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	b, err := openBackend(o.backend, o.stderr)
	if err != nil {
		return err
	}
	if trainSrc == nil {
		opt := synth.Options{Frames: 16, Width: 64, Height: 64}
		trainSrc = training.SynthSource{Seed: o.dataSeed, Options: opt, Size: cfg.ImgSize, T: cfg.AllFrames}
		evalSrc = training.SynthSource{Seed: o.evalSeed, Options: opt, Size: cfg.ImgSize, T: cfg.AllFrames, Count: evalClips}
	}
	total, trainable := cfg.ParamCounts()
	fmt.Fprintf(o.stderr, "training %s: %d parameters (%d officially trainable), %d steps × %d clips\n",
		describeExperts(cfg), total, trainable, o.steps, o.batch)
	res, err := training.Train(training.Options{Config: cfg, Init: initWs, PEFT: o.peft, Train: trainSrc, Eval: evalSrc,
		EvalClips: evalClips, Steps: o.steps, Batch: o.batch, LR: o.lr, WarmUp: o.warmUp, WeightDecay: o.wd, Seed: o.seed,
		Dir: o.dir, Progress: isTerminal(o.stderr) && o.evalEvery == 0, Log: o.stderr, Backend: b,
		EvalEvery: o.evalEvery, LogEvery: o.logEvery, Workers: o.workers})
	if err != nil {
		return err
	}
	desc := fmt.Sprintf("%s trained by `cast train` on the procedural dataset (data seed %d) for %d steps of %d clips; top-1 %.1f%% on %d clips of seed %d.",
		describeExperts(cfg), o.dataSeed, res.Steps, o.batch, 100*res.EvalAccuracy, evalClips, o.evalSeed)
	if o.annotations != "" {
		desc = fmt.Sprintf("%s trained by `cast train` on %s for %d steps of %d clips", describeExperts(cfg), o.annotations, res.Steps, o.batch)
		if evalSrc != nil {
			desc += fmt.Sprintf("; held-out top-1 %.1f%% on %s", 100*res.EvalAccuracy, o.evalAnnotations)
		}
		desc += "."
	}
	if init != nil {
		if init.file.Meta.Description != "" {
			inherited = append(inherited, "description")
		}
		desc = strings.TrimSpace(fmt.Sprintf("%s Fine-tuned from %s (--init %s; inherited: %s): %s", init.file.Meta.Description,
			init.file.Meta.Name, o.initModel, strings.Join(inherited, ", "), desc))
	}
	if o.description != "" {
		desc = o.description
	}
	name := o.name
	if name == "" {
		name = "castgo-synth-" + expertsName(cfg)
	}
	f := &modelfile.File{Meta: modelfile.Metadata{Name: name, Description: desc,
		Config: cfg, Labels: map[string][]string{"logits": classes}, Protocol: protocol}, Weights: res.Weights}
	if err := modelfile.Save(o.out, f); err != nil {
		return err
	}
	if o.plot != "" {
		if err := writeCurves(o.dir, o.plot); err != nil {
			return err
		}
	}
	if !math.IsNaN(res.StepsPerSecond) {
		fmt.Fprintf(o.stdout, "%.3f steps/s (%.0f ms a step of %d clips) on %s\n", res.StepsPerSecond, 1000/res.StepsPerSecond, o.batch, b.Name())
	}
	if evalSrc == nil {
		fmt.Fprintf(o.stdout, "%d steps in %s (no held-out set given); wrote %s\n", res.Steps, res.Duration.Round(1e9), o.out)
	} else {
		fmt.Fprintf(o.stdout, "top-1 %.2f%% (loss %.4f) on %d evaluation clips; %d steps in %s; wrote %s\n",
			100*res.EvalAccuracy, res.EvalLoss, evalClips, res.Steps, res.Duration.Round(1e9), o.out)
	}
	return nil
}

// expertsName names the experts of c for a model name: cast, spatial or temporal.
func expertsName(c cast.Config) string {
	if c.Experts == "" {
		return "cast"
	}
	return c.Experts
}

// describeExperts describes the experts of c for a model description.
func describeExperts(c cast.Config) string {
	switch c.Experts {
	case "spatial":
		return "spatial-expert-only model"
	case "temporal":
		return "temporal-expert-only model"
	}
	return "CAST (both experts + B-CAST)"
}

// readLabelledVideos reads an official 'video.mp4 LABEL' list relative to dir.
func readLabelledVideos(path, dir string) ([]training.LabelledVideo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("annotations: %w", err)
	}
	defer fh.Close()
	anns, err := synth.ParseAnnotations(fh)
	if err != nil {
		return nil, fmt.Errorf("annotations %s: %w", path, err)
	}
	if len(anns) == 0 {
		return nil, fmt.Errorf("annotations %s lists no videos", path)
	}
	out := make([]training.LabelledVideo, len(anns))
	for i, a := range anns {
		out[i] = training.LabelledVideo{Path: filepath.Join(dir, a.Video), Label: a.Label}
	}
	return out, nil
}

// trainLabels reads --labels (one class per line, at least n of them) or names n generic classes.
func trainLabels(path string, n int) ([]string, error) {
	if path == "" {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("class %d", i)
		}
		return names, nil
	}
	names, err := modelfile.LabelsFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("--labels: %w", err)
	}
	if len(names) < n {
		return nil, fmt.Errorf("--labels %s has %d names but the annotations use labels up to %d", path, len(names), n-1)
	}
	return names, nil
}

// writeCurves plots the progress lines collected in dir (the whole run, resumes included) as a PNG.
func writeCurves(dir, path string) error {
	if dir == "" {
		return fmt.Errorf("--plot needs --dir (the curves are read from %s there)", training.LogFile)
	}
	fh, err := os.Open(filepath.Join(dir, training.LogFile))
	if err != nil {
		return err
	}
	defer fh.Close()
	pts, err := training.ParseLog(fh)
	if err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := training.PlotCurves(out, pts); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
