// Package synth generates a deterministic, procedural action-video dataset on which CAST's two experts
// have to cooperate.
//
// Every clip shows one target object over a varied static background (a smooth colour gradient, faint
// blobs and a noise texture), sometimes with a smaller distractor object of another shape and colour that
// drifts in a random direction. A class is a pair (what, how):
//
//   - what: the target's appearance, a shape (circle or triangle) in a colour (red or blue);
//   - how: the target's motion over the clip, moving left, moving right, growing (approaching) or
//     shrinking (receding).
//
// All 4×4 combinations are classes, so neither cue suffices on its own: appearance alone leaves four
// motions to choose from, and motion alone leaves four appearances. The motions come in time-reversed
// pairs and a "moving left" clip is, frame for frame, exactly a "moving right" clip played backwards
// (likewise shrinking and growing): the set of frames of a clip carries no information about its
// direction, so a frame-level (spatial) model is at chance on the how, while the what needs spatial detail
// (a circle and a triangle of the same colour and size move identically).
//
// Clips are a pure function of (seed, index): Clip renders one in memory (pure Go, also under
// GOOS=js GOARCH=wasm) and WriteDataset encodes a whole dataset to H.264 MP4 files through ffmpeg with
// SSv2-style annotations, which ParseAnnotations reads back.
package synth

import (
	"math"
	"math/rand/v2"

	"github.com/castvideo/castgo/cast/preprocess"
)

// Shapes and colours of the target objects (the "what" of a class).
const (
	shapeCircle = iota
	shapeTriangle
	shapeSquare // distractors only
	shapePlus   // distractors only
)

// Motions of the target object (the "how" of a class). Each backward motion is the time reversal of its
// forward partner.
const (
	motionLeft = iota
	motionRight
	motionGrow
	motionShrink
)

type what struct {
	name  string
	shape int
	rgb   [3]float32
}

var whats = []what{
	{"red circle", shapeCircle, [3]float32{215, 45, 40}},
	{"red triangle", shapeTriangle, [3]float32{215, 45, 40}},
	{"blue circle", shapeCircle, [3]float32{40, 75, 225}},
	{"blue triangle", shapeTriangle, [3]float32{40, 75, 225}},
}

// HowCount is the number of motions, the "how" half of a label: label = HowCount·what + how (see Classes).
const HowCount = 4

var hows = [HowCount]string{"moving left", "moving right", "growing", "shrinking"}

// distractorRGB are the distractor colours: none has a dominant red or blue channel, so a distractor is
// never mistaken for a target.
var distractorRGB = [][3]float32{
	{60, 190, 70},   // green
	{225, 210, 55},  // yellow
	{232, 232, 228}, // white
	{55, 200, 205},  // cyan
}

// Classes are the class names, indexed by label: label = 4*what + how, with the whats "red circle",
// "red triangle", "blue circle", "blue triangle" and the hows "moving left", "moving right", "growing",
// "shrinking" (so Classes[0] is "red circle moving left" and Classes[15] "blue triangle shrinking").
var Classes = func() []string {
	names := make([]string, 0, len(whats)*len(hows))
	for _, w := range whats {
		for _, h := range hows {
			names = append(names, w.name+" "+h)
		}
	}
	return names
}()

// Label is the class of clip index: index modulo len(Classes), so any len(Classes) consecutive indices
// hold one clip of each class.
func Label(index int) int {
	n := len(Classes)
	return (index%n + n) % n
}

// Options sets the geometry and timing of generated clips. A zero field takes its default.
type Options struct {
	Frames int // frames per clip (default 16)
	Width  int // frame width in pixels (default 64)
	Height int // frame height in pixels (default 64)
	FPS    int // frame rate of the encoded videos (default 8); does not affect the pixels
}

// Default option values.
const (
	DefaultFrames = 16
	DefaultWidth  = 64
	DefaultHeight = 64
	DefaultFPS    = 8
)

func (o Options) withDefaults() Options {
	if o.Frames <= 0 {
		o.Frames = DefaultFrames
	}
	if o.Width <= 0 {
		o.Width = DefaultWidth
	}
	if o.Height <= 0 {
		o.Height = DefaultHeight
	}
	if o.FPS <= 0 {
		o.FPS = DefaultFPS
	}
	return o
}

// Clip renders clip index of the dataset with the given seed and returns its opt.Frames RGB24 frames of
// opt.Width×opt.Height pixels and its label (Label(index)). The result depends only on (seed, index, opt): the same arguments give identical
// pixels on every platform and in every process.
func Clip(seed int64, index int, opt Options) (frames []preprocess.Frame, label int) {
	opt = opt.withDefaults()
	label = Label(index)
	rng := rand.New(rand.NewPCG(splitmix(uint64(seed)), splitmix(uint64(index)^0x5851f42d4c957f2d)))
	sc := newScene(rng, opt)
	return sc.render(label), label
}

// scene holds everything random about a clip except its class, so that the same scene can be rendered
// as any class (the reversal property relies on this).
type scene struct {
	w, h, t int
	bg      []float32 // static background, 3 floats per pixel
	noise   uint64    // seed of the per-frame noise

	jitter [3]float32 // colour jitter of the target
	tilt   float64    // static rotation of the target (radians)

	// Translation (moving left/right), forward = rightwards: size, start centre, displacement.
	mSize, mx0, my0, mdx, mdy float64
	// Scaling (growing/shrinking), forward = growing: sizes at the start and end, centre path.
	s0, s1, sx0, sy0, sdx, sdy float64

	distractor bool
	dShape     int
	dRGB       [3]float32
	dSize      float64
	dTilt      float64
	dx0, dy0   float64 // start centre
	dx1, dy1   float64 // end centre
}

func newScene(rng *rand.Rand, opt Options) *scene {
	w, h := opt.Width, opt.Height
	fw, fh := float64(w), float64(h)
	s := math.Min(fw, fh)
	sc := &scene{w: w, h: h, t: opt.Frames, noise: rng.Uint64()}
	sc.bg = background(rng, w, h)

	for c := range sc.jitter {
		sc.jitter[c] = float32(uniform(rng, -20, 20))
	}
	sc.tilt = uniform(rng, -0.35, 0.35)

	// Translation: an object of 19-30% of the short side moves 35-55% of the width, with a slight
	// vertical drift, staying entirely inside the frame.
	sc.mSize = uniform(rng, 0.19, 0.30) * s
	ext := extent(sc.mSize)
	sc.mdx = uniform(rng, 0.35, 0.55) * fw
	sc.mdx = math.Min(sc.mdx, fw-2*ext) // very narrow frames
	sc.mdy = uniform(rng, -0.08, 0.08) * fh
	sc.mx0 = uniform(rng, ext, fw-ext-sc.mdx)
	sc.my0 = uniform(rng, ext+math.Max(0, -sc.mdy), fh-ext-math.Max(0, sc.mdy))

	// Scaling: from 12-16% to 30-38% of the short side, around a slowly drifting centre that keeps the
	// largest size inside the frame.
	sc.s0 = uniform(rng, 0.12, 0.16) * s
	sc.s1 = uniform(rng, 0.30, 0.38) * s
	ext = extent(sc.s1)
	sc.sx0 = uniform(rng, ext, fw-ext)
	sc.sy0 = uniform(rng, ext, fh-ext)
	sc.sdx = clampf(sc.sx0+uniform(rng, -0.06, 0.06)*fw, ext, fw-ext) - sc.sx0
	sc.sdy = clampf(sc.sy0+uniform(rng, -0.06, 0.06)*fh, ext, fh-ext) - sc.sy0

	// Distractor: in about half of the clips, a smaller square or plus in a non-target colour drifting
	// between two random points.
	sc.distractor = rng.IntN(2) == 0
	sc.dShape = shapeSquare + rng.IntN(2)
	sc.dRGB = distractorRGB[rng.IntN(len(distractorRGB))]
	sc.dSize = uniform(rng, 0.10, 0.15) * s
	sc.dTilt = uniform(rng, 0, math.Pi/2)
	ext = extent(sc.dSize)
	sc.dx0, sc.dy0 = uniform(rng, ext, fw-ext), uniform(rng, ext, fh-ext)
	sc.dx1, sc.dy1 = uniform(rng, ext, fw-ext), uniform(rng, ext, fh-ext)
	return sc
}

// extent is the largest distance from an object's centre to its outline, plus a pixel of margin.
func extent(size float64) float64 { return 0.62*size + 1 }

// background renders the static part of the background: a smooth two-colour gradient in a random
// direction, a few faint blobs and a fixed noise texture.
func background(rng *rand.Rand, w, h int) []float32 {
	var c0, c1 [3]float64
	for _, c := range []*[3]float64{&c0, &c1} {
		g := uniform(rng, 50, 190)
		for k := range c {
			c[k] = g + uniform(rng, -24, 24)
		}
	}
	phi := uniform(rng, 0, 2*math.Pi)
	cx, cy := math.Cos(phi), math.Sin(phi)
	span := math.Abs(cx)*float64(w) + math.Abs(cy)*float64(h)
	off := math.Min(0, cx*float64(w)) + math.Min(0, cy*float64(h))

	type blob struct{ x, y, inv2s2, amp float64 }
	blobs := make([]blob, 3+rng.IntN(3))
	tints := make([][3]float64, len(blobs))
	s := float64(min(w, h))
	for i := range blobs {
		sigma := uniform(rng, 0.06, 0.18) * s
		amp := uniform(rng, 10, 22)
		if rng.IntN(2) == 0 {
			amp = -amp
		}
		blobs[i] = blob{uniform(rng, 0, float64(w)), uniform(rng, 0, float64(h)), 1 / (2 * sigma * sigma), amp}
		for k := range tints[i] {
			tints[i][k] = uniform(rng, -6, 6)
		}
	}
	texture := rng.Uint64()

	bg := make([]float32, 3*w*h)
	for y := range h {
		for x := range w {
			px, py := float64(x)+0.5, float64(y)+0.5
			u := (px*cx + py*cy - off) / span
			u = u * u * (3 - 2*u) // smoothstep
			n := 5 * float64(signedNoise(texture, 0, x, y))
			i := 3 * (y*w + x)
			for k := range 3 {
				v := c0[k] + (c1[k]-c0[k])*u + n
				for j, b := range blobs {
					d2 := (px-b.x)*(px-b.x) + (py-b.y)*(py-b.y)
					v += (b.amp + tints[j][k]) * math.Exp(-d2*b.inv2s2)
				}
				bg[i+k] = float32(v)
			}
		}
	}
	return bg
}

// render draws the scene as class label. Backward motions run the forward motion's timeline in reverse,
// noise included, so they are exact time reversals of their partners.
func (sc *scene) render(label int) []preprocess.Frame {
	wt, how := whats[label/len(hows)], label%len(hows)
	backward := how == motionLeft || how == motionShrink
	rgb := wt.rgb
	for k := range rgb {
		rgb[k] += sc.jitter[k]
	}
	buf := make([]float32, len(sc.bg))
	frames := make([]preprocess.Frame, sc.t)
	for f := range frames {
		tf := f // the forward timeline's frame shown as frame f
		if backward {
			tf = sc.t - 1 - f
		}
		u := sc.timeline(how, f)
		for i := range buf {
			buf[i] = sc.bg[i] + 3*signedNoise(sc.noise, tf+1, i/3, i%3)
		}
		if sc.distractor {
			x, y := sc.dx0+(sc.dx1-sc.dx0)*u, sc.dy0+(sc.dy1-sc.dy0)*u
			drawShape(buf, sc.w, sc.h, sc.dShape, x, y, sc.dSize, sc.dTilt, sc.dRGB)
		}
		x, y, size := sc.target(how, u)
		drawShape(buf, sc.w, sc.h, wt.shape, x, y, size, sc.tilt, rgb)
		frames[f] = toFrame(buf, sc.w, sc.h)
	}
	return frames
}

// timeline returns where frame f sits on the forward timeline, in [0, 1]: backward motions play it in
// reverse.
func (sc *scene) timeline(how, f int) float64 {
	if how == motionLeft || how == motionShrink {
		f = sc.t - 1 - f
	}
	if sc.t > 1 {
		return float64(f) / float64(sc.t-1)
	}
	return 0.5
}

// target returns the target object's centre and size at forward-timeline position u for motion how.
func (sc *scene) target(how int, u float64) (x, y, size float64) {
	if how == motionLeft || how == motionRight {
		return sc.mx0 + sc.mdx*u, sc.my0 + sc.mdy*u, sc.mSize
	}
	return sc.sx0 + sc.sdx*u, sc.sy0 + sc.sdy*u, sc.s0 + (sc.s1-sc.s0)*u
}

// Box is a rectangle of whole pixels [X0, Y0, X1, Y1]: columns X0 to X1-1 and rows Y0 to Y1-1.
type Box [4]int

// Boxes returns, for clip index of the dataset with the given seed (the clip Clip renders), the box of the
// target object in each frame: the smallest rectangle of whole pixels that holds its exact outline (the
// circle, or the rotated triangle's corners), clipped to the frame. It renders no pixels.
func Boxes(seed int64, index int, opt Options) []Box {
	opt = opt.withDefaults()
	label := Label(index)
	rng := rand.New(rand.NewPCG(splitmix(uint64(seed)), splitmix(uint64(index)^0x5851f42d4c957f2d)))
	sc := newScene(rng, opt)
	wt, how := whats[label/len(hows)], label%len(hows)
	boxes := make([]Box, sc.t)
	for f := range boxes {
		x, y, size := sc.target(how, sc.timeline(how, f))
		x0, y0, x1, y1 := outline(wt.shape, size, sc.tilt)
		boxes[f] = Box{
			max(0, int(math.Floor(x+x0))), max(0, int(math.Floor(y+y0))),
			min(sc.w, int(math.Ceil(x+x1))), min(sc.h, int(math.Ceil(y+y1))),
		}
	}
	return boxes
}

// outline returns the bounds of a target shape of the given size rotated by tilt, relative to its centre
// (the shapes of inside).
func outline(shape int, size, tilt float64) (x0, y0, x1, y1 float64) {
	if shape == shapeCircle {
		r := size / 2
		return -r, -r, r, r
	}
	// The triangle's corners in its own frame (y down, pointing up; circumradius 0.6·size), rotated back
	// into the image: (dx, dy) = (cos·ox − sin·oy, sin·ox + cos·oy), the inverse of inside's rotation.
	r := 0.6 * size
	const c30 = 0.8660254037844386
	cos, sin := math.Cos(tilt), math.Sin(tilt)
	x0, y0, x1, y1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, c := range [3][2]float64{{0, -r}, {c30 * r, r / 2}, {-c30 * r, r / 2}} {
		dx, dy := cos*c[0]-sin*c[1], sin*c[0]+cos*c[1]
		x0, y0, x1, y1 = math.Min(x0, dx), math.Min(y0, dy), math.Max(x1, dx), math.Max(y1, dy)
	}
	return x0, y0, x1, y1
}

func toFrame(buf []float32, w, h int) preprocess.Frame {
	pix := make([]byte, len(buf))
	for i, v := range buf {
		pix[i] = byte(clampf(math.Round(float64(v)), 0, 255))
	}
	return preprocess.Frame{Width: w, Height: h, Pix: pix}
}

// drawShape composites an opaque shape of the given size (about its diameter) centred at (cx, cy) and
// rotated by tilt onto buf, anti-aliased by 4×4 supersampling.
func drawShape(buf []float32, w, h, shape int, cx, cy, size, tilt float64, rgb [3]float32) {
	const ss = 4
	ext := extent(size)
	x0, x1 := max(0, int(math.Floor(cx-ext))), min(w-1, int(math.Ceil(cx+ext)))
	y0, y1 := max(0, int(math.Floor(cy-ext))), min(h-1, int(math.Ceil(cy+ext)))
	cos, sin := math.Cos(tilt), math.Sin(tilt)
	for py := y0; py <= y1; py++ {
		for px := x0; px <= x1; px++ {
			hits := 0
			for sy := range ss {
				for sx := range ss {
					dx := float64(px) + (float64(sx)+0.5)/ss - cx
					dy := float64(py) + (float64(sy)+0.5)/ss - cy
					// Into the object's frame (rotate by -tilt).
					if inside(shape, cos*dx+sin*dy, -sin*dx+cos*dy, size) {
						hits++
					}
				}
			}
			if hits == 0 {
				continue
			}
			a := float32(hits) / (ss * ss)
			i := 3 * (py*w + px)
			for k := range 3 {
				buf[i+k] += (rgb[k] - buf[i+k]) * a
			}
		}
	}
}

// inside reports whether (x, y), relative to the centre in the object's own frame (y down), lies in the
// shape of the given size. Sizes are chosen so that shapes of one size have roughly equal areas.
func inside(shape int, x, y, size float64) bool {
	switch shape {
	case shapeCircle:
		r := size / 2
		return x*x+y*y <= r*r
	case shapeTriangle:
		// Equilateral, pointing up, centred on its centroid: each vertex direction v_k satisfies
		// p·v_k ≥ -R/2 inside (the inradius is R/2).
		r := 0.6 * size
		const c30 = 0.8660254037844386
		return -y >= -r/2 && c30*x+0.5*y >= -r/2 && -c30*x+0.5*y >= -r/2
	case shapeSquare:
		a := 0.44 * size
		return math.Abs(x) <= a && math.Abs(y) <= a
	case shapePlus:
		a, b := 0.5*size, 0.18*size
		ax, ay := math.Abs(x), math.Abs(y)
		return (ax <= a && ay <= b) || (ay <= a && ax <= b)
	}
	return false
}

// signedNoise is a hash-based uniform value in [-1, 1) for (seed, t, a, b); it needs no state, so noise
// can be looked up in any frame order.
func signedNoise(seed uint64, t, a, b int) float32 {
	z := splitmix(seed ^ uint64(t)*0x9e3779b97f4a7c15 ^ uint64(a)*0xc2b2ae3d27d4eb4f ^ uint64(b)*0x165667b19e3779f9)
	return float32(z>>40)/float32(1<<23) - 1
}

// splitmix is the SplitMix64 finaliser, a fast bijective bit mixer.
func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func uniform(rng *rand.Rand, lo, hi float64) float64 {
	if hi <= lo {
		return lo
	}
	return lo + (hi-lo)*rng.Float64()
}

func clampf(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }
