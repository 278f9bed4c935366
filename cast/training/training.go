// Package training trains CAST models with GoMLX's autodiff and Adam, on any backend, from scratch or
// parameter-efficiently (experts frozen, adapters + B-CAST + head trained: the official recipe, CAST.md §1.3).
// It feeds clips from a Source, shows progress, keeps resumable checkpoints and evaluates held-out clips.
package training

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/metrics"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers/cosineschedule"
	"github.com/gomlx/gomlx/ui/commandline"
)

// Source provides labelled clips already preprocessed to the model's input: float32 [3, T, S, S].
// Example must be deterministic in (index, augment's state); augment is nil for evaluation.
type Source interface {
	Len() int // number of distinct clips; 0 means unbounded (procedural data)
	Example(index int, augment *rand.Rand) (clip []float32, label int, err error)
}

// Options configures a training run.
type Options struct {
	Config      cast.Config
	Init        weights.Set // starting weights (a converted checkpoint to fine-tune); nil: cast.InitWeights(Seed)
	PEFT        bool        // freeze both experts and train only the official trainable set
	Train       Source      // training clips
	Eval        Source      // held-out clips (optional)
	EvalClips   int         // how many held-out clips to evaluate (default: all of a bounded Eval, else 256)
	Steps       int         // optimizer steps
	Batch       int         // clips per step
	LR          float64     // peak learning rate (cosine decay after WarmUp steps)
	WarmUp      int         // linear warm-up steps
	WeightDecay float64     // AdamW-style decay
	Seed        uint64      // initialisation and augmentation seed
	Dir         string      // checkpoint directory; an existing one is resumed
	SaveEvery   int         // steps between checkpoints (default 50)
	Progress    bool        // show a progress bar on the terminal
	Log         io.Writer   // progress lines when Progress is off (may be nil)
	Backend     backends.Backend
	LogEvery    int // steps between log lines (default 10)
	EvalEvery   int // evaluate the held-out set on the log line every this many steps (0: only at the end)
	Workers     int // goroutines rendering training clips ahead of the model (default 1)
}

func (o Options) evalClips() int {
	n := o.EvalClips
	if n == 0 {
		n = o.Eval.Len()
		if n == 0 {
			n = 256
		}
	}
	return n
}

// LogFile is the file in the checkpoint directory that collects the progress lines of a run (ParseLog).
const LogFile = "train.log"

// Result is what a run produced.
type Result struct {
	Weights      weights.Set // the trained float32 weights, keyed by state-dict names
	Steps        int         // global step reached
	FinalLoss    float64     // moving-average training loss at the end
	EvalAccuracy float64     // held-out top-1 (NaN-free; 0 when no Eval source)
	EvalLoss     float64
	Duration     time.Duration
	// StepsPerSecond is the training speed after the first step (which compiles the graph); NaN for a run
	// of a single step.
	StepsPerSecond float64
}

// Train runs the optimisation described by opts.
func Train(opts Options) (*Result, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Composition {
		return nil, errors.New("training: the EPIC two-head model is not supported; train a single-head model")
	}
	if opts.Train == nil || opts.Steps <= 0 || opts.Batch <= 0 {
		return nil, errors.New("training: need a training source, Steps > 0 and Batch > 0")
	}
	if opts.Backend == nil {
		return nil, errors.New("training: no backend")
	}
	if opts.LR == 0 {
		opts.LR = 1e-3
	}
	if opts.WarmUp >= opts.Steps {
		opts.WarmUp = opts.Steps / 2 // a short run still gets a cosine decay
	}
	if opts.SaveEvery == 0 {
		opts.SaveEvery = 50
	}
	r, err := newRun(opts)
	if err != nil {
		return nil, err
	}
	ctx, trainer, loop := r.ctx, r.trainer, r.loop

	if opts.Dir != "" {
		ckpt, err := checkpoints.Build(ctx).Dir(opts.Dir).Keep(3).Done()
		if err != nil {
			return nil, fmt.Errorf("training: checkpoints in %s: %w", opts.Dir, err)
		}
		train.EveryNSteps(loop, opts.SaveEvery, "checkpointing", 0, ckpt.OnStepFn)
		defer func() { _ = ckpt.Save() }()
	}
	// Steps per second, measured from the end of the first step (which compiles the graph).
	var rateStart time.Time
	var rateStep int
	rate := func(step int) float64 {
		if rateStart.IsZero() || step <= rateStep {
			return math.NaN()
		}
		return float64(step-rateStep) / time.Since(rateStart).Seconds()
	}
	train.EveryNSteps(loop, 1, "rate", 0, func(loop *train.Loop, _ []*tensors.Tensor) error {
		if rateStart.IsZero() {
			rateStart, rateStep = time.Now(), loop.LoopStep
		}
		return nil
	})
	logw := opts.Log
	if opts.Dir != "" {
		// the progress lines also go to DIR/train.log (appended on resume): the curves of the whole run
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(filepath.Join(opts.Dir, LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if logw == nil || opts.Progress {
			logw = f
		} else {
			logw = io.MultiWriter(logw, f)
		}
	}
	if opts.Progress {
		commandline.AttachProgressBar(loop)
	}
	if logw != nil && (!opts.Progress || opts.Dir != "") {
		start := time.Now()
		every := opts.LogEvery
		if every <= 0 {
			every = 10
		}
		train.EveryNSteps(loop, every, "log", 0, func(loop *train.Loop, m []*tensors.Tensor) error {
			tm := trainer.TrainMetrics()
			step := int(trainer.GlobalStep()) // the loop's steps count from where a resumed run started
			line := fmt.Sprintf("step %d/%d  ~loss %.4f  ~acc %.3f  %.1fs  %.2f steps/s", step, opts.Steps,
				metricValue(tm, m, "~loss+"), metricValue(tm, m, "~acc"), time.Since(start).Seconds(), rate(loop.LoopStep))
			if opts.EvalEvery > 0 && opts.Eval != nil && step%opts.EvalEvery == 0 {
				acc, loss, err := r.evaluate(opts.Eval, opts.evalClips())
				if err != nil {
					return err
				}
				line += fmt.Sprintf("  held-out acc %.4f loss %.4f", acc, loss)
			}
			fmt.Fprintln(logw, line)
			return nil
		})
	}

	start := time.Now()
	step := int(train.GetTrainLastStepVar(ctx).MustValue().Value().(int64))
	res := &Result{}
	finalAcc, trained := math.NaN(), false
	if step < opts.Steps {
		// the last-step variable is -1 before the first step
		ds := newPrefetcher(opts.Train, opts.Batch, cfg, opts.Seed, max(step, 0)*opts.Batch, opts.Workers)
		m, err := loop.RunToGlobalStep(ds, opts.Steps)
		ds.stop()
		if err != nil {
			return nil, fmt.Errorf("training: %w", err)
		}
		res.FinalLoss = metricValue(trainer.TrainMetrics(), m, "~loss+")
		finalAcc, trained = metricValue(trainer.TrainMetrics(), m, "~acc"), true
		res.StepsPerSecond = rate(loop.LoopStep)
	}
	res.Steps = int(trainer.GlobalStep())
	if opts.Eval != nil {
		var err error
		res.EvalAccuracy, res.EvalLoss, err = r.evaluate(opts.Eval, opts.evalClips())
		if err != nil {
			return nil, err
		}
		if logw != nil && trained {
			fmt.Fprintf(logw, "step %d/%d  ~loss %.4f  ~acc %.3f  final  held-out acc %.4f loss %.4f\n", res.Steps, opts.Steps,
				res.FinalLoss, finalAcc, res.EvalAccuracy, res.EvalLoss)
		}
	}
	res.Duration = time.Since(start)
	w, err := cast.SaveWeights(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res.Weights = w
	return res, nil
}

// run is the set-up of one training run: the context holding the weights and the optimizer state, the
// trainer (train and eval graphs) and the loop.
type run struct {
	opts    Options
	ctx     *context.Context
	trainer *train.Trainer
	loop    *train.Loop
}

func newRun(opts Options) (*run, error) {
	cfg := opts.Config
	init := opts.Init
	if init == nil {
		init = cast.InitWeights(cfg, opts.Seed)
	}
	ctx := context.New()
	if err := cast.LoadWeights(ctx, cfg, init, opts.PEFT); err != nil {
		return nil, fmt.Errorf("training: initial weights: %w", err)
	}
	ctx = ctx.Checked(false)
	ctx.SetParam(optimizers.ParamLearningRate, opts.LR)
	ctx.SetParam(optimizers.ParamAdamWeightDecay, opts.WeightDecay)

	modelFn := func(ctx *context.Context, _ any, inputs []*graph.Node) []*graph.Node {
		logits := cast.Forward(ctx, cfg, inputs[0], nil)[0]
		g := logits.Graph()
		if ctx.IsTraining(g) {
			cosineschedule.New(ctx, g, logits.DType()).
				WarmUpSteps(opts.WarmUp).PeriodSteps(opts.Steps - opts.WarmUp).MinLearningRate(opts.LR / 50).Done()
		}
		return []*graph.Node{logits}
	}
	optimizer := optimizers.Adam().LearningRate(opts.LR).WeightDecay(opts.WeightDecay).Done()
	trainer := train.NewTrainer(opts.Backend, ctx, modelFn, losses.SparseCategoricalCrossEntropyLogits, optimizer,
		[]metrics.Interface{metrics.NewMovingAverageSparseCategoricalAccuracy("Moving Average Accuracy", "~acc", 0.02)},
		[]metrics.Interface{metrics.NewSparseCategoricalAccuracy("Accuracy", "acc")})
	return &run{opts: opts, ctx: ctx, trainer: trainer, loop: train.NewLoop(trainer)}, nil
}

// evaluate returns the top-1 accuracy and mean loss of the first n clips of src (no augmentation).
func (r *run) evaluate(src Source, n int) (acc, loss float64, err error) {
	evalDS := &dataset{src: src, batch: r.opts.Batch, cfg: r.opts.Config, limit: n}
	m, err := r.trainer.Eval(evalDS)
	if err != nil {
		return 0, 0, fmt.Errorf("training: evaluation: %w", err)
	}
	em := r.trainer.EvalMetrics()
	return metricValue(em, m, "acc"), metricValue(em, m, "#loss"), nil
}

// dataset adapts a Source to GoMLX's train.Dataset: batches of [B, 3, T, S, S] clips and int32 [B, 1] labels.
type dataset struct {
	src   Source
	batch int
	cfg   cast.Config
	rng   *rand.Rand // nil: no augmentation (evaluation)
	next  int
	limit int // evaluation: stop after this many clips
}

func (d *dataset) Name() string { return "cast-clips" }
func (d *dataset) Reset()       { d.next = 0 }

func (d *dataset) Yield() (spec any, inputs, labels []*tensors.Tensor, err error) {
	n := d.batch
	if d.limit > 0 {
		if d.next >= d.limit {
			return nil, nil, nil, io.EOF
		}
		n = min(n, d.limit-d.next)
	}
	c := d.cfg
	clipLen := c.InChans * c.AllFrames * c.ImgSize * c.ImgSize
	x := make([]float32, 0, n*clipLen)
	y := make([]int32, n)
	for i := 0; i < n; i++ {
		idx := d.next + i
		if l := d.src.Len(); l > 0 {
			idx %= l
		}
		clip, label, err := d.src.Example(idx, d.rng)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("clip %d: %w", idx, err)
		}
		if len(clip) != clipLen {
			return nil, nil, nil, fmt.Errorf("clip %d has %d values, the model needs %d", idx, len(clip), clipLen)
		}
		x = append(x, clip...)
		y[i] = int32(label)
	}
	d.next += n
	inputs = []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, n, c.InChans, c.AllFrames, c.ImgSize, c.ImgSize)}
	labels = []*tensors.Tensor{tensors.FromFlatDataAndDimensions(y, n, 1)}
	return n, inputs, labels, nil
}

// metricValue returns the value of the metric with the given short name (NaN when absent).
func metricValue(ms []metrics.Interface, values []*tensors.Tensor, short string) float64 {
	for i, m := range ms {
		if m.ShortName() == short && i < len(values) {
			switch v := values[i].Value().(type) {
			case float32:
				return float64(v)
			case float64:
				return v
			}
		}
	}
	return math.NaN()
}
