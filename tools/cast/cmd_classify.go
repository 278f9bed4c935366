package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/models"
	"github.com/castvideo/castgo/video"
	"github.com/spf13/cobra"
)

// classifyOutcome is one video's entry in `cast classify --json`: its result, or the error that stopped it.
type classifyOutcome struct {
	Video  string           `json:"video"`
	Result *classify.Result `json:"result,omitempty"`
	Error  string           `json:"error,omitempty"`
}

// classifyOptions are the flags and arguments of `cast classify`.
type classifyOptions struct {
	streams
	backend               string   // the global --backend
	videos                []string // the arguments: video files, folders of videos, folders of frames
	model, views, csvPath string
	top, batch            int
	asJSON                bool
}

// newClassifyCmd builds `cast classify`.
func newClassifyCmd() *cobra.Command {
	var o classifyOptions
	cmd := &cobra.Command{
		Use:   "classify [--model MODEL|default] VIDEO|DIR... [--views 1x1|2x3|5x3] [--top K] [--json] [--csv FILE]",
		Short: "Classify the actions in videos (files, folders of videos, or folders of frame images)",
		Long: `Classify decodes each video with ffmpeg (a folder of .png/.jpg frames is read directly), samples and
preprocesses the test views of the model's protocol (or --views), runs CAST on every view, averages the softmax
over the views and prints the top classes with their probabilities. The EPIC model prints verbs, nouns and the
most probable verb+noun actions.

A folder argument that holds video files classifies each of them; a folder that holds only images is one video
given as frames. The model is loaded once. Failed videos are reported and skipped; the exit status is then 1.

--json prints one JSON document for scripts: an array of {"video", "result"} (or {"video", "error"}) objects.
--csv FILE also writes video,rank,label,prob rows (EPIC labels are prefixed "verb:", "noun:" and "action:").`,
		Example: `  cast classify site/examples/red-circle-growing.mp4
  cast classify --model default-int8 --views 1x1 --top 3 site/examples/
  cast classify --json --csv results.csv site/examples/red-triangle-moving-right.mp4 > results.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.streams, o.backend, o.videos = streamsOf(cmd), backendFlag, args
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runClassify(ctx, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.model, "model", models.DefaultName, "model file, or default (the embedded model) / default-int8")
	fl.StringVar(&o.views, "views", "", "test views CLIPSxCROPS: 1x1 (fast), 2x3 (SSv2/EPIC), 5x3 (K400); default: the model's protocol")
	fl.IntVar(&o.top, "top", 5, "predictions to show per head")
	fl.BoolVar(&o.asJSON, "json", false, "print one JSON document (an array with one entry per video)")
	fl.StringVar(&o.csvPath, "csv", "", "also write video,rank,label,prob rows to this CSV file")
	fl.IntVar(&o.batch, "batch", 1, "views per model call (more is faster on XLA, uses more memory)")
	return cmd
}

// runClassify classifies every video of o and prints the results; a failed video is reported and the
// process then ends with status 1 (exitPartialFailure).
func runClassify(ctx context.Context, o classifyOptions) error {
	f, err := loadModelFile(o.model)
	if err != nil {
		return err
	}
	proto, err := classify.ParseViews(o.views, f.Meta.Protocol)
	if err != nil {
		return fmt.Errorf("--views: %w", err)
	}
	var (
		csvOut  *csv.Writer
		csvFile *os.File
	)
	if o.csvPath != "" {
		// Written beside the target and renamed into place at the end: an interrupted or failed run
		// leaves no half-written CSV.
		cf, err := os.CreateTemp(filepath.Dir(o.csvPath), "."+filepath.Base(o.csvPath)+".tmp-*")
		if err != nil {
			return fmt.Errorf("--csv: %w", err)
		}
		defer func() {
			cf.Close()
			os.Remove(cf.Name()) // a no-op once renamed
		}()
		csvFile, csvOut = cf, csv.NewWriter(cf)
		_ = csvOut.Write([]string{"video", "rank", "label", "prob"})
	}
	c, err := classifierOn(f, o.backend, o.batch, o.stderr)
	if err != nil {
		return err
	}
	inputs := expandVideoArgs(o.videos)
	stdout, stderr := o.stdout, o.stderr
	perVideo := proto.Clips * proto.Crops
	bar := newProgress(stderr, len(inputs)*perVideo, "")
	var outcomes []classifyOutcome
	failed := 0
	for i, in := range inputs {
		bar.Describe(fmt.Sprintf("[%d/%d] %s", i+1, len(inputs), filepath.Base(in.path)))
		opt := classify.Options{Views: o.views, Top: o.top, Progress: func(stage string, done, _ int) {
			if stage == "view" {
				bar.Set(i*perVideo + done)
			}
		}}
		var r *classify.Result
		err := in.err
		if err == nil {
			r, err = classifyVideo(ctx, c, in.path, opt)
		}
		if ctx.Err() != nil {
			bar.Finish()
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		bar.Set((i + 1) * perVideo)
		if err != nil {
			failed++
			outcomes = append(outcomes, classifyOutcome{Video: in.path, Error: err.Error()})
			bar.Clear()
			fmt.Fprintf(stderr, "cast: %s: %v\n", in.path, err)
			continue
		}
		outcomes = append(outcomes, classifyOutcome{Video: in.path, Result: r})
		if csvOut != nil {
			writeCSVRows(csvOut, in.path, r)
		}
		if !o.asJSON {
			bar.Clear()
			printResult(stdout, in.path, r)
		}
	}
	bar.Finish()
	if csvOut != nil {
		csvOut.Flush()
		if err := csvOut.Error(); err != nil {
			return fmt.Errorf("--csv %s: %w", o.csvPath, err)
		}
		if err := csvFile.Close(); err != nil {
			return fmt.Errorf("--csv %s: %w", o.csvPath, err)
		}
		if err := os.Rename(csvFile.Name(), o.csvPath); err != nil {
			return fmt.Errorf("--csv: %w", err)
		}
	}
	if o.asJSON {
		if outcomes == nil {
			outcomes = []classifyOutcome{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(outcomes); err != nil {
			return err
		}
	}
	if failed > 0 {
		return exitPartialFailure(stderr, fmt.Sprintf("%d of %d videos failed", failed, len(inputs)))
	}
	return nil
}

// classifyVideo opens one video (file or frame folder) and classifies it.
func classifyVideo(ctx context.Context, c *classify.Classifier, path string, opt classify.Options) (*classify.Result, error) {
	src, err := video.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	info := src.Info()
	if info.Frames == 1 {
		return nil, errors.New("video has only 1 frame: CAST classifies motion and needs a clip of several frames")
	}
	v := classify.Video{NumFrames: info.Frames, Width: info.Width, Height: info.Height,
		Frames: func(idx []int) (map[int]preprocess.Frame, error) { return src.Frames(ctx, idx) }}
	return c.Classify(v, opt)
}

// videoClips decodes one video (file or frame folder) and preprocesses it the official way into the test
// views of f's protocol (or views, CLIPSxCROPS): the normalised clips [n, 3, T, S, S] and n.
func videoClips(ctx context.Context, f *modelfile.File, path, views string) ([]float32, int, error) {
	p, err := classify.ParseViews(views, f.Meta.Protocol)
	if err != nil {
		return nil, 0, fmt.Errorf("--views: %w", err)
	}
	src, err := video.Open(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	info := src.Info()
	cfg := f.Meta.Config
	plan, err := preprocess.Plan(p, info.Frames, info.Width, info.Height, cfg.ImgSize, cfg.AllFrames)
	if err != nil {
		return nil, 0, err
	}
	frames, err := src.Frames(ctx, preprocess.NeededFrames(plan))
	if err != nil {
		return nil, 0, err
	}
	prep, err := preprocess.Prepare(frames, plan, cfg.ImgSize)
	if err != nil {
		return nil, 0, err
	}
	x, err := prep.Tensors(plan)
	if err != nil {
		return nil, 0, err
	}
	return x, len(plan), nil
}

// videoInput is one video to classify, or the reason an argument yields none.
type videoInput struct {
	path string
	err  error
}

// expandVideoArgs turns the arguments into videos: a file is one video; a folder that holds video files
// gives each of them (sorted by name); a folder that holds only frame images is one video.
func expandVideoArgs(args []string) []videoInput {
	var out []videoInput
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil || !st.IsDir() {
			out = append(out, videoInput{path: arg})
			continue
		}
		entries, err := os.ReadDir(arg)
		if err != nil {
			out = append(out, videoInput{path: arg, err: fmt.Errorf("reading folder: %w", err)})
			continue
		}
		var videos []string
		images := 0
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(arg, e.Name())
			switch {
			case isImageFile(e.Name()):
				images++
			case isVideoFile(p):
				videos = append(videos, p)
			}
		}
		sort.Strings(videos)
		switch {
		case len(videos) > 0:
			for _, v := range videos {
				out = append(out, videoInput{path: v})
			}
		case images > 0:
			out = append(out, videoInput{path: arg}) // a folder of frames
		default:
			out = append(out, videoInput{path: arg, err: errors.New("folder holds no video files and no .png/.jpg frames")})
		}
	}
	return out
}

// isImageFile reports whether name is a frame image the video package reads from a folder.
func isImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// videoExts are the extensions taken as videos even when the content is not recognised (an empty or
// damaged file then fails with its own error instead of being skipped silently).
var videoExts = map[string]bool{".mp4": true, ".m4v": true, ".mov": true, ".mkv": true, ".webm": true, ".avi": true,
	".mpg": true, ".mpeg": true, ".ts": true, ".wmv": true, ".flv": true, ".ogv": true, ".3gp": true, ".gif": true, ".y4m": true}

// isVideoFile reports whether the file at p is a video, by its first bytes (MP4/MOV, Matroska/WebM, AVI,
// Ogg, FLV, MPEG-PS/TS, ASF, GIF, Y4M) or else by its extension.
func isVideoFile(p string) bool {
	if videoExts[strings.ToLower(filepath.Ext(p))] {
		return true
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 189)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	switch {
	case len(b) >= 8 && string(b[4:8]) == "ftyp",
		bytes.HasPrefix(b, []byte{0x1A, 0x45, 0xDF, 0xA3}),
		len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "AVI ",
		bytes.HasPrefix(b, []byte("OggS")), bytes.HasPrefix(b, []byte("FLV")),
		bytes.HasPrefix(b, []byte{0, 0, 1, 0xBA}), bytes.HasPrefix(b, []byte{0, 0, 1, 0xB3}),
		bytes.HasPrefix(b, []byte{0x30, 0x26, 0xB2, 0x75}),
		bytes.HasPrefix(b, []byte("GIF8")), bytes.HasPrefix(b, []byte("YUV4MPEG2")),
		len(b) == 189 && b[0] == 0x47 && b[188] == 0x47:
		return true
	}
	return false
}

// printResult writes one video's top predictions.
func printResult(w io.Writer, path string, r *classify.Result) {
	fmt.Fprintf(w, "%s  (%d frames, %s views, %.0f ms)\n", path, r.Frames, r.Views, r.Timings.TotalMS)
	multi := len(r.Heads) > 1
	for _, h := range r.Heads {
		if multi {
			fmt.Fprintf(w, "  %s:\n", h)
		}
		for i, p := range r.Top[h] {
			fmt.Fprintf(w, "  %3d. %6.2f%%  %s\n", i+1, 100*p.Prob, p.Label)
		}
	}
	if len(r.Actions) > 0 {
		fmt.Fprintf(w, "  action (verb noun):\n")
		for i, a := range r.Actions {
			fmt.Fprintf(w, "  %3d. %6.2f%%  %s %s\n", i+1, 100*a.Prob, a.Verb.Label, a.Noun.Label)
		}
	}
}

// writeCSVRows appends a video's video,rank,label,prob rows.
func writeCSVRows(w *csv.Writer, path string, r *classify.Result) {
	multi := len(r.Heads) > 1
	for _, h := range r.Heads {
		for i, p := range r.Top[h] {
			label := p.Label
			if multi {
				label = h + ":" + label
			}
			_ = w.Write([]string{path, strconv.Itoa(i + 1), label, strconv.FormatFloat(p.Prob, 'g', 6, 64)})
		}
	}
	for i, a := range r.Actions {
		_ = w.Write([]string{path, strconv.Itoa(i + 1), "action:" + a.Verb.Label + " " + a.Noun.Label, strconv.FormatFloat(a.Prob, 'g', 6, 64)})
	}
}
