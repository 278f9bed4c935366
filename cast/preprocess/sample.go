package preprocess

import "fmt"

// ClipIndices returns, for each temporal clip of protocol p, the T source frame indices (0-based) that the
// official test loader reads from a video of numFrames frames (decord's len, i.e. the packet count).
//
// Segment (SSv2/EPIC, dataset/ssv2.py): the video is cut into T segments of tick = numFrames/T frames
// (float64); clip 0 takes the segment starts int(tick*x) and clip 1 the midpoints int(tick/2 + tick*x),
// x = 0..T-1. This equals the official sort-then-buffer[chunk::2] for every numFrames. Clips must be 1 or 2;
// with Clips == 1 the midpoints clip is used. That is a choice of this port: the official code has no
// single-clip SSv2 test mode (its buffer[0::2] would give the starts), and the midpoints are the usual
// single-view TSN sample, centred in each segment.
//
// Dense (K400, dataset/kinetics.py): all = range(0, numFrames, SamplingRate), padded with its last index
// up to T entries; with L = len(all), step = max((L-T)/(Clips-1), 0) (float64) and clip k is
// all[int(k*step) : int(k*step)+T]. With Clips == 1 the single clip starts at 0 (the official code would
// divide by zero).
func ClipIndices(p Protocol, numFrames, T int) ([][]int, error) {
	if numFrames < 1 {
		return nil, fmt.Errorf("preprocess: video has %d frames, need at least 1", numFrames)
	}
	if T < 1 {
		return nil, fmt.Errorf("preprocess: clip length T=%d, need at least 1", T)
	}
	if p.Clips < 1 {
		return nil, fmt.Errorf("preprocess: protocol has %d clips, need at least 1", p.Clips)
	}
	switch p.Sampling {
	case Segment:
		if p.Clips > 2 {
			return nil, fmt.Errorf("preprocess: segment sampling supports 1 or 2 clips, not %d", p.Clips)
		}
		tick := float64(numFrames) / float64(T)
		starts := make([]int, T)
		mids := make([]int, T)
		for x := 0; x < T; x++ {
			// Explicit conversions keep each product rounded on its own (no fused multiply-add).
			starts[x] = int(float64(tick * float64(x)))
			mids[x] = int(tick/2.0 + float64(tick*float64(x)))
		}
		if p.Clips == 1 {
			return [][]int{mids}, nil
		}
		return [][]int{starts, mids}, nil
	case Dense:
		if p.SamplingRate < 1 {
			return nil, fmt.Errorf("preprocess: dense sampling rate %d, need at least 1", p.SamplingRate)
		}
		var all []int
		for i := 0; i < numFrames; i += p.SamplingRate {
			all = append(all, i)
		}
		for len(all) < T {
			all = append(all, all[len(all)-1])
		}
		L := len(all)
		step := 0.0
		if p.Clips > 1 {
			step = max(float64(L-T)/float64(p.Clips-1), 0)
		}
		clips := make([][]int, p.Clips)
		for k := range clips {
			start := int(float64(k) * step)
			clips[k] = append([]int(nil), all[start:start+T]...)
		}
		return clips, nil
	}
	return nil, fmt.Errorf("preprocess: unknown sampling %q", p.Sampling)
}
