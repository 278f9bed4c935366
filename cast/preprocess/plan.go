package preprocess

import (
	"fmt"
	"slices"
)

// View is one test view of a video: a temporal clip and a spatial crop of it.
type View struct {
	Clip, Crop   int   // clip (chunk_nb) and crop (split_nb) numbers
	FrameIndices []int // the T source frame indices of the clip
	X0, Y0       int   // top-left corner of the crop in the resized frame
}

// Plan lists the views of protocol p for a video of numFrames frames of srcW x srcH pixels, for a model
// that reads T frames of size x size (official: T=16, size=224). The order is the official clip-major
// dataset order: (clip 0, crop 0), (clip 0, crop 1), ..., (clip 1, crop 0), ... The crop offsets refer to
// the frame after its short side is resized to size (see ShortSideSize).
func Plan(p Protocol, numFrames, srcW, srcH, size, T int) ([]View, error) {
	if srcW <= 0 || srcH <= 0 || srcW > maxDim || srcH > maxDim {
		return nil, fmt.Errorf("preprocess: invalid video size %dx%d", srcW, srcH)
	}
	if size < 1 || size > maxDim {
		return nil, fmt.Errorf("preprocess: invalid crop size %d", size)
	}
	clips, err := ClipIndices(p, numFrames, T)
	if err != nil {
		return nil, err
	}
	rw, rh := ShortSideSize(srcW, srcH, size)
	offs, err := CropOffsets(rw, rh, size, p.Crops)
	if err != nil {
		return nil, err
	}
	views := make([]View, 0, len(clips)*len(offs))
	for ci, idx := range clips {
		for k, o := range offs {
			views = append(views, View{Clip: ci, Crop: k, FrameIndices: slices.Clone(idx), X0: o.X, Y0: o.Y})
		}
	}
	return views, nil
}

// NeededFrames returns the sorted, de-duplicated source frame indices that views read, so a decoder can
// keep only those frames.
func NeededFrames(views []View) []int {
	var out []int
	for _, v := range views {
		out = append(out, v.FrameIndices...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Prepared holds the needed source frames already resized (short side to size), so that every view's
// clip is a crop of frames resized once.
type Prepared struct {
	size    int
	w, h    int // resized frame size
	resized map[int]Frame
}

// Prepare resizes, once each, the frames that views need (short side to size, OpenCV-exact) from frames,
// which maps source frame index to frame. All needed frames must be present and of one size, and every
// view's crop must fit the resized frame.
func Prepare(frames map[int]Frame, views []View, size int) (*Prepared, error) {
	if size < 1 || size > maxDim {
		return nil, fmt.Errorf("preprocess: invalid crop size %d", size)
	}
	if len(views) == 0 {
		return nil, fmt.Errorf("preprocess: no views to prepare")
	}
	need := NeededFrames(views)
	p := &Prepared{size: size, resized: make(map[int]Frame, len(need))}
	var sw, sh int
	for i, idx := range need {
		f, ok := frames[idx]
		if !ok {
			return nil, fmt.Errorf("preprocess: frame %d is needed but missing (have %d frames)", idx, len(frames))
		}
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("preprocess: frame %d: %w", idx, err)
		}
		if i == 0 {
			sw, sh = f.Width, f.Height
			p.w, p.h = ShortSideSize(sw, sh, size)
		} else if f.Width != sw || f.Height != sh {
			return nil, fmt.Errorf("preprocess: frame %d is %dx%d but frame %d is %dx%d", idx, f.Width, f.Height, need[0], sw, sh)
		}
		r, err := Resize(f, p.w, p.h)
		if err != nil {
			return nil, fmt.Errorf("preprocess: frame %d: %w", idx, err)
		}
		p.resized[idx] = r
	}
	for _, v := range views {
		if err := p.checkView(v); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ResizedSize returns the size of the resized frames.
func (p *Prepared) ResizedSize() (w, h int) { return p.w, p.h }

// Frame returns the resized frame of source index idx, if it was prepared.
func (p *Prepared) Frame(idx int) (Frame, bool) {
	f, ok := p.resized[idx]
	return f, ok
}

func (p *Prepared) checkView(v View) error {
	if len(v.FrameIndices) == 0 {
		return fmt.Errorf("preprocess: view (clip %d, crop %d) has no frames", v.Clip, v.Crop)
	}
	if v.X0 < 0 || v.Y0 < 0 || v.X0+p.size > p.w || v.Y0+p.size > p.h {
		return fmt.Errorf("preprocess: view (clip %d, crop %d): %dx%d crop at (%d,%d) does not fit the %dx%d resized frame",
			v.Clip, v.Crop, p.size, p.size, v.X0, v.Y0, p.w, p.h)
	}
	for _, idx := range v.FrameIndices {
		if _, ok := p.resized[idx]; !ok {
			return fmt.Errorf("preprocess: view (clip %d, crop %d) needs frame %d, which was not prepared", v.Clip, v.Crop, idx)
		}
	}
	return nil
}

// TensorLen returns the number of float32 values in one view's [3, T, size, size] tensor.
func TensorLen(size, T int) int { return 3 * T * size * size }

// ClipU8 writes view v as uint8 [T, size, size, 3] (THWC, after resize and crop, before normalisation)
// into dst, which must hold T*size*size*3 bytes.
func (p *Prepared) ClipU8(v View, dst []byte) error {
	if err := p.checkView(v); err != nil {
		return err
	}
	s, T := p.size, len(v.FrameIndices)
	if len(dst) != T*s*s*3 {
		return fmt.Errorf("preprocess: uint8 clip buffer has %d bytes, need %d", len(dst), T*s*s*3)
	}
	for t, idx := range v.FrameIndices {
		f := p.resized[idx]
		for y := 0; y < s; y++ {
			src := f.Pix[((v.Y0+y)*f.Width+v.X0)*3:]
			copy(dst[(t*s+y)*s*3:(t*s+y+1)*s*3], src[:s*3])
		}
	}
	return nil
}

// ClipTensor writes view v as the normalised float32 model input [3, T, size, size] (C, T, H, W; RGB)
// into dst, which must hold TensorLen(size, T) values.
func (p *Prepared) ClipTensor(v View, dst []float32) error {
	if err := p.checkView(v); err != nil {
		return err
	}
	s, T := p.size, len(v.FrameIndices)
	if len(dst) != TensorLen(s, T) {
		return fmt.Errorf("preprocess: tensor buffer has %d values, need %d for [3,%d,%d,%d]", len(dst), TensorLen(s, T), T, s, s)
	}
	plane := T * s * s
	for t, idx := range v.FrameIndices {
		f := p.resized[idx]
		for y := 0; y < s; y++ {
			src := f.Pix[((v.Y0+y)*f.Width+v.X0)*3:]
			o := (t*s + y) * s
			r := dst[o : o+s]
			g := dst[plane+o : plane+o+s]
			b := dst[2*plane+o : 2*plane+o+s]
			for x := 0; x < s; x++ {
				r[x] = normLUT[0][src[3*x]]
				g[x] = normLUT[1][src[3*x+1]]
				b[x] = normLUT[2][src[3*x+2]]
			}
		}
	}
	return nil
}

// Tensors returns the input batch for views, float32 [len(views), 3, T, size, size] in C order, where T is
// the clip length of the views (all views must have the same).
func (p *Prepared) Tensors(views []View) ([]float32, error) {
	if len(views) == 0 {
		return nil, fmt.Errorf("preprocess: no views")
	}
	T := len(views[0].FrameIndices)
	n := TensorLen(p.size, T)
	out := make([]float32, len(views)*n)
	for i, v := range views {
		if len(v.FrameIndices) != T {
			return nil, fmt.Errorf("preprocess: view %d has %d frames, view 0 has %d", i, len(v.FrameIndices), T)
		}
		if err := p.ClipTensor(v, out[i*n:(i+1)*n]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ClipTensor is the one-view convenience form of Prepare + Prepared.ClipTensor: it resizes the frames of
// v (short side to size) and writes the normalised [3, T, size, size] tensor into dst. To produce several
// views of one video, use Prepare once instead, so each frame is resized only once.
func ClipTensor(frames map[int]Frame, v View, size int, dst []float32) error {
	p, err := Prepare(frames, []View{v}, size)
	if err != nil {
		return err
	}
	return p.ClipTensor(v, dst)
}
