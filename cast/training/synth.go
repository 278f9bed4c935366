package training

import (
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
	n := len(frames)
	idx := make([]int, s.T)
	tick := float64(n) / float64(s.T)
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
	w, h := frames[0].Width, frames[0].Height
	rw, rh := preprocess.ShortSideSize(w, h, s.Size)
	offs, err := preprocess.CropOffsets(rw, rh, s.Size, crops)
	if err != nil {
		return nil, 0, err
	}
	o := offs[0]
	if augment != nil {
		o = offs[augment.IntN(len(offs))]
	}
	view := preprocess.View{FrameIndices: idx, X0: o.X, Y0: o.Y}
	byIndex := make(map[int]preprocess.Frame, len(idx))
	for _, i := range idx {
		byIndex[i] = frames[i]
	}
	out := make([]float32, preprocess.TensorLen(s.Size, s.T))
	if err := preprocess.ClipTensor(byIndex, view, s.Size, out); err != nil {
		return nil, 0, err
	}
	return out, label, nil
}
