package preprocess

import "fmt"

// DefaultSize is the official crop size and short-side size (the model's img_size) in pixels.
const DefaultSize = 224

// DefaultFrames is the official number of frames per clip (the model's num_frames, T).
const DefaultFrames = 16

// Frame is one decoded RGB24 image: Pix holds Width*Height*3 bytes, row-major, R,G,B per pixel.
type Frame struct {
	Width, Height int
	Pix           []byte
}

// Validate reports whether f has a positive size and exactly Width*Height*3 bytes of pixels.
func (f Frame) Validate() error {
	if f.Width <= 0 || f.Height <= 0 {
		return fmt.Errorf("preprocess: frame size %dx%d is empty", f.Width, f.Height)
	}
	if f.Width > maxDim || f.Height > maxDim {
		return fmt.Errorf("preprocess: frame size %dx%d too large (max %d per side)", f.Width, f.Height, maxDim)
	}
	if len(f.Pix) != f.Width*f.Height*3 {
		return fmt.Errorf("preprocess: %dx%d RGB24 frame needs %d bytes, has %d", f.Width, f.Height, f.Width*f.Height*3, len(f.Pix))
	}
	return nil
}

// maxDim bounds frame sides so that sizes and offsets never overflow.
const maxDim = 1 << 15

// FrameFromRGBA converts w*h RGBA pixels (4 bytes each, row-major, e.g. a browser canvas's ImageData) to
// an RGB24 Frame. Alpha is dropped: the colour bytes are kept as they are, not composited.
func FrameFromRGBA(w, h int, rgba []byte) (Frame, error) {
	if w <= 0 || h <= 0 || w > maxDim || h > maxDim {
		return Frame{}, fmt.Errorf("preprocess: RGBA image size %dx%d is invalid", w, h)
	}
	if len(rgba) != w*h*4 {
		return Frame{}, fmt.Errorf("preprocess: %dx%d RGBA image needs %d bytes, has %d", w, h, w*h*4, len(rgba))
	}
	pix := make([]byte, w*h*3)
	for i, j := 0, 0; i < len(rgba); i, j = i+4, j+3 {
		pix[j], pix[j+1], pix[j+2] = rgba[i], rgba[i+1], rgba[i+2]
	}
	return Frame{Width: w, Height: h, Pix: pix}, nil
}
