package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/synth"
	"github.com/castvideo/castgo/models"
	"github.com/spf13/cobra"
)

// evalMetric is the accuracy of one head (or of EPIC actions) in `cast eval`.
type evalMetric struct {
	Head     string  `json:"head"` // "logits", "verb", "noun" or "action"
	Top1     float64 `json:"top1"` // fraction of evaluated videos whose true class ranks first
	Top5     float64 `json:"top5"` // fraction whose true class is among the five most probable
	Correct1 int     `json:"correct1"`
	Correct5 int     `json:"correct5"`
}

// evalFactor is the top-1 accuracy of one factor of a factored label set: with --factors WxH a label is
// what·H + how, and a video's what (how) is right when the top-1 class has the true what (how), whether or not
// the class itself is right.
type evalFactor struct {
	Name     string  `json:"name"`   // "what" (label / H) or "how" (label % H)
	Values   int     `json:"values"` // how many values the factor takes (W or H)
	Top1     float64 `json:"top1"`   // fraction of evaluated videos whose top-1 class has the true value
	Correct1 int     `json:"correct1"`
}

// evalError is one video that could not be evaluated.
type evalError struct {
	Video string `json:"video"`
	Error string `json:"error"`
}

// evalReport is the result of `cast eval` (its --json form).
type evalReport struct {
	Model     string       `json:"model"`
	Views     string       `json:"views"`
	Videos    int          `json:"videos"`    // annotated videos considered (after --limit)
	Evaluated int          `json:"evaluated"` // videos classified (the denominator of the accuracies)
	Failed    int          `json:"failed"`
	Metrics   []evalMetric `json:"metrics"`
	Factors   []evalFactor `json:"factors,omitempty"` // the what and how halves of the label (see --factors)
	Errors    []evalError  `json:"errors,omitempty"`
	Seconds   float64      `json:"seconds"`
}

// evalItem is one annotated video: its path and true class per head ("logits", or "verb" and "noun").
type evalItem struct {
	path  string
	truth map[string]int
}

// evalOptions are the flags of `cast eval`.
type evalOptions struct {
	streams
	backend                                       string // the global --backend
	model, annotations, videosDir, views, factors string
	limit, batch                                  int
	asJSON                                        bool
}

// newEvalCmd builds `cast eval`.
func newEvalCmd() *cobra.Command {
	var o evalOptions
	cmd := &cobra.Command{
		Use:   "eval [--model MODEL] --annotations FILE.csv --videos DIR [--views CLIPSxCROPS] [--limit N] [--json]",
		Short: "Measure top-1/top-5 accuracy on an annotated split (SSv2 'video label' or EPIC 'id,verb,noun')",
		Long: `Eval classifies every annotated video under --videos and reports top-1 and top-5 accuracy, the way the
official test loop scores a split (softmax averaged over the test views).

Single-head models read the SSv2 list format, one "video.mp4 LABEL" per line (as written by cast dataset).
The EPIC model reads "id,verb,noun" CSV lines (an optional header is skipped) and reports verb, noun and
action accuracy; an action is right at top-k when the true (verb, noun) pair is among the k most probable
pairs scored by p(verb)·p(noun). An id without a file extension is looked up as id.mp4, id.webm, id.mkv,
id.avi or a folder of frames.

--factors splits a single-head label into two halves, as in the paper's analysis of which expert helps where:
"WxH" reads label = what·H + how (W·H must be the class count) and adds the top-1 accuracy of each half (a
video's what is right when its top-1 class c has c/H = label/H, its how when c%H = label%H). The default, auto,
uses 4x4 for models whose classes are the procedural dataset's 16 (cast dataset, cast train: what = red circle,
red triangle, blue circle, blue triangle; how = moving left, moving right, growing, shrinking) and no split
otherwise; none turns it off.`,
		Example: `  cast dataset --seed 7 --clips 16 --out synth-test
  cast eval --annotations synth-test/annotations.csv --videos synth-test
  cast eval --model default-int8 --annotations synth-test/annotations.csv --videos synth-test --views 1x1 --factors none --limit 8 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.streams, o.backend = streamsOf(cmd), backendFlag
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runEval(ctx, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.model, "model", models.DefaultName, "model file, or default (the embedded model) / default-int8")
	fl.StringVar(&o.annotations, "annotations", "", "annotation list: 'video.mp4 LABEL' lines, or EPIC 'id,verb,noun' CSV (required)")
	fl.StringVar(&o.videosDir, "videos", "", "folder holding the annotated videos (required)")
	fl.StringVar(&o.views, "views", "", "test views CLIPSxCROPS (default: the model's protocol)")
	fl.StringVar(&o.factors, "factors", "auto", "split the label into what×how halves: WxH (label = what·H + how), auto (4x4 for the procedural dataset's 16 classes) or none")
	fl.IntVar(&o.limit, "limit", 0, "evaluate only the first N annotated videos (0: all)")
	fl.IntVar(&o.batch, "batch", 1, "views per model call")
	fl.BoolVar(&o.asJSON, "json", false, "print one JSON object")
	return cmd
}

// runEval classifies every annotated video of o and prints the accuracy; a failed video is reported and
// the process then ends with status 1 (exitPartialFailure).
func runEval(ctx context.Context, o evalOptions) error {
	if o.annotations == "" || o.videosDir == "" {
		return errors.New("--annotations and --videos are required")
	}
	f, err := loadModelFile(o.model)
	if err != nil {
		return err
	}
	proto, err := classify.ParseViews(o.views, f.Meta.Protocol)
	if err != nil {
		return fmt.Errorf("--views: %w", err)
	}
	split, err := parseFactors(o.factors, f.Meta.Config, f.Meta.Labels["logits"])
	if err != nil {
		return err
	}
	items, err := readEvalItems(o.annotations, o.videosDir, f.Meta.Config.Composition, f.Meta.Config.Heads(), f.Meta.Config.HeadClasses())
	if err != nil {
		return err
	}
	if o.limit > 0 && o.limit < len(items) {
		items = items[:o.limit]
	}
	c, err := classifierOn(f, o.backend, o.batch, o.stderr)
	if err != nil {
		return err
	}
	stderr := o.stderr
	start := time.Now()
	rep := &evalReport{Model: f.Meta.Name, Views: fmt.Sprintf("%dx%d", proto.Clips, proto.Crops), Videos: len(items)}
	heads := f.Meta.Config.Heads()
	if f.Meta.Config.Composition {
		heads = []string{"verb", "noun", "action"}
	}
	c1, c5 := map[string]int{}, map[string]int{}
	var whatRight, howRight int
	perVideo := proto.Clips * proto.Crops
	bar := newProgress(stderr, len(items)*perVideo, "eval")
	for i, it := range items {
		opt := classify.Options{Views: o.views, Top: 5, Progress: func(stage string, done, _ int) {
			if stage == "view" {
				bar.Set(i*perVideo + done)
			}
		}}
		r, err := classifyVideo(ctx, c, it.path, opt)
		if ctx.Err() != nil {
			bar.Finish()
			return fmt.Errorf("interrupted after %d of %d videos: %w", i, len(items), ctx.Err())
		}
		bar.Set((i + 1) * perVideo)
		if err != nil {
			rep.Failed++
			rep.Errors = append(rep.Errors, evalError{Video: it.path, Error: err.Error()})
			bar.Clear()
			fmt.Fprintf(stderr, "cast: %s: %v\n", it.path, err)
			continue
		}
		rep.Evaluated++
		ranks := map[string]int{}
		for _, h := range f.Meta.Config.Heads() {
			ranks[h] = classify.Rank(r.Probs(h), it.truth[h])
		}
		if split > 0 {
			w, h := classify.FactorHits(r.Probs("logits"), it.truth["logits"], split)
			whatRight += w
			howRight += h
		}
		if f.Meta.Config.Composition {
			ranks["action"] = classify.ActionRank(r.Probs("verb"), r.Probs("noun"), it.truth["verb"], it.truth["noun"])
		}
		for h, rank := range ranks {
			if rank == 0 {
				c1[h]++
			}
			if rank < 5 {
				c5[h]++
			}
		}
		if !bar.Active() && !o.asJSON && (i+1)%10 == 0 {
			fmt.Fprintf(stderr, "eval: %d/%d videos\n", i+1, len(items))
		}
	}
	bar.Finish()
	rep.Seconds = time.Since(start).Seconds()
	for _, h := range heads {
		m := evalMetric{Head: h, Correct1: c1[h], Correct5: c5[h]}
		if rep.Evaluated > 0 {
			m.Top1, m.Top5 = float64(c1[h])/float64(rep.Evaluated), float64(c5[h])/float64(rep.Evaluated)
		}
		rep.Metrics = append(rep.Metrics, m)
	}
	if split > 0 {
		n := f.Meta.Config.NumClasses
		rep.Factors = []evalFactor{{Name: "what", Values: n / split, Correct1: whatRight}, {Name: "how", Values: split, Correct1: howRight}}
		for i := range rep.Factors {
			if rep.Evaluated > 0 {
				rep.Factors[i].Top1 = float64(rep.Factors[i].Correct1) / float64(rep.Evaluated)
			}
		}
	}
	out := o.stdout
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := printEval(out, rep); err != nil {
		return err
	}
	if rep.Failed > 0 {
		return exitPartialFailure(stderr, fmt.Sprintf("%d of %d videos failed (accuracy is over the %d evaluated)", rep.Failed, rep.Videos, rep.Evaluated))
	}
	return nil
}

// readEvalItems reads the annotation list (EPIC format for a composition model) and checks every label
// against the model's class counts.
func readEvalItems(path, dir string, epic bool, heads []string, classes []int) ([]evalItem, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--annotations: %w", err)
	}
	defer fh.Close()
	nClasses := map[string]int{}
	for i, h := range heads {
		nClasses[h] = classes[i]
	}
	var items []evalItem
	if epic {
		anns, err := synth.ParseEPICAnnotations(fh)
		if err != nil {
			return nil, fmt.Errorf("--annotations %s (EPIC id,verb,noun): %w", path, err)
		}
		for _, a := range anns {
			items = append(items, evalItem{path: findVideo(dir, a.Video), truth: map[string]int{"verb": a.Verb, "noun": a.Noun}})
		}
	} else {
		anns, err := synth.ParseAnnotations(fh)
		if err != nil {
			return nil, fmt.Errorf("--annotations %s ('video label' lines): %w", path, err)
		}
		for _, a := range anns {
			items = append(items, evalItem{path: filepath.Join(dir, a.Video), truth: map[string]int{"logits": a.Label}})
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("--annotations %s lists no videos", path)
	}
	for i, it := range items {
		for h, label := range it.truth {
			if label >= nClasses[h] {
				return nil, fmt.Errorf("--annotations %s: entry %d (%s) has %s label %d, but the model has %d %s classes",
					path, i+1, filepath.Base(it.path), h, label, nClasses[h], h)
			}
		}
	}
	return items, nil
}

// parseFactors reads --factors for a model: it returns H, the number of hows (label = what·H + how), or 0 for
// no split. auto splits the procedural dataset's classes (synth.Classes, 4 whats × 4 hows) and nothing else.
func parseFactors(spec string, cfg cast.Config, labels []string) (int, error) {
	switch spec {
	case "none":
		return 0, nil
	case "auto", "":
		if cfg.Composition || !slices.Equal(labels, synth.Classes) {
			return 0, nil
		}
		return synth.HowCount, nil
	}
	if cfg.Composition {
		return 0, fmt.Errorf("--factors %s: the EPIC model's verb and noun heads are already its two halves", spec)
	}
	ws, hs, ok := strings.Cut(spec, "x")
	w, errW := strconv.Atoi(ws)
	h, errH := strconv.Atoi(hs)
	if !ok || errW != nil || errH != nil || w < 1 || h < 1 {
		return 0, fmt.Errorf("--factors %q: want auto, none or WxH with positive W and H (e.g. 4x4)", spec)
	}
	if w*h != cfg.NumClasses {
		return 0, fmt.Errorf("--factors %s: %d×%d = %d halves, but the model has %d classes", spec, w, h, w*h, cfg.NumClasses)
	}
	return h, nil
}

// findVideo resolves an EPIC segment id under dir: the name itself if it exists, else with a video extension.
func findVideo(dir, id string) string {
	p := filepath.Join(dir, id)
	if _, err := os.Stat(p); err == nil || filepath.Ext(id) != "" {
		return p
	}
	for _, ext := range []string{".mp4", ".webm", ".mkv", ".avi"} {
		if _, err := os.Stat(p + ext); err == nil {
			return p + ext
		}
	}
	return p
}

// printEval writes the accuracy table.
func printEval(w io.Writer, r *evalReport) error {
	fmt.Fprintf(w, "model %s, views %s: %d videos evaluated", r.Model, r.Views, r.Evaluated)
	if r.Failed > 0 {
		fmt.Fprintf(w, " (%d failed)", r.Failed)
	}
	fmt.Fprintf(w, " in %.1f s\n", r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "head\ttop-1\ttop-5\tcorrect@1\tcorrect@5\t\n")
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "%s\t%.2f%%\t%.2f%%\t%d/%d\t%d/%d\t\n", m.Head, 100*m.Top1, 100*m.Top5, m.Correct1, r.Evaluated, m.Correct5, r.Evaluated)
	}
	for _, f := range r.Factors {
		fmt.Fprintf(tw, "%s (of %d)\t%.2f%%\t-\t%d/%d\t-\t\n", f.Name, f.Values, 100*f.Top1, f.Correct1, r.Evaluated)
	}
	return tw.Flush()
}
