//go:build !js

package synth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/castvideo/castgo/cast/preprocess"
)

// WriteDataset renders clips 0 … clips-1 of the dataset with the given seed and writes them to dir
// (created if needed) as dir/clip_000000.mp4, dir/clip_000001.mp4, … (H.264, yuv420p, playable in
// browsers), together with dir/annotations.csv, one "clip_000000.mp4 LABEL" line per clip (the official
// SSv2 'video label' list, space-separated, no header; see ParseAnnotations), and dir/classes.txt, one
// class name per line in label order. Encoding runs ffmpeg from PATH, one clip at a time; progress, if
// not nil, is called after each clip. opt.Width and opt.Height must be even (a yuv420p requirement).
// Cancelling ctx stops the run between or during clips; every file is written under a temporary name
// and renamed when complete, so no partial clip is left under a final name.
func WriteDataset(ctx context.Context, dir string, seed int64, clips int, opt Options, progress func(done, total int)) error {
	opt = opt.withDefaults()
	if clips < 0 {
		return fmt.Errorf("synth: negative clip count %d", clips)
	}
	if opt.Width%2 != 0 || opt.Height%2 != 0 {
		return fmt.Errorf("synth: frame size %dx%d must be even for H.264 yuv420p", opt.Width, opt.Height)
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fmt.Errorf("synth: ffmpeg is required to encode the clips but was not found on PATH: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: creating dataset directory: %w", err)
	}
	var ann strings.Builder
	for i := range clips {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("synth: writing dataset: %w", err)
		}
		frames, label := Clip(seed, i, opt)
		name := ClipName(i)
		if err := encode(ctx, ffmpeg, filepath.Join(dir, name), frames, opt); err != nil {
			return err
		}
		fmt.Fprintf(&ann, "%s %d\n", name, label)
		if progress != nil {
			progress(i+1, clips)
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, "classes.txt"), []byte(strings.Join(Classes, "\n")+"\n")); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "annotations.csv"), []byte(ann.String()))
}

// encode pipes frames as raw RGB24 into ffmpeg, writing an H.264 MP4 to path via a temporary file.
func encode(ctx context.Context, ffmpeg, path string, frames []preprocess.Frame, opt Options) error {
	raw := make([]byte, 0, len(frames)*3*opt.Width*opt.Height)
	for _, f := range frames {
		raw = append(raw, f.Pix...)
	}
	tmp := path + ".tmp"
	cmd := exec.CommandContext(ctx, ffmpeg,
		"-v", "error", "-y",
		"-f", "rawvideo", "-pix_fmt", "rgb24",
		"-s", fmt.Sprintf("%dx%d", opt.Width, opt.Height),
		"-r", strconv.Itoa(opt.FPS),
		"-i", "-",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-crf", "18",
		"-g", "1000", "-bf", "0", "-movflags", "+faststart",
		"-f", "mp4", tmp)
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("synth: encoding %s: %w", filepath.Base(path), ctxErr)
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return fmt.Errorf("synth: encoding %s with ffmpeg: %w", filepath.Base(path), err)
		}
		return fmt.Errorf("synth: encoding %s with ffmpeg: %w: %s", filepath.Base(path), err, msg)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("synth: encoding %s: %w", filepath.Base(path), err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same directory and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("synth: writing %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("synth: writing %s: %w", filepath.Base(path), err), os.Remove(tmp))
	}
	return nil
}
