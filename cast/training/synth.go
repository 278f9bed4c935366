package training

import (
	"fmt"
	"math/rand/v2"

	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/synth"
)

// SynthSource renders procedural clips (package synth) and preprocesses them exactly as the test pipeline
// does (OpenCV-exact resize of the short side to Size, crop, ImageNet normalisation) to T frames.
// Training clips (augment != nil) take a random frame inside each of the T segments and a random one of the
// three crops; evaluation clips take the segment midpoints and the centre crop, like the 1×1 fast mode.
type SynthSource struct {
	Seed    int64         // dataset seed; a held-out set uses a seed never used for training
	Options synth.Options // clip rendering (frames, size)
	Size    int           // model input size (img_size)
	T       int           // model frames (all_frames)
	Count   int           // distinct clips; 0 = unbounded
}

// Len implements Source.
func (s SynthSource) Len() int { return s.Count }

// Example implements Source.
func (s SynthSource) Example(index int, augment *rand.Rand) ([]float32, int, error) {
	frames, label := synth.Clip(s.Seed, index, s.Options)
	view, err := trainingView(len(frames), frames[0].Width, frames[0].Height, s.Size, s.T, augment)
	if err != nil {
		return nil, 0, err
	}
	byIndex := make(map[int]preprocess.Frame, len(view.FrameIndices))
	for _, i := range view.FrameIndices {
		byIndex[i] = frames[i]
	}
	out := make([]float32, preprocess.TensorLen(s.Size, s.T))
	if err := preprocess.ClipTensor(byIndex, view, s.Size, out); err != nil {
		return nil, 0, err
	}
	return out, label, nil
}

// trainingView picks the frames and crop of one example of a video of n frames of w×h pixels: T segments,
// a random frame in each and a random one of three crops when augment is set (the official training
// sampling, without its other augmentations), else the segment midpoints and the centre crop (the 1×1 test
// view).
func trainingView(n, w, h, size, T int, augment *rand.Rand) (preprocess.View, error) {
	if n < 1 {
		return preprocess.View{}, fmt.Errorf("video has no frames")
	}
	idx := make([]int, T)
	tick := float64(n) / float64(T)
	for x := range idx {
		off := tick / 2
		if augment != nil {
			off = augment.Float64() * tick
		}
		idx[x] = min(int(tick*float64(x)+off), n-1)
	}
	crops := 1
	if augment != nil {
		crops = 3
	}
	rw, rh := preprocess.ShortSideSize(w, h, size)
	offs, err := preprocess.CropOffsets(rw, rh, size, crops)
	if err != nil {
		return preprocess.View{}, err
	}
	o := offs[0]
	if augment != nil {
		o = offs[augment.IntN(len(offs))]
	}
	return preprocess.View{FrameIndices: idx, X0: o.X, Y0: o.Y}, nil
}
