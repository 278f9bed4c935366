package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/castvideo/castgo/cast/synth"
	"github.com/spf13/cobra"
)

// datasetOptions are the flags of `cast dataset`.
type datasetOptions struct {
	streams
	seed                     int64
	clips, frames, size, fps int
	dir                      string // --out
	boxes                    bool
}

// newDatasetCmd builds `cast dataset`.
func newDatasetCmd() *cobra.Command {
	var o datasetOptions
	cmd := &cobra.Command{
		Use:   "dataset --seed N --clips K --out DIR [--frames F --size S]",
		Short: "Write a procedural action-video dataset (H.264 MP4s + annotations.csv) for cast eval",
		Long: `Dataset renders clips 0…K-1 of the procedural dataset of package synth with the given seed (16 classes:
red/blue circle/triangle moving left/right, growing or shrinking, over textured backgrounds with distractors)
and encodes them with ffmpeg as DIR/clip_000000.mp4, …, with DIR/annotations.csv ("clip_000000.mp4 LABEL" lines,
the SSv2 list format) and DIR/classes.txt. The clips depend only on the seed and options, so
` + "`cast eval --annotations DIR/annotations.csv --videos DIR`" + ` measures any model on the same data. The default
model was trained on seed 1000 and checked on seed 9000 (see cast train --data-seed/--eval-seed).`,
		Example: `  cast dataset --seed 7 --clips 16 --out synth-test
  cast dataset --seed 8 --clips 4 --frames 32 --size 96 --out synth-big
  cast dataset --seed 31337 --clips 4 --boxes --out synth-boxes   # + boxes.json for cast explain --pointing`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.streams = streamsOf(cmd)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runDataset(ctx, o)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&o.seed, "seed", 1, "dataset seed (clips are a pure function of seed and index)")
	f.IntVar(&o.clips, "clips", 64, "number of clips (any 16 consecutive clips hold one of each class)")
	f.StringVar(&o.dir, "out", "", "output folder (created if needed; required)")
	f.IntVar(&o.frames, "frames", synth.DefaultFrames, "frames per clip")
	f.IntVar(&o.size, "size", synth.DefaultWidth, "frame width and height in pixels (even)")
	f.IntVar(&o.fps, "fps", synth.DefaultFPS, "frame rate of the encoded videos (does not change the pixels)")
	f.BoolVar(&o.boxes, "boxes", false, "also write DIR/boxes.json: the moving shape's box [x0,y0,x1,y1] in pixels, per clip and frame")
	return cmd
}

// runDataset renders and encodes the clips of o.
func runDataset(ctx context.Context, o datasetOptions) error {
	switch {
	case o.dir == "":
		return errors.New("--out is required")
	case o.clips < 1:
		return fmt.Errorf("--clips must be at least 1, got %d", o.clips)
	case o.frames < 2:
		return fmt.Errorf("--frames must be at least 2, got %d", o.frames)
	case o.size < 2 || o.size%2 != 0:
		return fmt.Errorf("--size must be even (an H.264 yuv420p requirement) and positive, got %d", o.size)
	case o.fps < 1:
		return fmt.Errorf("--fps must be positive, got %d", o.fps)
	}
	stderr := o.stderr
	bar := newProgress(stderr, o.clips, "encoding")
	progress := func(done, total int) {
		bar.Set(done)
		if !bar.Active() && (done%50 == 0 || done == total) {
			fmt.Fprintf(stderr, "dataset: %d/%d clips\n", done, total)
		}
	}
	opt := synth.Options{Frames: o.frames, Width: o.size, Height: o.size, FPS: o.fps}
	err := synth.WriteDataset(ctx, o.dir, o.seed, o.clips, opt, progress)
	bar.Finish()
	if err != nil {
		return fmt.Errorf("writing the dataset to %s: %w", o.dir, err)
	}
	if o.boxes {
		if err := synth.WriteBoxes(o.dir, o.seed, o.clips, opt); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.stdout, "wrote %d clips (%d frames, %dx%d, seed %d) to %s; labels in %s, class names in %s\n",
		o.clips, o.frames, o.size, o.size, o.seed, o.dir, filepath.Join(o.dir, "annotations.csv"), filepath.Join(o.dir, "classes.txt"))
	return nil
}
