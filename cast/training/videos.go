package training

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/video"
)

// LabelledVideo is one training or evaluation video and its class index.
type LabelledVideo struct {
	Path  string
	Label int
}

// VideoSource reads labelled video files (any format ffmpeg reads, or folders of frames) — a user's own
// clips, e.g. to fine-tune a converted official checkpoint with the parameter-efficient recipe. Each example
// decodes only the frames it needs.
type VideoSource struct {
	Videos []LabelledVideo
	Size   int // model input size (img_size)
	T      int // model frames (all_frames)

	mu    sync.Mutex
	infos map[string]video.Source
}

// Len implements Source.
func (s *VideoSource) Len() int { return len(s.Videos) }

// Example implements Source.
func (s *VideoSource) Example(index int, augment *rand.Rand) ([]float32, int, error) {
	if index < 0 || index >= len(s.Videos) {
		return nil, 0, fmt.Errorf("video index %d out of range", index)
	}
	v := s.Videos[index]
	src, err := s.open(v.Path)
	if err != nil {
		return nil, 0, err
	}
	info := src.Info()
	view, err := trainingView(info.Frames, info.Width, info.Height, s.Size, s.T, augment)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", v.Path, err)
	}
	frames, err := src.Frames(context.Background(), preprocess.NeededFrames([]preprocess.View{view}))
	if err != nil {
		return nil, 0, err
	}
	out := make([]float32, preprocess.TensorLen(s.Size, s.T))
	if err := preprocess.ClipTensor(frames, view, s.Size, out); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", v.Path, err)
	}
	return out, v.Label, nil
}

// open probes each video once.
func (s *VideoSource) open(path string) (video.Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if src, ok := s.infos[path]; ok {
		return src, nil
	}
	src, err := video.Open(context.Background(), path)
	if err != nil {
		return nil, err
	}
	if s.infos == nil {
		s.infos = map[string]video.Source{}
	}
	s.infos[path] = src
	return src, nil
}
