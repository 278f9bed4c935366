package preprocess

import (
	"fmt"
	"image"
)

// CropOffsets returns the top-left corners of the size x size spatial crops of a w x h (already resized)
// frame, as the official test branch computes them: the crops slide along the long side (the height when
// h >= w, so a square frame crops along the height), at int(k*(L-size)/(crops-1)) for k = 0..crops-1
// (float64, truncated: L=299 gives 0/37/75); with crops == 1 the single crop is centred at
// int((L-size)/2.0). The other axis starts at 0; after the official resize it is exactly size long (a
// longer one would be cut to its first size pixels).
func CropOffsets(w, h, size, crops int) ([]image.Point, error) {
	if size < 1 {
		return nil, fmt.Errorf("preprocess: crop size %d, need at least 1", size)
	}
	if crops < 1 {
		return nil, fmt.Errorf("preprocess: %d spatial crops, need at least 1", crops)
	}
	if w < size || h < size {
		return nil, fmt.Errorf("preprocess: %dx%d frame is smaller than the %dx%d crop", w, h, size, size)
	}
	long := max(w, h)
	pts := make([]image.Point, crops)
	for k := range pts {
		var start int
		if crops == 1 {
			start = int(float64(long-size) / 2.0)
		} else {
			step := float64(long-size) / float64(crops-1)
			start = int(float64(k) * step)
		}
		if h >= w {
			pts[k] = image.Point{X: 0, Y: start}
		} else {
			pts[k] = image.Point{X: start, Y: 0}
		}
	}
	return pts, nil
}
