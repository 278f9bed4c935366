package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/castvideo/castgo/cast/infer"
	"image"
	"image/png"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/explain"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/synth"
	"github.com/castvideo/castgo/models"
	"github.com/castvideo/castgo/video"
	"github.com/spf13/cobra"
)

// explainOptions are the flags and arguments of cast explain.
type explainOptions struct {
	model    string // model file or default / default-int8
	methods  string // method names, comma-separated (empty: all)
	views    string // CLIPSxCROPS ("" the model's protocol)
	view     int    // one view of the plan, or -1 for all
	out      string // folder for the PNG sheets ("" none)
	scale    int    // pixel scale of the PNG sheets
	asJSON   bool   // print the maps as JSON
	pointing string // dataset folder for the pointing game ("" none)
	clips    int    // pointing game: the first clips of the folder (0: all)
	videos   []string
	stdout   io.Writer
	stderr   io.Writer
}

func newExplainCmd() *cobra.Command {
	opts := explainOptions{}
	cmd := &cobra.Command{
		Use:   "explain [--model M] [--method NAME,…] [--out DIR] [--json] VIDEO… | explain --pointing DIR [--clips N]",
		Short: "Map what the model looked at in each frame (attention rollouts, gradient saliency) or play the pointing game",
		Long: `Explain computes, for each view of each video (the model's protocol, or --views / --view), one 14×14 map per
frame the model saw, per method:

  cast-rollout       attention rollout through both experts' self-attention and B-CAST's cross-attention
  spatial-rollout    the spatial (CLIP) expert's self-attention alone, from each frame's class token (odd frames)
  temporal-rollout   the temporal (VideoMAE) expert's space-time self-attention alone, from its pooled tokens
  gradient-x-input   ∂(top logit)/∂token × token on both experts' patch embeddings (backend autodiff)
  grad-cam           Grad-CAM on the tokens entering the last block

--out DIR writes one PNG per video and view, DIR/<video>.view<N>.png: the view's crops in the top row, then one
row per method with each frame's map over it. --json prints one JSON object per video and line:
{"video", "model", "views": [{view, clip, crop, frames, top}], "methods": {NAME: [{"view", "frame" (index in the
video), "rect": [x0,y0,x1,y1] (video pixels the grid covers), "grid": [[…] × 14]}]}}.

--pointing DIR plays the pointing game on a dataset written by cast dataset --boxes: a map scores when its
top cell's centre lies in the moving shape's box grown by half a cell. It prints, per method, the share of maps
that score, over all views and split by whether the view's top class got the what (colour and shape) and the
how (motion) right, beside the box-area baseline (the chance of a random cell). --pointing seed:N --clips K
renders clips 0…K-1 of seed N in memory instead (no ffmpeg, no H.264 round trip). See docs/demo-model.md.`,
		Example: `  cast explain --out maps site/examples/red-circle-growing.mp4
  cast explain --json --method cast-rollout,gradient-x-input --view 0 site/examples/red-triangle-moving-right.mp4 > maps.json
  cast explain --pointing synth-boxes   # the clips and boxes.json of the cast dataset --boxes example
  cast explain --pointing seed:31337 --clips 16`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.videos = args
			opts.stdout, opts.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runExplain(ctx, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.model, "model", models.DefaultName, "model file, or default (the embedded model) / default-int8")
	fl.StringVar(&opts.methods, "method", "", "methods, comma-separated (default: all): "+strings.Join(explain.Methods, ", "))
	fl.StringVar(&opts.views, "views", "", "test views CLIPSxCROPS (default: the model's protocol)")
	fl.IntVar(&opts.view, "view", -1, "explain only this view of the plan (index; default: every view)")
	fl.StringVar(&opts.out, "out", "", "write PNG overlays to this folder (created if needed)")
	fl.IntVar(&opts.scale, "scale", 2, "PNG overlays: pixels per video pixel")
	fl.BoolVar(&opts.asJSON, "json", false, "print the maps as JSON, one object per video and line")
	fl.StringVar(&opts.pointing, "pointing", "", "play the pointing game on this dataset folder (annotations.csv + boxes.json), or on seed:N rendered in memory")
	fl.IntVar(&opts.clips, "clips", 0, "--pointing: only the first N clips (default: all)")
	return cmd
}

// runExplain runs cast explain.
func runExplain(ctx context.Context, opts explainOptions) error {
	switch {
	case opts.pointing == "" && len(opts.videos) == 0:
		return errors.New("give one or more videos, or --pointing DIR")
	case opts.pointing != "" && len(opts.videos) > 0:
		return errors.New("--pointing reads its clips from DIR: give no videos with it")
	case opts.pointing == "" && opts.out == "" && !opts.asJSON:
		return errors.New("nothing to write: give --out DIR (PNG overlays) and/or --json")
	case opts.scale < 1 || opts.scale > 16:
		return fmt.Errorf("--scale must be 1 to 16, got %d", opts.scale)
	case opts.clips < 0:
		return fmt.Errorf("--clips must not be negative, got %d", opts.clips)
	}
	methods, err := explain.ParseMethods([]string{opts.methods})
	if err != nil {
		return fmt.Errorf("--method: %w", err)
	}
	f, err := loadModelFile(opts.model)
	if err != nil {
		return err
	}
	clf, err := newClassifier(f, 1)
	if err != nil {
		return err
	}
	defer clf.Close()
	m, ok := clf.Model.(*infer.Model)
	if !ok {
		return fmt.Errorf("cast explain needs a model loaded in this process, not a %T", clf.Model)
	}
	e, err := explain.New(m)
	if err != nil {
		return err
	}
	defer e.Close()
	if opts.pointing != "" {
		return pointingGame(ctx, clf, e, methods, opts)
	}
	if opts.out != "" {
		if err := os.MkdirAll(opts.out, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	failed := 0
	for _, path := range opts.videos {
		if err := explainOne(ctx, clf, e, path, methods, opts); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			failed++
			fmt.Fprintf(opts.stderr, "cast: %s: %v\n", path, err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d videos failed", failed, len(opts.videos))
	}
	return nil
}

// explainVideo decodes a video's needed frames and explains the chosen views (explain.Video); it also returns
// the decoded frames, which the PNG sheets draw on.
func explainVideo(ctx context.Context, clf *classify.Classifier, e *explain.Explainer, path string, methods []string,
	views string, view int) (*explain.Result, map[int]preprocess.Frame, error) {
	src, err := video.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	info := src.Info()
	var frames map[int]preprocess.Frame
	v := classify.Video{NumFrames: info.Frames, Width: info.Width, Height: info.Height,
		Frames: func(idx []int) (map[int]preprocess.Frame, error) {
			var err error
			frames, err = src.Frames(ctx, idx)
			return frames, err
		}}
	r, err := explain.Video(clf, e, v, explain.Options{Views: views, View: view, Methods: methods})
	if err != nil {
		return nil, nil, err
	}
	r.Video = path
	return r, frames, nil
}

// explainOne explains one video and writes its sheets and JSON.
func explainOne(ctx context.Context, clf *classify.Classifier, e *explain.Explainer, path string, methods []string, opts explainOptions) error {
	r, frames, err := explainVideo(ctx, clf, e, path, methods, opts.views, opts.view)
	if err != nil {
		return err
	}
	if opts.out != "" {
		for _, v := range r.Views {
			img, err := explain.Sheet(r, v.View, methods, frames, opts.scale)
			if err != nil {
				return err
			}
			name := filepath.Join(opts.out, fmt.Sprintf("%s.view%d.png", fileStem(path), v.View))
			if err := writePNG(name, img); err != nil {
				return err
			}
			if !opts.asJSON {
				fmt.Fprintf(opts.stdout, "%s view %d (top: %s): %s\n", path, v.View, v.Top[0].Label, name)
			}
		}
	}
	if opts.asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(opts.stdout, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}

// writePNG encodes img to path through a temporary file.
func writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// The pointing game's groups of views, by what the view's top class got right (labels what·4 + how).
var pointingGroups = []string{"all", "what right", "what wrong", "how right", "how wrong"}

// pointingClip is one clip of the pointing game: its name, label, boxes per frame and its maps.
type pointingClip struct {
	name   string
	label  int
	boxes  []synth.Box
	result *explain.Result
}

// pointingSource returns the number of clips of the pointing game's source and a function that explains
// clip i: opts.pointing is a folder written by cast dataset --boxes, or seed:N to render clips 0 … --clips-1
// of the procedural dataset of seed N in memory (the same pixels, without the H.264 round trip).
func pointingSource(ctx context.Context, clf *classify.Classifier, e *explain.Explainer, methods []string,
	opts explainOptions) (int, func(i int) (*pointingClip, error), error) {
	if s, ok := strings.CutPrefix(opts.pointing, "seed:"); ok {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, nil, fmt.Errorf("--pointing %s: want seed:N with an integer N", opts.pointing)
		}
		if opts.clips < 1 {
			return 0, nil, fmt.Errorf("--pointing %s needs --clips N", opts.pointing)
		}
		return opts.clips, func(i int) (*pointingClip, error) {
			frames, label := synth.Clip(seed, i, synth.Options{})
			fm := make(map[int]preprocess.Frame, len(frames))
			for k, f := range frames {
				fm[k] = f
			}
			v := classify.Video{NumFrames: len(frames), Width: frames[0].Width, Height: frames[0].Height,
				Frames: func([]int) (map[int]preprocess.Frame, error) { return fm, nil }}
			r, err := explain.Video(clf, e, v, explain.Options{Views: opts.views, View: opts.view, Methods: methods})
			if err != nil {
				return nil, err
			}
			return &pointingClip{name: synth.ClipName(i), label: label, boxes: synth.Boxes(seed, i, synth.Options{}), result: r}, nil
		}, nil
	}
	af, err := os.Open(filepath.Join(opts.pointing, "annotations.csv"))
	if err != nil {
		return 0, nil, fmt.Errorf("--pointing: %w", err)
	}
	anns, err := synth.ParseAnnotations(af)
	af.Close()
	if err != nil {
		return 0, nil, fmt.Errorf("--pointing: %w", err)
	}
	boxes, err := synth.ReadBoxes(filepath.Join(opts.pointing, synth.BoxesFile))
	if err != nil {
		return 0, nil, fmt.Errorf("--pointing: %w (write it with cast dataset --boxes)", err)
	}
	if opts.clips > 0 && opts.clips < len(anns) {
		anns = anns[:opts.clips]
	}
	return len(anns), func(i int) (*pointingClip, error) {
		a := anns[i]
		bx, ok := boxes[a.Video]
		if !ok {
			return nil, fmt.Errorf("--pointing: %s has no boxes in %s", a.Video, synth.BoxesFile)
		}
		r, _, err := explainVideo(ctx, clf, e, filepath.Join(opts.pointing, a.Video), methods, opts.views, opts.view)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Video, err)
		}
		return &pointingClip{name: a.Video, label: a.Label, boxes: bx, result: r}, nil
	}, nil
}

// pointingGame plays the pointing game on procedural clips with their boxes (see pointingSource).
func pointingGame(ctx context.Context, clf *classify.Classifier, e *explain.Explainer, methods []string, opts explainOptions) error {
	if n := len(clf.Meta.Labels["logits"]); n != len(synth.Classes) {
		return fmt.Errorf("--pointing: the model has %d classes, the procedural dataset %d", n, len(synth.Classes))
	}
	n, get, err := pointingSource(ctx, clf, e, methods, opts)
	if err != nil {
		return err
	}
	tallies := map[string]map[string]*explain.Tally{} // group → method → tally
	views := map[string]int{}
	bar := newProgress(opts.stderr, n, "pointing game")
	for i := range n {
		if err := ctx.Err(); err != nil {
			bar.Finish()
			return fmt.Errorf("interrupted: %w", err)
		}
		c, err := get(i)
		if err != nil {
			bar.Finish()
			return err
		}
		r, a, bx := c.result, c, c.boxes
		for _, v := range r.Views {
			pred := v.Top[0].Index
			groups := []string{"all", "what right", "how right"}
			if pred/synth.HowCount != a.label/synth.HowCount {
				groups[1] = "what wrong"
			}
			if pred%synth.HowCount != a.label%synth.HowCount {
				groups[2] = "how wrong"
			}
			one := &explain.Result{Views: []explain.ViewInfo{v}, Methods: map[string][]explain.Map{}}
			for m, maps := range r.Methods {
				for _, mp := range maps {
					if mp.View == v.View {
						one.Methods[m] = append(one.Methods[m], mp)
					}
				}
			}
			for _, g := range groups {
				views[g]++
				if tallies[g] == nil {
					tallies[g] = map[string]*explain.Tally{}
				}
				if err := explain.Score(one, bx, tallies[g]); err != nil {
					bar.Finish()
					return fmt.Errorf("%s: %w", a.name, err)
				}
			}
		}
		bar.Set(i + 1)
	}
	bar.Finish()
	w := opts.stdout
	fmt.Fprintf(w, "pointing game: %d clips of %s, model %s; a map scores when its top cell lands on the shape's box grown by half a cell\n\n",
		n, opts.pointing, clf.Meta.Name)
	fmt.Fprint(w, "| method |")
	for _, g := range pointingGroups {
		fmt.Fprintf(w, " %s (%d views) |", g, views[g])
	}
	fmt.Fprint(w, " box-area baseline |\n|---|")
	for range pointingGroups {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprint(w, "---|\n")
	for _, m := range methods {
		fmt.Fprintf(w, "| %s |", m)
		for _, g := range pointingGroups {
			if t := tallies[g][m]; t != nil && t.Maps > 0 {
				fmt.Fprintf(w, " %.3f (%d/%d) |", t.Accuracy(), t.Hits, t.Maps)
			} else {
				fmt.Fprint(w, " — |")
			}
		}
		if t := tallies["all"][m]; t != nil {
			fmt.Fprintf(w, " %.3f |", t.Chance())
		}
		fmt.Fprintln(w)
	}
	return nil
}
