package explain

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/castvideo/castgo/cast/preprocess"
)

// Sheet draws one view's maps as an image: a row of the view's frames as the model's crop saw them, then
// one row per method with each frame's map over it (a frame the method has no map of stays grey). Each
// map's cells are coloured by their score from transparent (0 or less) to opaque yellow-white (the
// highest score of that method in this view), so rows compare frames, not methods. scale enlarges every
// pixel (nearest neighbour). frames must hold the view's frame indices.
func Sheet(r *Result, view int, methods []string, frames map[int]preprocess.Frame, scale int) (*image.RGBA, error) {
	var info *ViewInfo
	for i := range r.Views {
		if r.Views[i].View == view {
			info = &r.Views[i]
		}
	}
	if info == nil {
		return nil, fmt.Errorf("explain: view %d was not explained", view)
	}
	scale = max(scale, 1)
	var first Map
	for _, m := range methods {
		for _, mp := range r.Methods[m] {
			if mp.View == view {
				first = mp
				break
			}
		}
	}
	if first.Grid == nil {
		return nil, fmt.Errorf("explain: no maps of view %d", view)
	}
	x0, y0 := int(math.Round(first.Rect[0])), int(math.Round(first.Rect[1]))
	cw, ch := int(math.Round(first.Rect[2]))-x0, int(math.Round(first.Rect[3]))-y0
	cols, rows := len(info.Frames), 1+len(methods)
	img := image.NewRGBA(image.Rect(0, 0, cols*cw*scale, rows*ch*scale))
	for k, idx := range info.Frames {
		f, ok := frames[idx]
		if !ok {
			return nil, fmt.Errorf("explain: frame %d of view %d is missing", idx, view)
		}
		drawCell(img, f, nil, first.Rect, 0, k, 0, x0, y0, cw, ch, scale)
		for row, m := range methods {
			var maps []Map
			hi := 0.0
			for _, mp := range r.Methods[m] {
				if mp.View == view {
					maps = append(maps, mp)
					for _, g := range mp.Grid {
						for _, v := range g {
							hi = math.Max(hi, v)
						}
					}
				}
			}
			var grid [][]float64
			for _, mp := range maps {
				if mp.Pos == k {
					grid = mp.Grid
				}
			}
			if grid == nil {
				fillGrey(img, k, row+1, cw, ch, scale)
				continue
			}
			drawCell(img, f, grid, first.Rect, hi, k, row+1, x0, y0, cw, ch, scale)
		}
	}
	return img, nil
}

// drawCell draws the crop (x0, y0, cw×ch) of frame f at column col, row row of the sheet, with grid (over
// rect, scores up to hi) blended over it when grid is not nil.
func drawCell(img *image.RGBA, f preprocess.Frame, grid [][]float64, rect [4]float64, hi float64, col, row, x0, y0, cw, ch, scale int) {
	gr := len(grid)
	for y := range ch {
		for x := range cw {
			sx, sy := min(max(x0+x, 0), f.Width-1), min(max(y0+y, 0), f.Height-1)
			p := f.Pix[3*(sy*f.Width+sx):]
			c := color.RGBA{p[0], p[1], p[2], 255}
			if grid != nil && hi > 0 {
				gc := min(gr-1, int(float64(x)/float64(cw)*float64(gr)))
				gy := min(gr-1, int(float64(y)/float64(ch)*float64(gr)))
				v := math.Max(0, grid[gy][gc]/hi)
				c = blend(c, heat(v), 0.15+0.7*v)
			}
			for dy := range scale {
				for dx := range scale {
					img.SetRGBA((col*cw+x)*scale+dx, (row*ch+y)*scale+dy, c)
				}
			}
		}
	}
}

func fillGrey(img *image.RGBA, col, row, cw, ch, scale int) {
	for y := range ch * scale {
		for x := range cw * scale {
			img.SetRGBA(col*cw*scale+x, row*ch*scale+y, color.RGBA{64, 64, 64, 255})
		}
	}
}

// heat maps v in [0, 1] to a black-red-yellow-white ramp.
func heat(v float64) color.RGBA {
	c := func(x float64) uint8 { return uint8(math.Round(255 * math.Min(1, math.Max(0, x)))) }
	return color.RGBA{c(3 * v), c(3*v - 1), c(3*v - 2), 255}
}

func blend(a, b color.RGBA, t float64) color.RGBA {
	m := func(x, y uint8) uint8 { return uint8(math.Round(float64(x)*(1-t) + float64(y)*t)) }
	return color.RGBA{m(a.R, b.R), m(a.G, b.G), m(a.B, b.B), 255}
}
