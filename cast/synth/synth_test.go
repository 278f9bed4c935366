package synth

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/castvideo/castgo/cast/preprocess"
)

func TestClassesGrid(t *testing.T) {
	if got, want := len(Classes), len(whats)*len(hows); got != want {
		t.Fatalf("len(Classes) = %d, want %d", got, want)
	}
	seen := map[string]bool{}
	for i, name := range Classes {
		if seen[name] {
			t.Errorf("duplicate class name %q", name)
		}
		seen[name] = true
		w, h := whats[i/len(hows)], hows[i%len(hows)]
		if name != w.name+" "+h {
			t.Errorf("Classes[%d] = %q, want %q", i, name, w.name+" "+h)
		}
	}
	if Classes[0] != "red circle moving left" || Classes[15] != "blue triangle shrinking" {
		t.Errorf("class order changed: %q … %q", Classes[0], Classes[15])
	}
}

func TestClipDeterministic(t *testing.T) {
	a, la := Clip(7, 3, Options{})
	b, lb := Clip(7, 3, Options{})
	if la != lb || !reflect.DeepEqual(a, b) {
		t.Fatal("same seed and index gave different clips")
	}
	c, _ := Clip(8, 3, Options{})
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds gave identical clips")
	}
	d, _ := Clip(7, 3+len(Classes), Options{})
	if reflect.DeepEqual(a, d) {
		t.Error("different indices of one class gave identical clips")
	}
}

func TestClipShape(t *testing.T) {
	for _, tc := range []struct {
		opt          Options
		frames, w, h int
	}{
		{Options{}, DefaultFrames, DefaultWidth, DefaultHeight},
		{Options{Frames: 8, Width: 32, Height: 32}, 8, 32, 32},
		{Options{Frames: 1, Width: 56, Height: 40}, 1, 56, 40},
		{Options{Frames: 5, Width: 96, Height: 64}, 5, 96, 64},
	} {
		for index := range len(Classes) {
			frames, label := Clip(1, index, tc.opt)
			if label != index {
				t.Fatalf("%+v: Clip(1, %d) label %d, want %d", tc.opt, index, label, index)
			}
			if len(frames) != tc.frames {
				t.Fatalf("%+v: %d frames, want %d", tc.opt, len(frames), tc.frames)
			}
			for _, f := range frames {
				if err := f.Validate(); err != nil {
					t.Fatalf("%+v: %v", tc.opt, err)
				}
				if f.Width != tc.w || f.Height != tc.h || len(f.Pix) != 3*tc.w*tc.h {
					t.Fatalf("%+v: frame %dx%d with %d bytes, want %dx%d", tc.opt, f.Width, f.Height, len(f.Pix), tc.w, tc.h)
				}
			}
		}
	}
}

func TestLabelBalance(t *testing.T) {
	const k = 10 * 16
	counts := make([]int, len(Classes))
	for i := range k {
		counts[Label(i)]++
	}
	for c, n := range counts {
		if n != k/len(Classes) {
			t.Errorf("class %d has %d of %d clips", c, n, k)
		}
	}
	if Label(-1) != len(Classes)-1 {
		t.Errorf("Label(-1) = %d", Label(-1))
	}
}

// Backward motions are exact time reversals of their forward partners, so single frames carry no
// direction information.
func TestReversal(t *testing.T) {
	opt := Options{}.withDefaults()
	for seed := range uint64(8) {
		sc := newScene(rand.New(rand.NewPCG(seed, 1)), opt)
		for w := range whats {
			for _, pair := range [][2]int{{motionRight, motionLeft}, {motionGrow, motionShrink}} {
				fwd := sc.render(w*len(hows) + pair[0])
				bwd := sc.render(w*len(hows) + pair[1])
				for f := range fwd {
					if !bytes.Equal(fwd[f].Pix, bwd[len(bwd)-1-f].Pix) {
						t.Fatalf("seed %d: %s frame %d is not %s frame %d", seed,
							Classes[w*len(hows)+pair[1]], len(bwd)-1-f, Classes[w*len(hows)+pair[0]], f)
					}
				}
			}
		}
	}
}

// targetStats returns the centroid x and the count of pixels whose colour is dominated by the target's
// channel (red for red targets, blue for blue ones).
func targetStats(f preprocess.Frame, blue bool) (cx float64, n int) {
	for y := range f.Height {
		for x := range f.Width {
			p := f.Pix[3*(y*f.Width+x):]
			r, g, b := int(p[0]), int(p[1]), int(p[2])
			dom := r - max(g, b)
			if blue {
				dom = b - max(r, g)
			}
			if dom > 90 {
				cx += float64(x)
				n++
			}
		}
	}
	if n > 0 {
		cx /= float64(n)
	}
	return cx, n
}

func TestTargetMotion(t *testing.T) {
	opt := Options{}.withDefaults()
	for index := range 4 * len(Classes) {
		frames, label := Clip(42, index, opt)
		blue := strings.HasPrefix(Classes[label], "blue")
		first, last := frames[0], frames[len(frames)-1]
		x0, n0 := targetStats(first, blue)
		x1, n1 := targetStats(last, blue)
		if n0 == 0 || n1 == 0 {
			t.Fatalf("clip %d (%s): target not found (%d, %d pixels)", index, Classes[label], n0, n1)
		}
		dx := (x1 - x0) / float64(opt.Width)
		switch label % len(hows) {
		case motionLeft:
			if dx > -0.25 {
				t.Errorf("clip %d (%s): centroid moved %+.2f widths", index, Classes[label], dx)
			}
		case motionRight:
			if dx < 0.25 {
				t.Errorf("clip %d (%s): centroid moved %+.2f widths", index, Classes[label], dx)
			}
		case motionGrow:
			if n1 < 3*n0 {
				t.Errorf("clip %d (%s): area %d → %d pixels", index, Classes[label], n0, n1)
			}
		case motionShrink:
			if n0 < 3*n1 {
				t.Errorf("clip %d (%s): area %d → %d pixels", index, Classes[label], n0, n1)
			}
		}
	}
}

func TestParseAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Annotation
		err      string
	}{
		{"empty", "", nil, ""},
		{"space", "clip_000000.mp4 3\nclip_000001.mp4 0\n", []Annotation{{"clip_000000.mp4", 3}, {"clip_000001.mp4", 0}}, ""},
		{"comma and blanks", "\n a.mp4, 12 \n\n\tb.webm\t7\r\n", []Annotation{{"a.mp4", 12}, {"b.webm", 7}}, ""},
		{"no trailing newline", "x 1", []Annotation{{"x", 1}}, ""},
		{"missing label", "a.mp4 1\nb.mp4\n", nil, "line 2"},
		{"extra field", "a.mp4 1 2\n", nil, "line 1"},
		{"bad label", "\na.mp4 one\n", nil, "line 2"},
		{"negative label", "a.mp4 -1\n", nil, "line 1"},
		{"empty video", ",3\n", nil, "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAnnotations(strings.NewReader(tc.in))
			checkParse(t, got, tc.want, err, tc.err)
		})
	}
}

func TestParseEPICAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []EPICAnnotation
		err      string
	}{
		{"empty", "", nil, ""},
		{"header", "id,verb,noun\nP01_01_0,2,10\nP01_01_1,0,3\n", []EPICAnnotation{{"P01_01_0", 2, 10}, {"P01_01_1", 0, 3}}, ""},
		{"no header, spaces, blanks", "P01_01_0, 2, 10\n\n  \nP02_03_7,5,0", []EPICAnnotation{{"P01_01_0", 2, 10}, {"P02_03_7", 5, 0}}, ""},
		{"header only", "narration_id,verb_class,noun_class\n", nil, ""},
		{"two fields", "id,verb,noun\nP01,2\n", nil, "line 2"},
		{"bad noun", "P01,2,10\nP02,3,pan\n", nil, "line 2"},
		{"bad verb after header", "id,verb,noun\nP01,take,3\n", nil, "line 2"},
		{"second header", "id,verb,noun\nid,verb,noun\n", nil, "line 2"},
		{"negative verb", "P01,-2,3\n", nil, "line 1"},
		{"empty id", ",2,3\n", nil, "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEPICAnnotations(strings.NewReader(tc.in))
			checkParse(t, got, tc.want, err, tc.err)
		})
	}
}

func checkParse[T any](t *testing.T, got, want []T, err error, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want one mentioning %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestContactSheet writes PNG contact sheets of a few clips to $SYNTH_SHEET_DIR for eyeballing; it is
// skipped when the variable is unset.
func TestContactSheet(t *testing.T) {
	dir := os.Getenv("SYNTH_SHEET_DIR")
	if dir == "" {
		t.Skip("set SYNTH_SHEET_DIR to write contact sheets")
	}
	const scale, cols = 3, 8
	for _, index := range []int{0, 1, 7, 18, 21, 30} {
		frames, label := Clip(1, index, Options{})
		fw, fh := frames[0].Width*scale, frames[0].Height*scale
		rows := (len(frames) + cols - 1) / cols
		img := image.NewRGBA(image.Rect(0, 0, cols*(fw+2), rows*(fh+2)))
		for i, f := range frames {
			ox, oy := (i%cols)*(fw+2), (i/cols)*(fh+2)
			for y := range fh {
				for x := range fw {
					p := f.Pix[3*((y/scale)*f.Width+x/scale):]
					img.Set(ox+x, oy+y, color.RGBA{p[0], p[1], p[2], 255})
				}
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, fmt.Sprintf("synth_sheet_%02d_%s.png", index, strings.ReplaceAll(Classes[label], " ", "_")))
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", name)
	}
}
