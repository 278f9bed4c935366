package models_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/synth"
	"github.com/castvideo/castgo/models"
)

// checkSeed is a procedural-data seed never used in training (training used 1000, its evaluation 9000) nor to
// choose the recipe. It was measured after training and minTop1 was set from that measurement, so it is a
// regression check, like seed 9000: the held-out figure of the shipped model is seed 20261206's, measured once
// (docs/demo-model.md) and deliberately not used by any test.
const checkSeed = 424242

// minTop1 is the accuracy the shipped model must reach on checkSeed clips with its own protocol (2×1
// views). The model is measured well above it (docs/demo-model.md); the bound leaves room for the sampling
// noise of checkClips clips.
const minTop1 = 0.85

// minAgree is the fraction of clips on which the int8 twin must pick the same top-1 class as float32.
const minAgree = 0.99

// maxProbDiff bounds |p_int8 − p_fp32| for every class of every clip.
const maxProbDiff = 0.05

// checkClips is the number of checkSeed clips evaluated.
const checkClips = 200

func classifier(t *testing.T, f *modelfile.File) *classify.Classifier {
	t.Helper()
	b, _, err := infer.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	c, err := classify.New(b, f)
	if err != nil {
		t.Fatal(err)
	}
	c.Batch = 2
	return c
}

func synthVideo(frames []preprocess.Frame) classify.Video {
	return classify.Video{NumFrames: len(frames), Width: frames[0].Width, Height: frames[0].Height,
		Frames: func(idx []int) (map[int]preprocess.Frame, error) {
			m := map[int]preprocess.Frame{}
			for _, i := range idx {
				m[i] = frames[i]
			}
			return m, nil
		}}
}

// TestDefaultModelAccuracy classifies freshly generated clips of checkSeed, with the model's own test
// protocol, and checks the shipped model's top-1 accuracy (a regression check), and that its int8 twin agrees
// with it.
func TestDefaultModelAccuracy(t *testing.T) {
	fp32, err := models.Default()
	if err != nil {
		t.Fatal(err)
	}
	int8, err := models.DefaultInt8()
	if err != nil {
		t.Fatal(err)
	}
	if int8.Meta.Quantization != modelfile.QuantInt8 || fp32.Meta.Quantization != modelfile.QuantNone {
		t.Fatalf("quantization: fp32 file says %q, int8 file says %q", fp32.Meta.Quantization, int8.Meta.Quantization)
	}
	r := evaluate(t, fp32, int8, checkSeed, checkClips, "")
	t.Logf("default model (%s): top-1 %.1f%% on %d clips of seed %d (own protocol); int8 twin %.1f%%, same top-1 on %d/%d clips, max |Δp| %.4f",
		fp32.Meta.Name, 100*r.top1(), r.n, checkSeed, 100*r.top1Int8(), r.agree, r.n, r.maxDiff)
	if r.top1() < minTop1 {
		t.Errorf("top-1 %.1f%% on seed %d is below the bound %.0f%%", 100*r.top1(), checkSeed, 100*minTop1)
	}
	if a := float64(r.agree) / float64(r.n); a < minAgree {
		t.Errorf("int8 twin agrees with float32 on %.1f%% of clips, want ≥ %.0f%%", 100*a, 100*minAgree)
	}
	if r.maxDiff > maxProbDiff {
		t.Errorf("int8 probabilities differ from fp32 by up to %.4f > %.2f", r.maxDiff, maxProbDiff)
	}
}

// TestDefaultModelTrainingRegression measures the shipped model on the evaluation set its training reported:
// 320 clips of seed 9000 with the 1×1 view, with top-1 split by the what and how halves of the label, the
// int8 twin's agreement and the confusion matrix (docs/demo-model.md); a few seconds on castgo. Seed 9000
// chose the recipe and set this bound, so this is a regression check, not a held-out measurement.
func TestDefaultModelTrainingRegression(t *testing.T) {
	fp32, err := models.Default()
	if err != nil {
		t.Fatal(err)
	}
	int8, err := models.DefaultInt8()
	if err != nil {
		t.Fatal(err)
	}
	r := evaluate(t, fp32, int8, 9000, 320, "1x1")
	var what, how int
	var sb strings.Builder
	sb.WriteString("| true \\ predicted |")
	for j := range synth.Classes {
		fmt.Fprintf(&sb, " %d |", j)
	}
	sb.WriteString("\n|---|")
	for range synth.Classes {
		sb.WriteString("---|")
	}
	sb.WriteString("\n")
	for i, row := range r.confusion {
		fmt.Fprintf(&sb, "| %d %s |", i, synth.Classes[i])
		for j, c := range row {
			if c == 0 {
				sb.WriteString(" · |")
			} else {
				fmt.Fprintf(&sb, " %d |", c)
			}
			if i/4 == j/4 {
				what += c
			}
			if i%4 == j%4 {
				how += c
			}
		}
		sb.WriteString("\n")
	}
	t.Logf("seed 9000, 320 clips, 1×1 view: top-1 %.2f%% (what %.2f%%, how %.2f%%); int8 twin %.2f%%, same top-1 on %d/%d clips, max |Δp| %.4f\n%s",
		100*r.top1(), 100*float64(what)/float64(r.n), 100*float64(how)/float64(r.n), 100*r.top1Int8(), r.agree, r.n, r.maxDiff, sb.String())
	if r.top1() < 0.90 { // measured 91.25 % (292/320: docs/demo-model.md); the clips and the model are fixed
		t.Errorf("top-1 %.1f%% on seed 9000 (the training run's evaluation set), want ≥ 90%%", 100*r.top1())
	}
}

type evalResult struct {
	n, correct, correctInt8, agree int
	maxDiff                        float64
	confusion                      [][]int
}

func (r evalResult) top1() float64     { return float64(r.correct) / float64(r.n) }
func (r evalResult) top1Int8() float64 { return float64(r.correctInt8) / float64(r.n) }

// evaluate classifies n clips of seed with both models (views "" is the model's own protocol).
func evaluate(t *testing.T, fp32, int8 *modelfile.File, seed int64, n int, views string) evalResult {
	t.Helper()
	cf, cq := classifier(t, fp32), classifier(t, int8)
	r := evalResult{n: n, confusion: make([][]int, len(synth.Classes))}
	for i := range r.confusion {
		r.confusion[i] = make([]int, len(synth.Classes))
	}
	for i := 0; i < n; i++ {
		frames, label := synth.Clip(seed, i, synth.Options{})
		rf, err := cf.Classify(synthVideo(frames), classify.Options{Top: 1, Views: views})
		if err != nil {
			t.Fatal(err)
		}
		rq, err := cq.Classify(synthVideo(frames), classify.Options{Top: 1, Views: views})
		if err != nil {
			t.Fatal(err)
		}
		pf, pq := rf.Top["logits"][0].Index, rq.Top["logits"][0].Index
		r.confusion[label][pf]++
		if pf == label {
			r.correct++
		}
		if pq == label {
			r.correctInt8++
		}
		if pf == pq {
			r.agree++
		}
		a, b := rf.Probs("logits"), rq.Probs("logits")
		for k := range a {
			r.maxDiff = math.Max(r.maxDiff, math.Abs(a[k]-b[k]))
		}
	}
	return r
}

// TestDefaultModelClipSeconds: both default files say how long their training clips were (synth's 16 frames
// at 8 fps), which the page's live camera mode takes as its window.
func TestDefaultModelClipSeconds(t *testing.T) {
	want := float64(synth.DefaultFrames) / float64(synth.DefaultFPS)
	for name, load := range map[string]func() (*modelfile.File, error){"default": models.Default, "default-int8": models.DefaultInt8} {
		f, err := load()
		if err != nil {
			t.Fatal(err)
		}
		if f.Meta.ClipSeconds != want || want != 2 {
			t.Errorf("%s: clip seconds %v, want %v (2 s)", name, f.Meta.ClipSeconds, want)
		}
	}
}
