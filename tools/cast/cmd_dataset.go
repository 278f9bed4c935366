package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/castvideo/castgo/cast/synth"
	"github.com/spf13/cobra"
)

func init() {
	var (
		seed                     int64
		clips, frames, size, fps int
		out                      string
		boxes                    bool
	)
	cmd := &cobra.Command{
		Use:   "dataset --seed N --clips K --out DIR [--frames F --size S]",
		Short: "Write a procedural action-video dataset (H.264 MP4s + annotations.csv) for cast eval",
		Long: `Dataset renders clips 0…K-1 of the procedural dataset of package synth with the given seed (16 classes:
red/blue circle/triangle moving left/right, growing or shrinking, over textured backgrounds with distractors)
and encodes them with ffmpeg as DIR/clip_000000.mp4, …, with DIR/annotations.csv ("clip_000000.mp4 LABEL" lines,
the SSv2 list format) and DIR/classes.txt. The clips depend only on the seed and options, so
` + "`cast eval --annotations DIR/annotations.csv --videos DIR`" + ` measures any model on the same data. The default
model was trained on other seeds (see cast train --data-seed/--eval-seed).`,
		Example: `  cast dataset --seed 7 --clips 64 --out synth-test
  cast dataset --seed 8 --clips 160 --frames 32 --size 96 --out synth-big
  cast dataset --seed 31337 --clips 200 --boxes --out synth-boxes   # + boxes.json for cast explain --pointing`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case out == "":
				return errors.New("--out is required")
			case clips < 1:
				return fmt.Errorf("--clips must be at least 1, got %d", clips)
			case frames < 2:
				return fmt.Errorf("--frames must be at least 2, got %d", frames)
			case size < 2 || size%2 != 0:
				return fmt.Errorf("--size must be even (an H.264 yuv420p requirement) and positive, got %d", size)
			case fps < 1:
				return fmt.Errorf("--fps must be positive, got %d", fps)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			stderr := cmd.ErrOrStderr()
			bar := newProgress(stderr, clips, "encoding")
			progress := func(done, total int) {
				bar.Set(done)
				if !bar.Active() && (done%50 == 0 || done == total) {
					fmt.Fprintf(stderr, "dataset: %d/%d clips\n", done, total)
				}
			}
			opt := synth.Options{Frames: frames, Width: size, Height: size, FPS: fps}
			err := synth.WriteDataset(ctx, out, seed, clips, opt, progress)
			bar.Finish()
			if err != nil {
				return fmt.Errorf("writing the dataset to %s: %w", out, err)
			}
			if boxes {
				if err := synth.WriteBoxes(out, seed, clips, opt); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d clips (%d frames, %dx%d, seed %d) to %s; labels in %s, class names in %s\n",
				clips, frames, size, size, seed, out, filepath.Join(out, "annotations.csv"), filepath.Join(out, "classes.txt"))
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&seed, "seed", 1, "dataset seed (clips are a pure function of seed and index)")
	f.IntVar(&clips, "clips", 64, "number of clips (any 16 consecutive clips hold one of each class)")
	f.StringVar(&out, "out", "", "output folder (created if needed; required)")
	f.IntVar(&frames, "frames", synth.DefaultFrames, "frames per clip")
	f.IntVar(&size, "size", synth.DefaultWidth, "frame width and height in pixels (even)")
	f.IntVar(&fps, "fps", synth.DefaultFPS, "frame rate of the encoded videos (does not change the pixels)")
	f.BoolVar(&boxes, "boxes", false, "also write DIR/boxes.json: the moving shape's box [x0,y0,x1,y1] in pixels, per clip and frame")
	rootCmd.AddCommand(cmd)
}
