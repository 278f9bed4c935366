package training

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
)

// CurvePoint is one log line of a training run: the moving averages of the training loss and accuracy at a
// step, and the held-out accuracy and loss where that line has them (NaN otherwise).
type CurvePoint struct {
	Step              int
	Loss, Acc         float64
	EvalAcc, EvalLoss float64
}

// ParseLog reads the progress lines Train writes ("step N/M  ~loss L  ~acc A … held-out acc E loss F").
// A resumed run appends to the same log; later lines for a step replace earlier ones (keeping the earlier
// moving averages when the later line has none).
func ParseLog(r io.Reader) ([]CurvePoint, error) {
	var pts []CurvePoint
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "step ") {
			continue
		}
		p := CurvePoint{EvalAcc: math.NaN(), EvalLoss: math.NaN()}
		var total int
		if _, err := fmt.Sscanf(line, "step %d/%d  ~loss %g  ~acc %g", &p.Step, &total, &p.Loss, &p.Acc); err != nil {
			continue
		}
		if _, rest, ok := strings.Cut(line, "held-out acc "); ok {
			fmt.Sscanf(rest, "%g loss %g", &p.EvalAcc, &p.EvalLoss)
		}
		for len(pts) > 0 && pts[len(pts)-1].Step >= p.Step {
			if last := pts[len(pts)-1]; last.Step == p.Step && math.IsNaN(p.Loss) {
				// A resumed run that had no step left to train logs its final line without moving averages.
				p.Loss, p.Acc = last.Loss, last.Acc
			}
			pts = pts[:len(pts)-1]
		}
		pts = append(pts, p)
	}
	return pts, sc.Err()
}

// PlotCurves draws the training curves as a PNG: training loss (moving average) and held-out loss against
// steps on the left, training accuracy (moving average) and held-out accuracy on the right.
func PlotCurves(w io.Writer, pts []CurvePoint) error {
	if len(pts) == 0 {
		return fmt.Errorf("no curve points")
	}
	const W, H = 1000, 420
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fillRect(img, 0, 0, W, H, color.RGBA{255, 255, 255, 255})
	maxStep := pts[len(pts)-1].Step
	maxLoss := 0.0
	for _, p := range pts {
		for _, v := range []float64{p.Loss, p.EvalLoss} {
			if finite(v) {
				maxLoss = math.Max(maxLoss, v)
			}
		}
	}
	maxLoss = max(math.Ceil(maxLoss*2)/2, 0.5)
	blue, orange := color.RGBA{31, 119, 180, 255}, color.RGBA{230, 110, 10, 255}
	panel := func(x0 int, title string, yMax float64, yTicks int, yFmt string, train func(CurvePoint) float64, eval func(CurvePoint) float64) {
		px0, py0, pw, ph := x0+60, 40, 400, 320
		grey := color.RGBA{225, 225, 225, 255}
		for i := 0; i <= yTicks; i++ {
			y := py0 + ph - i*ph/yTicks
			fillRect(img, px0, y, px0+pw, y+1, grey)
			drawText(img, x0+4, y-5, fmt.Sprintf(yFmt, yMax*float64(i)/float64(yTicks)), color.Black)
		}
		for i := 0; i <= 4; i++ {
			x := px0 + i*pw/4
			fillRect(img, x, py0, x+1, py0+ph, grey)
			drawText(img, x-10, py0+ph+8, fmt.Sprint(maxStep*i/4), color.Black)
		}
		fillRect(img, px0, py0+ph, px0+pw, py0+ph+1, color.Black)
		fillRect(img, px0, py0, px0+1, py0+ph, color.Black)
		drawText(img, px0+pw/2-20, py0+ph+24, "step", color.Black)
		drawText(img, px0, 12, title, color.Black)
		xy := func(step int, v float64) (int, int) {
			return px0 + int(float64(pw)*float64(step)/float64(max(maxStep, 1))), py0 + ph - int(float64(ph)*math.Min(v/yMax, 1))
		}
		// series draws the finite values of one curve as a line, with a marker on each point when markers is set.
		series := func(value func(CurvePoint) float64, c color.Color, markers bool) {
			var lx, ly int
			first := true
			for _, p := range pts {
				v := value(p)
				if !finite(v) {
					continue
				}
				x, y := xy(p.Step, v)
				if !first {
					drawLine(img, lx, ly, x, y, c)
				}
				if markers {
					fillRect(img, x-3, y-3, x+4, y+4, c)
				}
				lx, ly, first = x, y, false
			}
		}
		series(train, blue, false)
		series(eval, orange, true)
		fillRect(img, px0+pw-150, py0+8, px0+pw-138, py0+11, blue)
		drawText(img, px0+pw-132, py0+4, "train (moving avg)", color.Black)
		fillRect(img, px0+pw-150, py0+24, px0+pw-138, py0+27, orange)
		drawText(img, px0+pw-132, py0+20, "held-out", color.Black)
	}
	panel(0, "loss", maxLoss, 4, "%.2f", func(p CurvePoint) float64 { return p.Loss }, func(p CurvePoint) float64 { return p.EvalLoss })
	panel(W/2, "top-1 accuracy", 1, 4, "%.2f", func(p CurvePoint) float64 { return p.Acc }, func(p CurvePoint) float64 { return p.EvalAcc })
	return png.Encode(w, img)
}

// finite reports whether v can be plotted (a NaN or infinite value would send a line off the image).
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func fillRect(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			img.Set(x, y, c)
		}
	}
}

func drawLine(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	steps := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= steps; i++ {
		x := x0 + (x1-x0)*i/steps
		y := y0 + (y1-y0)*i/steps
		fillRect(img, x, y, x+2, y+2, c)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// glyphs is a 3×5 bitmap font for the characters the plot writes (rows top to bottom, 3 bits each).
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7}, '4': {5, 5, 7, 1, 1},
	'5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1}, '8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7},
	'.': {0, 0, 0, 0, 2}, '%': {5, 1, 2, 4, 5}, '-': {0, 0, 7, 0, 0}, '(': {1, 2, 2, 2, 1}, ')': {4, 2, 2, 2, 4},
	'/': {1, 1, 2, 4, 4}, '=': {0, 7, 0, 7, 0},
	'a': {0, 3, 5, 5, 3}, 'b': {4, 6, 5, 5, 6}, 'c': {0, 3, 4, 4, 3}, 'd': {1, 3, 5, 5, 3}, 'e': {0, 7, 7, 4, 3},
	'f': {3, 4, 6, 4, 4}, 'g': {3, 5, 3, 1, 6}, 'h': {4, 6, 5, 5, 5}, 'i': {2, 0, 2, 2, 2}, 'k': {4, 5, 6, 5, 5},
	'l': {2, 2, 2, 2, 2}, 'm': {0, 7, 7, 5, 5}, 'n': {0, 6, 5, 5, 5}, 'o': {0, 2, 5, 5, 2}, 'p': {0, 6, 5, 6, 4},
	'r': {0, 3, 4, 4, 4}, 's': {0, 3, 6, 1, 6}, 't': {2, 7, 2, 2, 1}, 'u': {0, 5, 5, 5, 3}, 'v': {0, 5, 5, 5, 2},
	'w': {0, 5, 5, 7, 7}, 'x': {0, 5, 2, 5, 0}, 'y': {0, 5, 3, 1, 6},
}

func drawText(img *image.RGBA, x, y int, s string, c color.Color) {
	const scale = 2
	for _, r := range s {
		g := glyphs[r]
		for row := 0; row < 5; row++ {
			for col := 0; col < 3; col++ {
				if g[row]&(4>>col) != 0 {
					fillRect(img, x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale, c)
				}
			}
		}
		x += 4 * scale
	}
}
