package preprocess

import (
	"fmt"
	"math"
)

// ShortSideSize returns the size a w x h frame is resized to so that its short side becomes short, as the
// official get_resize_sizes computes it: the long side is int(short*long/short_side), truncated
// (320x240 -> 298x224, 180x320 -> 224x398). A square frame becomes short x short. If the short side
// already equals short the size is returned unchanged. Non-positive inputs give (0, 0).
func ShortSideSize(w, h, short int) (nw, nh int) {
	if w <= 0 || h <= 0 || short <= 0 {
		return 0, 0
	}
	// int(short*L/S) in Python float64 equals integer division: an exact quotient is exact in float64,
	// and a non-integer one is at least 1/S away from the next integer, far more than the rounding error.
	if w < h {
		return short, int(int64(short) * int64(h) / int64(w))
	}
	return int(int64(short) * int64(w) / int64(h)), short
}

// coefBits is OpenCV's INTER_LINEAR_COEF_BITS for 8-bit images.
const (
	coefBits  = 11
	coefScale = 1 << coefBits // 2048
)

// linearCoeffs computes OpenCV's fixed-point INTER_LINEAR source offsets and weights along one axis
// (src length S, dst length D), following resize.cpp: f = float32((d+0.5)*scale - 0.5) with
// scale = 1/(D/S), s = floor(f), w0 = rint((1-f)*2048), w1 = rint(f*2048). Horizontally (clamp=true)
// s < 0 and s >= S-1 become weights 2048/0 at the border pixel; vertically s and f are kept as computed.
func linearCoeffs(src, dst int, clamp bool) (ofs []int, w0, w1 []int32) {
	ofs = make([]int, dst)
	w0 = make([]int32, dst)
	w1 = make([]int32, dst)
	inv := float64(dst) / float64(src)
	scale := 1.0 / inv
	for d := 0; d < dst; d++ {
		// The conversions round each step separately, preventing a fused multiply-add.
		t := float64((float64(d) + 0.5) * scale)
		f := float32(t - 0.5)
		s := int(math.Floor(float64(f)))
		f = f - float32(s)
		if clamp {
			if s < 0 {
				s, f = 0, 0
			}
			if s >= src-1 {
				s, f = src-1, 0
			}
		}
		ofs[d] = s
		w0[d] = int32(math.RoundToEven(float64(float32(float32(1-f) * coefScale))))
		w1[d] = int32(math.RoundToEven(float64(float32(f * coefScale))))
	}
	return ofs, w0, w1
}

// Resize resizes an RGB24 frame to w x h exactly like OpenCV's cv2.resize(img, (w, h),
// interpolation=cv2.INTER_LINEAR) on uint8 data (OpenCV 4.x fixed-point path, 11-bit coefficients; see
// goldens/preprocess/README.md §3.2). Resizing to the same size returns a copy.
func Resize(f Frame, w, h int) (Frame, error) {
	if err := f.Validate(); err != nil {
		return Frame{}, fmt.Errorf("preprocess: resize: %w", err)
	}
	if w <= 0 || h <= 0 || w > maxDim || h > maxDim {
		return Frame{}, fmt.Errorf("preprocess: resize to invalid size %dx%d", w, h)
	}
	out := Frame{Width: w, Height: h, Pix: make([]byte, w*h*3)}
	if w == f.Width && h == f.Height {
		copy(out.Pix, f.Pix)
		return out, nil
	}
	sw, sh := f.Width, f.Height
	xofs, a0, a1 := linearCoeffs(sw, w, true)
	yofs, b0, b1 := linearCoeffs(sh, h, false)

	// Horizontal pass on demand, one source row at a time, cached: rows[r] holds T[x*3+c] >> 4
	// (the vertical pass only ever uses the row values shifted right by 4).
	rows := make(map[int][]int32, 2)
	hrow := func(r int) []int32 {
		if r < 0 {
			r = 0
		} else if r > sh-1 {
			r = sh - 1
		}
		if row, ok := rows[r]; ok {
			return row
		}
		if len(rows) >= 4 { // keep only a few rows: the vertical offsets are non-decreasing
			for k := range rows {
				if k < r-1 {
					delete(rows, k)
				}
			}
		}
		src := f.Pix[r*sw*3 : (r+1)*sw*3]
		row := make([]int32, w*3)
		for x := 0; x < w; x++ {
			sx := xofs[x]
			sx1 := min(sx+1, sw-1)
			p0, p1 := src[sx*3:sx*3+3], src[sx1*3:sx1*3+3]
			for c := 0; c < 3; c++ {
				row[x*3+c] = (int32(p0[c])*a0[x] + int32(p1[c])*a1[x]) >> 4
			}
		}
		rows[r] = row
		return row
	}
	for y := 0; y < h; y++ {
		r0, r1 := hrow(yofs[y]), hrow(yofs[y]+1)
		c0, c1 := b0[y], b1[y]
		dst := out.Pix[y*w*3 : (y+1)*w*3]
		for i := range dst {
			dst[i] = uint8(((c0*r0[i])>>16 + (c1*r1[i])>>16 + 2) >> 2)
		}
	}
	return out, nil
}
