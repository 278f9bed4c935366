// Command nativeref classifies raw RGBA frames natively (pure Go) and prints the classify.Result JSON
// with every class's probability ("probs"), the same shape castgo.classify returns with {probs: true}.
// The Node tests of the WASM module (wasm/test) use it as the native reference.
//
//	nativeref --model M.safetensors --frames FRAMES.rgba --num-frames N --width W --height H [--views 1x1]
//
// FRAMES.rgba holds the W×H×4 bytes of each frame castgo.planViews lists in neededFrames, in that order.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nativeref:", err)
		os.Exit(1)
	}
}

func run() error {
	model := flag.String("model", "", "model file")
	framesPath := flag.String("frames", "", "raw RGBA frames aligned with neededFrames")
	numFrames := flag.Int("num-frames", 0, "frames in the video")
	width := flag.Int("width", 0, "frame width")
	height := flag.Int("height", 0, "frame height")
	views := flag.String("views", "", "CLIPSxCROPS (default: the model's protocol)")
	top := flag.Int("top", 5, "predictions per head")
	flag.Parse()
	f, err := modelfile.Load(*model)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*framesPath)
	if err != nil {
		return fmt.Errorf("reading frames: %w", err)
	}
	b, _, err := infer.NewBackend("go")
	if err != nil {
		return err
	}
	clf, err := classify.New(b, f)
	if err != nil {
		return err
	}
	size := *width * *height * 4
	video := classify.Video{NumFrames: *numFrames, Width: *width, Height: *height,
		Frames: func(indices []int) (map[int]preprocess.Frame, error) {
			if len(raw) != len(indices)*size {
				return nil, fmt.Errorf("frames file has %d bytes, want %d frames × %d", len(raw), len(indices), size)
			}
			out := map[int]preprocess.Frame{}
			for i, idx := range indices {
				fr, err := preprocess.FrameFromRGBA(*width, *height, raw[i*size:(i+1)*size])
				if err != nil {
					return nil, err
				}
				out[idx] = fr
			}
			return out, nil
		}}
	res, err := clf.Classify(video, classify.Options{Views: *views, Top: *top})
	if err != nil {
		return err
	}
	probs := map[string][]float64{}
	for _, h := range res.Heads {
		probs[h] = res.Probs(h)
	}
	return json.NewEncoder(os.Stdout).Encode(struct {
		*classify.Result
		Probs map[string][]float64 `json:"probs"`
	}{res, probs})
}
