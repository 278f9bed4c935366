//go:build js && wasm

package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"syscall/js"
	"testing"

	"github.com/castvideo/castgo/cast/explain"
	"github.com/castvideo/castgo/cast/synth"
)

// synthRGBA renders clip index of the pointing game's dataset seed as RGBA frames (all of them).
func synthRGBA(seed int64, index int) (frames []any, w, h int) {
	clip, _ := synth.Clip(seed, index, synth.Options{})
	for _, f := range clip {
		b := make([]byte, f.Width*f.Height*4)
		for i := 0; i < f.Width*f.Height; i++ {
			copy(b[4*i:4*i+3], f.Pix[3*i:3*i+3])
			b[4*i+3] = 255
		}
		frames = append(frames, jsBytes(b))
	}
	return frames, clip[0].Width, clip[0].Height
}

// TestExplain runs castgo.explain on procedural clips: the maps of one view of the plan, for the methods
// asked, in the documented shape, and their top cells land on the moving shape (the pointing game) about as
// often as natively (cast/explain's TestPointingGame).
func TestExplain(t *testing.T) {
	const seed = 31337
	handle, _ := loadDefault(t)
	defer api.Call("dispose", handle)
	tally := map[string]*explain.Tally{}
	for index := range 6 {
		frames, w, h := synthRGBA(seed, index)
		n := len(frames)
		plan := api.Call("planViews", handle, map[string]any{"numFrames": n, "width": w, "height": h})
		view := index % plan.Get("views").Length()
		viewFrames := plan.Get("views").Index(view).Get("frames")
		// Only the view's frames, as an object from index to RGBA.
		given := map[string]any{}
		for k := 0; k < viewFrames.Length(); k++ {
			idx := viewFrames.Index(k).Int()
			given[strconv.Itoa(idx)] = frames[idx]
		}
		req := map[string]any{"numFrames": n, "width": w, "height": h, "frames": given, "view": view,
			"methods": []any{"cast-rollout", "gradient-x-input"}}
		res, err := await(api.Call("explain", handle, req))
		if err != nil {
			t.Fatalf("explain: %v", err)
		}
		var got explain.Result
		if err := json.Unmarshal([]byte(js.Global().Get("JSON").Call("stringify", res).String()), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Methods) != 2 || len(got.Views) != 1 || got.Views[0].View != view || len(got.Views[0].Top) != 1 {
			t.Fatalf("methods %d, views %+v", len(got.Methods), got.Views)
		}
		for name, maps := range got.Methods {
			if len(maps) != viewFrames.Length() {
				t.Fatalf("%s: %d maps, want one per frame of the view (%d)", name, len(maps), viewFrames.Length())
			}
			for k, m := range maps {
				if m.View != view || m.Frame != viewFrames.Index(k).Int() {
					t.Errorf("%s map %d: view %d frame %d, want view %d frame %d", name, k, m.View, m.Frame, view, viewFrames.Index(k).Int())
				}
				if m.Rect != [4]float64{0, 0, float64(w), float64(h)} {
					t.Errorf("%s: rect %v, want the whole %dx%d square frame", name, m.Rect, w, h)
				}
				if len(m.Grid) != 14 || len(m.Grid[0]) != 14 {
					t.Fatalf("%s: grid %d×%d, want 14×14", name, len(m.Grid), len(m.Grid[0]))
				}
			}
		}
		if err := explain.Score(&got, synth.Boxes(seed, index, synth.Options{}), tally); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("\n%s", explain.Table(explain.Methods, tally))
	for name, tl := range tally {
		if tl.Accuracy() < 0.75 {
			t.Errorf("%s: pointing game %s, want at least 0.75", name, tl)
		}
	}
}

func TestExplainErrors(t *testing.T) {
	const n, w, h = 24, 64, 48
	handle, _ := loadDefault(t)
	defer api.Call("dispose", handle)
	_, frames := syntheticVideo(handle, n, w, h)
	video := func(extra map[string]any) map[string]any {
		o := map[string]any{"numFrames": n, "width": w, "height": h, "frames": frames}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	for _, tc := range []struct {
		name string
		args []any
		want string
	}{
		{"unknown handle", []any{999, video(nil)}, "unknown model handle 999"},
		{"view", []any{handle, video(map[string]any{"view": 7})}, "view 7 is not in the plan"},
		{"methods type", []any{handle, video(map[string]any{"methods": "grad-cam"})}, "methods must be an array"},
		{"methods name", []any{handle, video(map[string]any{"methods": []any{"saliency"}})}, `unknown method "saliency"`},
		{"methods empty", []any{handle, video(map[string]any{"methods": []any{}})}, "methods is empty"},
		{"frames", []any{handle, video(map[string]any{"frames": frames[1:]})}, "aligned with neededFrames"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, thrown := try("explain", tc.args...)
			var err error
			if thrown.IsUndefined() {
				_, err = await(ret)
			} else {
				err = js.Error{Value: thrown}
			}
			if err == nil || !strings.Contains(err.Error(), "castgo.explain: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// All views, every method, frames aligned with the plan's neededFrames as classify takes them.
	res, err := await(api.Call("explain", handle, video(nil)))
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Split(js.Global().Get("Object").Call("keys", res.Get("methods")).Call("join", ",").String(), ",")
	slices.Sort(names)
	want := slices.Clone(explain.Methods)
	slices.Sort(want)
	if !slices.Equal(names, want) || res.Get("views").Length() != 2 {
		t.Errorf("methods %v (want %v), %d views (want 2)", names, want, res.Get("views").Length())
	}
}
