package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/synth"
	"github.com/castvideo/castgo/cast/training"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() {
	var (
		configSpec, experts, out, dir, initModel, name, plot               string
		steps, batch, warmUp, evalClips, evalEvery, logEvery, workers      int
		lr, wd                                                             float64
		seed                                                               uint64
		dataSeed, evalSeed                                                 int64
		peft                                                               bool
		annotations, videosDir, labelsFile, evalAnnotations, evalVideosDir string
	)
	cmd := &cobra.Command{
		Use:   "train --out MODEL.safetensors [flags]",
		Short: "Train CAST on the procedural action dataset (from scratch, or fine-tune a model file)",
		Long: `Train a CAST model with GoMLX's autodiff and Adam on castgo's pure-Go backend (--backend simplego: GoMLX's
pure-Go backend; or XLA). It prints the training speed in steps per second.
Clips come from the procedural dataset of package synth (seeded, unbounded); the held-out evaluation uses
--eval-seed, which training never sees. --dir keeps checkpoints and resumes a run.

Your own clips: --annotations FILE --videos DIR (the official 'video.mp4 LABEL' list, any format ffmpeg reads)
train on labelled videos instead, with --labels FILE for the class names and --eval-annotations/--eval-videos
for a held-out split. --init starts from a model file (e.g. a converted official checkpoint: its experts and
B-CAST are kept, the head is retrained for the new classes) and --peft trains only adapters, B-CAST, the final
norms and the head — the official parameter-efficient recipe.`,
		Example: `  cast train --steps 600 --dir ckpt/ --out demo.safetensors
  cast train --experts temporal --steps 150 --out temporal-only.safetensors
  cast convert --checkpoint ssv2.pt --config base-ssv2 --out cast-ssv2.safetensors
  cast train --init cast-ssv2.safetensors --peft --annotations train.csv --videos clips/ --labels classes.txt \
      --eval-annotations val.csv --eval-videos clips/ --steps 2000 --batch 4 --lr 1e-3 --out my-cast.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			cfg, err := resolveConfig(configSpec)
			if err != nil {
				return err
			}
			var init weights.Set
			if initModel != "" {
				f, err := modelfile.Load(initModel)
				if err != nil {
					return err
				}
				cfg, init = f.Meta.Config, f.Weights
			}
			if cmd.Flags().Changed("experts") {
				// Without --experts the config's own "experts" field (a JSON config, an --init model) stands.
				cfg.Experts = experts
			}
			classes := synth.Classes
			var trainSrc, evalSrc training.Source
			protocol := preprocess.Protocol{Sampling: preprocess.Segment, Clips: 2, Crops: 1}
			if annotations != "" {
				vids, err := readLabelledVideos(annotations, videosDir)
				if err != nil {
					return err
				}
				maxLabel := 0
				for _, v := range vids {
					maxLabel = max(maxLabel, v.Label)
				}
				if classes, err = trainLabels(labelsFile, maxLabel+1); err != nil {
					return err
				}
				trainSrc = &training.VideoSource{Videos: vids, Size: cfg.ImgSize, T: cfg.AllFrames}
				if evalAnnotations != "" {
					ev, err := readLabelledVideos(evalAnnotations, evalVideosDir)
					if err != nil {
						return err
					}
					evalSrc = &training.VideoSource{Videos: ev, Size: cfg.ImgSize, T: cfg.AllFrames}
					evalClips = len(ev)
				}
				protocol = preprocess.SSv2
			}
			cfg.NumClasses, cfg.Composition = len(classes), false
			if init != nil {
				// Keep the experts (and B-CAST) of the init model; the head is retrained for the new classes.
				for name := range init {
					if strings.HasPrefix(name, "head") {
						delete(init, name)
					}
				}
				fresh := cast.InitWeights(cfg, seed)
				for name, t := range fresh {
					if _, ok := init[name]; !ok {
						init[name] = t
					}
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			b, err := newBackend()
			if err != nil {
				return err
			}
			if trainSrc == nil {
				opt := synth.Options{Frames: 16, Width: 64, Height: 64}
				trainSrc = training.SynthSource{Seed: dataSeed, Options: opt, Size: cfg.ImgSize, T: cfg.AllFrames}
				evalSrc = training.SynthSource{Seed: evalSeed, Options: opt, Size: cfg.ImgSize, T: cfg.AllFrames, Count: evalClips}
			}
			total, trainable := cfg.ParamCounts()
			fmt.Fprintf(os.Stderr, "training %s: %d parameters (%d officially trainable), %d steps × %d clips\n",
				describeExperts(cfg), total, trainable, steps, batch)
			res, err := training.Train(training.Options{Config: cfg, Init: init, PEFT: peft, Train: trainSrc, Eval: evalSrc,
				EvalClips: evalClips, Steps: steps, Batch: batch, LR: lr, WarmUp: warmUp, WeightDecay: wd, Seed: seed,
				Dir: dir, Progress: term.IsTerminal(int(os.Stderr.Fd())) && evalEvery == 0, Log: os.Stderr, Backend: b,
				EvalEvery: evalEvery, LogEvery: logEvery, Workers: workers})
			if err != nil {
				return err
			}
			desc := fmt.Sprintf("%s trained by `cast train` on the procedural dataset (data seed %d) for %d steps of %d clips; held-out top-1 %.1f%% on %d clips of seed %d.",
				describeExperts(cfg), dataSeed, res.Steps, batch, 100*res.EvalAccuracy, evalClips, evalSeed)
			if annotations != "" {
				desc = fmt.Sprintf("%s trained by `cast train` on %s for %d steps of %d clips", describeExperts(cfg), annotations, res.Steps, batch)
				if evalSrc != nil {
					desc += fmt.Sprintf("; held-out top-1 %.1f%% on %s", 100*res.EvalAccuracy, evalAnnotations)
				}
				desc += "."
			}
			if name == "" {
				name = "castgo-synth-" + expertsName(cfg)
			}
			f := &modelfile.File{Meta: modelfile.Metadata{Name: name, Description: desc,
				Config: cfg, Labels: map[string][]string{"logits": classes}, Protocol: protocol}, Weights: res.Weights}
			if err := modelfile.Save(out, f); err != nil {
				return err
			}
			if plot != "" {
				if err := writeCurves(dir, plot); err != nil {
					return err
				}
			}
			if !math.IsNaN(res.StepsPerSecond) {
				fmt.Printf("%.3f steps/s (%.0f ms a step of %d clips) on %s\n", res.StepsPerSecond, 1000/res.StepsPerSecond, batch, b.Name())
			}
			if evalSrc == nil {
				fmt.Printf("%d steps in %s (no held-out set given); wrote %s\n", res.Steps, res.Duration.Round(1e9), out)
			} else {
				fmt.Printf("held-out top-1 %.2f%% (loss %.4f) on %d clips; %d steps in %s; wrote %s\n",
					100*res.EvalAccuracy, res.EvalLoss, evalClips, res.Steps, res.Duration.Round(1e9), out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configSpec, "config", "demo", "model shape: a preset or a JSON file (ignored with --init)")
	f.StringVar(&experts, "experts", "", `ablation: "" (CAST), "spatial" or "temporal" (one expert only); default: the config's "experts" field`)
	f.StringVar(&out, "out", "", "model file to write")
	f.StringVar(&name, "name", "", "model name stored in the file (default castgo-synth-cast|spatial|temporal)")
	f.StringVar(&dir, "dir", "", "checkpoint directory (resumes when it holds a checkpoint)")
	f.StringVar(&annotations, "annotations", "", "train on your own clips: a 'video.mp4 LABEL' list (instead of procedural data)")
	f.StringVar(&videosDir, "videos", ".", "folder the --annotations paths are relative to")
	f.StringVar(&labelsFile, "labels", "", "class names for --annotations, one per line (default: class 0 … class N-1)")
	f.StringVar(&evalAnnotations, "eval-annotations", "", "held-out 'video.mp4 LABEL' list for --annotations training")
	f.StringVar(&evalVideosDir, "eval-videos", ".", "folder the --eval-annotations paths are relative to")
	f.StringVar(&initModel, "init", "", "start from this model file instead of random weights")
	f.BoolVar(&peft, "peft", false, "train only adapters, B-CAST, final norms and head (the official recipe)")
	f.IntVar(&steps, "steps", 600, "optimizer steps")
	f.IntVar(&batch, "batch", 8, "clips per step")
	f.IntVar(&warmUp, "warmup", 30, "learning-rate warm-up steps")
	f.IntVar(&evalClips, "eval-clips", 320, "held-out clips to evaluate")
	f.StringVar(&plot, "plot", "", "write the training curves (loss, accuracy vs steps) of the whole run in --dir as a PNG")
	f.IntVar(&evalEvery, "eval-every", 0, "evaluate the held-out clips every N steps, on the log line (0: only at the end)")
	f.IntVar(&logEvery, "log-every", 10, "steps between log lines (when stderr is not a terminal, or with --eval-every)")
	f.IntVar(&workers, "workers", 1, "goroutines rendering the next training batches while the model works")
	f.Float64Var(&lr, "lr", 2e-3, "peak learning rate (cosine decay)")
	f.Float64Var(&wd, "weight-decay", 0.01, "weight decay")
	f.Uint64Var(&seed, "seed", 1, "initialisation and augmentation seed")
	f.Int64Var(&dataSeed, "data-seed", 1000, "procedural training data seed")
	f.Int64Var(&evalSeed, "eval-seed", 9000, "procedural held-out data seed (never used for training)")
	rootCmd.AddCommand(cmd)
}

func expertsName(c cast.Config) string {
	if c.Experts == "" {
		return "cast"
	}
	return c.Experts
}

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
