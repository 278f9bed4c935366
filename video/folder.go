package video

import (
	"context"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/castvideo/castgo/cast/preprocess"
)

// folderSource is a folder of frame images, one frame per file in file-name order.
type folderSource struct {
	dir   string
	files []string // full paths, sorted by name
	info  Info
}

// isImageName reports whether name has a supported image extension.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

func openFolder(dir string) (*folderSource, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("video: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && isImageName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("video: folder %s has no .png, .jpg or .jpeg images", dir)
	}
	slices.Sort(names)
	s := &folderSource{dir: dir, info: Info{Frames: len(names), Codec: "images"}}
	for i, n := range names {
		p := filepath.Join(dir, n)
		s.files = append(s.files, p)
		w, h, err := imageSize(p)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			s.info.Width, s.info.Height = w, h
		} else if w != s.info.Width || h != s.info.Height {
			return nil, fmt.Errorf("video: image %s is %dx%d but %s is %dx%d; all frames must have one size",
				n, w, h, names[0], s.info.Width, s.info.Height)
		}
	}
	return s, nil
}

// imageSize reads an image header.
func imageSize(path string) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("video: %w", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("video: reading image %s: %w", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, fmt.Errorf("video: image %s has empty size %dx%d", path, cfg.Width, cfg.Height)
	}
	return cfg.Width, cfg.Height, nil
}

func (s *folderSource) Info() Info { return s.info }

func (s *folderSource) Frames(ctx context.Context, keep []int) (map[int]preprocess.Frame, error) {
	want, err := checkKeep(keep, s.info.Frames)
	if err != nil {
		return nil, fmt.Errorf("video: folder %s: %w", s.dir, err)
	}
	out := make(map[int]preprocess.Frame, len(want))
	for _, i := range want {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("video: reading folder %s: %w", s.dir, err)
		}
		f, err := readImage(s.files[i])
		if err != nil {
			return nil, err
		}
		if f.Width != s.info.Width || f.Height != s.info.Height {
			return nil, fmt.Errorf("video: image %s decoded as %dx%d, expected %dx%d", s.files[i], f.Width, f.Height, s.info.Width, s.info.Height)
		}
		out[i] = f
	}
	return out, nil
}

func readImage(path string) (preprocess.Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return preprocess.Frame{}, fmt.Errorf("video: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return preprocess.Frame{}, fmt.Errorf("video: decoding image %s: %w", path, err)
	}
	return ImageToFrame(img), nil
}

// ImageToFrame converts an image to a packed RGB24 frame. Transparency is dropped: the colour of a
// non-premultiplied pixel is kept as it is (like OpenCV's imread), not composited onto a background.
// JPEG colour conversion follows Go's image/jpeg and may differ by a unit from libjpeg's.
func ImageToFrame(img image.Image) preprocess.Frame {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	pix := make([]byte, w*h*3)
	switch m := img.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride:]
			for x := 0; x < w; x++ {
				copy(pix[(y*w+x)*3:(y*w+x)*3+3], row[x*4:x*4+3])
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride:]
			for x := 0; x < w; x++ {
				r, g, bb, a := row[x*4], row[x*4+1], row[x*4+2], row[x*4+3]
				if a != 0 && a != 255 { // un-premultiply
					r, g, bb = unpremul(r, a), unpremul(g, a), unpremul(bb, a)
				}
				o := (y*w + x) * 3
				pix[o], pix[o+1], pix[o+2] = r, g, bb
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride:]
			for x := 0; x < w; x++ {
				o := (y*w + x) * 3
				pix[o], pix[o+1], pix[o+2] = row[x], row[x], row[x]
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				o := (y*w + x) * 3
				pix[o], pix[o+1], pix[o+2] = r, g, bb
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				o := (y*w + x) * 3
				pix[o], pix[o+1], pix[o+2] = c.R, c.G, c.B
			}
		}
	}
	return preprocess.Frame{Width: w, Height: h, Pix: pix}
}

func unpremul(c, a uint8) uint8 {
	return uint8(min(255, (uint32(c)*255+uint32(a)/2)/uint32(a)))
}
