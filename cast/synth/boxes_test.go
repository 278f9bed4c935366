package synth

import (
	"path/filepath"
	"reflect"
	"testing"
)

// TestBoxesHoldTheTarget checks Boxes against the rendered pixels: every strongly red (red targets) or
// strongly blue (blue targets) pixel lies inside the frame's box, and the box is at most a pixel of
// anti-aliasing larger than the hull of those pixels on each side. No background or distractor colour is
// that red or blue (see distractorRGB).
func TestBoxesHoldTheTarget(t *testing.T) {
	const seed = 77
	for index := range 32 {
		frames, label := Clip(seed, index, Options{})
		boxes := Boxes(seed, index, Options{})
		if len(boxes) != len(frames) {
			t.Fatalf("clip %d: %d boxes for %d frames", index, len(boxes), len(frames))
		}
		blue := whats[label/HowCount].rgb[2] > 128
		for f, fr := range frames {
			hull := Box{fr.Width, fr.Height, -1, -1}
			for y := range fr.Height {
				for x := range fr.Width {
					p := fr.Pix[3*(y*fr.Width+x):]
					r, g, b := int(p[0]), int(p[1]), int(p[2])
					hit := r > g+80 && r > b+80
					if blue {
						hit = b > r+80 && b > g+80
					}
					if !hit {
						continue
					}
					hull = Box{min(hull[0], x), min(hull[1], y), max(hull[2], x+1), max(hull[3], y+1)}
				}
			}
			bx := boxes[f]
			if hull[2] < 0 {
				t.Fatalf("clip %d frame %d: no target pixels found", index, f)
			}
			if hull[0] < bx[0] || hull[1] < bx[1] || hull[2] > bx[2] || hull[3] > bx[3] {
				t.Errorf("clip %d (%s) frame %d: target pixels %v outside the box %v", index, Classes[label], f, hull, bx)
			}
			for k := range 4 {
				if d := hull[k] - bx[k]; d > 2 || d < -2 {
					t.Errorf("clip %d (%s) frame %d: box %v is loose against the target pixels %v", index, Classes[label], f, bx, hull)
					break
				}
			}
		}
	}
}

func TestWriteBoxesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Frames: 8, Width: 48, Height: 32}
	if err := WriteBoxes(dir, 5, 3, opt); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBoxes(filepath.Join(dir, BoxesFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d clips, want 3", len(got))
	}
	for i := range 3 {
		if want := Boxes(5, i, opt); !reflect.DeepEqual(got[ClipName(i)], want) {
			t.Errorf("%s: %v, want %v", ClipName(i), got[ClipName(i)], want)
		}
	}
	if _, err := ReadBoxes(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("reading a missing file succeeded")
	}
}
