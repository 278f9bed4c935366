// Package classify turns decoded video frames into CAST predictions, the way the official test loop does:
// plan the views of the model's protocol, preprocess each view (package preprocess), run the model (package
// infer), apply softmax per view, average over views and take the top-k per head (and the top verb+noun
// actions for EPIC). It knows no front end: the CLI, the WASM module and the edge worker all call it.
package classify

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/gomlx/gomlx/backends"
)

// Runner runs the model on batches of normalised clips: an *infer.Model, or a chain of stage workers
// (worker/chain).
type Runner interface {
	// ClipLen is the number of float32 values of one clip [3, T, H, W].
	ClipLen() int
	// Run classifies batch clips [B, 3, T, H, W] and returns one logits slice per head, each [B·classes].
	Run(x []float32, batch int) ([][]float32, error)
	// Close releases what the runner holds.
	Close()
}

// Classifier is a loaded model file ready to classify videos. It is safe for concurrent use.
type Classifier struct {
	Meta  modelfile.Metadata
	Model Runner
	// Batch is how many views run in one model call (default 1: lowest peak memory).
	Batch int
}

// New loads f's weights on backend b.
func New(b backends.Backend, f *modelfile.File) (*Classifier, error) {
	m, err := infer.New(b, f.Meta.Config, f.Weights)
	if err != nil {
		return nil, fmt.Errorf("loading model %q: %w", f.Meta.Name, err)
	}
	return &Classifier{Meta: f.Meta, Model: m, Batch: 1}, nil
}

// Close releases the model's graph and weights now (see infer.Model.Close); classifying afterwards fails.
func (c *Classifier) Close() { c.Model.Close() }

// Video is a source of decoded frames: its frame count and size, and a way to fetch the frames at given
// indices (a decoder keeps only those).
type Video struct {
	NumFrames     int
	Width, Height int
	Frames        func(indices []int) (map[int]preprocess.Frame, error)
}

// Options tune one classification.
type Options struct {
	Views    string                              // "" (the model's protocol), or CLIPSxCROPS such as "1x1", "2x3", "5x3"
	Top      int                                 // predictions per head (default 5)
	Progress func(stage string, done, total int) // optional: stages "decode", "preprocess", "view"
}

// Prediction is one class with its probability (softmax, averaged over views).
type Prediction struct {
	Index int     `json:"index"`
	Label string  `json:"label"`
	Prob  float64 `json:"prob"`
}

// Action is an EPIC verb+noun pair scored by the product of the two averaged probabilities.
type Action struct {
	Verb Prediction `json:"verb"`
	Noun Prediction `json:"noun"`
	Prob float64    `json:"prob"`
}

// ViewResult is one view's own top prediction per head.
type ViewResult struct {
	Clip   int                     `json:"clip"`
	Crop   int                     `json:"crop"`
	Frames []int                   `json:"frames"`
	X0     int                     `json:"x0"`
	Y0     int                     `json:"y0"`
	Top    map[string][]Prediction `json:"top"`
}

// Timings are wall-clock milliseconds of each stage.
type Timings struct {
	DecodeMS     float64 `json:"decode_ms"`
	PreprocessMS float64 `json:"preprocess_ms"`
	InferenceMS  float64 `json:"inference_ms"`
	PerViewMS    float64 `json:"per_view_ms"`
	TotalMS      float64 `json:"total_ms"`
}

// Result is the merged classification of one video.
type Result struct {
	Model   string                  `json:"model"`
	Views   string                  `json:"views"`
	Heads   []string                `json:"heads"`
	Top     map[string][]Prediction `json:"top"`               // per head: "logits", or "noun"/"verb"
	Actions []Action                `json:"actions,omitempty"` // EPIC only
	PerView []ViewResult            `json:"per_view"`
	Timings Timings                 `json:"timings"`
	Frames  int                     `json:"frames"` // frames in the source video
	probs   map[string][]float64
}

// Probs returns the averaged probabilities of a head (all classes).
func (r *Result) Probs(head string) []float64 { return r.probs[head] }

// ParseViews turns "CLIPSxCROPS" into a protocol with the sampling of base ("" keeps base).
func ParseViews(spec string, base preprocess.Protocol) (preprocess.Protocol, error) {
	if spec == "" {
		return base, nil
	}
	a, b, ok := strings.Cut(strings.ToLower(spec), "x")
	clips, err1 := strconv.Atoi(a)
	crops, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || clips < 1 || crops < 1 {
		return base, fmt.Errorf("views %q: want CLIPSxCROPS, e.g. 1x1, 2x3 or 5x3", spec)
	}
	if crops != 1 && crops != 3 {
		return base, fmt.Errorf("views %q: the official pipeline takes 1 (centre) or 3 crops", spec)
	}
	if base.Sampling == preprocess.Segment && clips > 2 {
		return base, fmt.Errorf("views %q: segment sampling (SSv2/EPIC) has at most 2 clips (starts, midpoints)", spec)
	}
	p := base
	p.Clips, p.Crops = clips, crops
	if p.Sampling == preprocess.Dense && p.SamplingRate == 0 {
		p.SamplingRate = 4
	}
	return p, nil
}

// Classify samples, preprocesses and classifies v.
func (c *Classifier) Classify(v Video, opt Options) (*Result, error) {
	start := time.Now()
	cfg := c.Meta.Config
	if v.NumFrames < 1 {
		return nil, fmt.Errorf("video has no frames")
	}
	p, err := ParseViews(opt.Views, c.Meta.Protocol)
	if err != nil {
		return nil, err
	}
	views, err := preprocess.Plan(p, v.NumFrames, v.Width, v.Height, cfg.ImgSize, cfg.AllFrames)
	if err != nil {
		return nil, err
	}
	progress := opt.Progress
	if progress == nil {
		progress = func(string, int, int) {}
	}
	progress("decode", 0, 1)
	frames, err := v.Frames(preprocess.NeededFrames(views))
	if err != nil {
		return nil, err
	}
	progress("decode", 1, 1)
	decoded := time.Now()
	progress("preprocess", 0, 1)
	prep, err := preprocess.Prepare(frames, views, cfg.ImgSize)
	if err != nil {
		return nil, err
	}
	progress("preprocess", 1, 1)
	prepared := time.Now()
	res, err := c.ClassifyViews(views, func(i int, dst []float32) error { return prep.ClipTensor(views[i], dst) }, opt.Top, progress)
	if err != nil {
		return nil, err
	}
	res.Views = fmt.Sprintf("%dx%d", p.Clips, p.Crops)
	res.Frames = v.NumFrames
	res.Timings.DecodeMS = ms(decoded.Sub(start))
	res.Timings.PreprocessMS += ms(prepared.Sub(decoded))
	res.Timings.TotalMS = ms(time.Since(start))
	return res, nil
}

// ClassifyViews runs the model on each view, whose normalised clip fill writes into dst ([3, T, S, S]),
// and merges the views: softmax per view, mean over views, top-k per head.
func (c *Classifier) ClassifyViews(views []preprocess.View, fill func(i int, dst []float32) error, top int,
	progress func(stage string, done, total int)) (*Result, error) {
	if top <= 0 {
		top = 5
	}
	if progress == nil {
		progress = func(string, int, int) {}
	}
	heads := c.Meta.Config.Heads()
	batch := max(c.Batch, 1)
	clipLen := c.Model.ClipLen()
	perView := make([][][]float64, len(views)) // view → head → probs
	var prepTime, inferTime time.Duration
	progress("view", 0, len(views))
	for startView := 0; startView < len(views); startView += batch {
		n := min(batch, len(views)-startView)
		t0 := time.Now()
		x := make([]float32, n*clipLen)
		for i := 0; i < n; i++ {
			if err := fill(startView+i, x[i*clipLen:(i+1)*clipLen]); err != nil {
				return nil, fmt.Errorf("view %d: %w", startView+i, err)
			}
		}
		t1 := time.Now()
		logits, err := c.Model.Run(x, n)
		if err != nil {
			return nil, err
		}
		prepTime += t1.Sub(t0)
		inferTime += time.Since(t1)
		for i := 0; i < n; i++ {
			ph := make([][]float64, len(heads))
			for h := range heads {
				k := len(logits[h]) / n
				ph[h] = Softmax(logits[h][i*k : (i+1)*k])
			}
			perView[startView+i] = ph
		}
		progress("view", startView+n, len(views))
	}
	res := &Result{Model: c.Meta.Name, Heads: heads, Top: map[string][]Prediction{}, probs: map[string][]float64{}}
	for h, head := range heads {
		mean := make([]float64, len(perView[0][h]))
		for _, pv := range perView {
			for k, p := range pv[h] {
				mean[k] += p / float64(len(perView))
			}
		}
		res.probs[head] = mean
		res.Top[head] = TopK(mean, c.Meta.Labels[head], top)
	}
	for i, v := range views {
		vr := ViewResult{Clip: v.Clip, Crop: v.Crop, Frames: v.FrameIndices, X0: v.X0, Y0: v.Y0, Top: map[string][]Prediction{}}
		for h, head := range heads {
			vr.Top[head] = TopK(perView[i][h], c.Meta.Labels[head], 1)
		}
		res.PerView = append(res.PerView, vr)
	}
	if c.Meta.Config.Composition {
		res.Actions = topActions(res.probs["verb"], res.probs["noun"], c.Meta.Labels["verb"], c.Meta.Labels["noun"], top)
	}
	res.Timings.PreprocessMS = ms(prepTime)
	res.Timings.InferenceMS = ms(inferTime)
	res.Timings.PerViewMS = ms(inferTime) / float64(len(views))
	return res, nil
}

// Softmax returns the softmax of logits in float64.
func Softmax(logits []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	out := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		out[i] = math.Exp(float64(v) - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// TopK returns the k most probable classes, most probable first (ties: lower index first).
func TopK(probs []float64, labels []string, k int) []Prediction {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	k = min(k, len(idx))
	out := make([]Prediction, k)
	for i := 0; i < k; i++ {
		label := strconv.Itoa(idx[i])
		if idx[i] < len(labels) {
			label = labels[idx[i]]
		}
		out[i] = Prediction{Index: idx[i], Label: label, Prob: probs[idx[i]]}
	}
	return out
}

// topActions ranks verb+noun pairs by p(verb)·p(noun), searching the top-k of each head.
func topActions(verb, noun []float64, verbLabels, nounLabels []string, k int) []Action {
	tv, tn := TopK(verb, verbLabels, k), TopK(noun, nounLabels, k)
	var acts []Action
	for _, v := range tv {
		for _, n := range tn {
			acts = append(acts, Action{Verb: v, Noun: n, Prob: v.Prob * n.Prob})
		}
	}
	sort.SliceStable(acts, func(a, b int) bool { return acts[a].Prob > acts[b].Prob })
	return acts[:min(k, len(acts))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
