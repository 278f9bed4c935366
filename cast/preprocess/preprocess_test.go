package preprocess

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/castvideo/castgo/internal/golden"

	"github.com/castvideo/castgo/internal/npy"
)

// sharedDir is the shared golden directory; golden.Path fails the test when it is missing.
func sharedDir(t *testing.T) string { return golden.Path(t) }

func goldenDir(t *testing.T) string {
	return filepath.Join(sharedDir(t), "goldens", "preprocess")
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func f32le(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// decodeGolden decodes a golden video exactly like the README's decode_cmd.
func decodeGolden(t *testing.T, path string, w, h, n int) ([]Frame, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-i", path,
		"-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", path, err, stderr.String())
	}
	fs := w * h * 3
	if len(raw) != n*fs {
		t.Fatalf("%s: decoded %d bytes, want %d frames of %d", path, len(raw), n, fs)
	}
	frames := make([]Frame, n)
	for i := range frames {
		frames[i] = Frame{Width: w, Height: h, Pix: raw[i*fs : (i+1)*fs]}
	}
	return frames, raw
}

type framesUsed struct {
	SourceFrames  int    `json:"source_frames"`
	SourceSizeHW  [2]int `json:"source_size_hw"`
	Decoded       string `json:"decoded_rgb24_sha256"`
	LoaderIndex   []int  `json:"loader_all_index"`
	ResizedSizeHW [2]int `json:"resized_size_hw"`
	ResizeSkipped bool   `json:"resize_skipped_short_side_already_224"`
	CropOffsets   []struct {
		Split, Y0, X0, H, W int
	} `json:"crop_offsets"`
	Clips []struct {
		ChunkNb       int   `json:"chunk_nb"`
		FrameIndices  []int `json:"frame_indices"`
		TemporalStart *int  `json:"temporal_start"`
	} `json:"clips"`
	ViewOrder [][2]int `json:"view_order"`
}

type digest struct {
	Views []struct {
		ChunkNb int      `json:"chunk_nb"`
		SplitNb int      `json:"split_nb"`
		Shape   []int    `json:"shape"`
		Sum     float64  `json:"sum"`
		SHAf32  string   `json:"sha256_f32le"`
		SHAu8   string   `json:"u8_thwc_sha256"`
		Samples [][5]any `json:"samples"`
		Min     string   `json:"min"`
		Max     string   `json:"max"`
	} `json:"views"`
}

var goldenVideos = []struct {
	name    string
	w, h, n int
}{
	{"v1_landscape_320x240_30fps_100f", 320, 240, 100},
	{"v2_portrait_180x320_25fps_37f", 180, 320, 37},
	{"v3_tiny_64x48_10fps_9f", 64, 48, 9},
}

var goldenProtocols = []struct {
	name string
	p    Protocol
}{{"ssv2", SSv2}, {"k400", K400}}

// TestGoldenPipeline checks every view of every golden video and protocol bit for bit: indices, resize
// size, crop offsets, view order, the uint8 clip after resize+crop, and the float32 tensor.
func TestGoldenPipeline(t *testing.T) {
	gd := goldenDir(t)
	for _, gv := range goldenVideos {
		t.Run(gv.name, func(t *testing.T) {
			frames, raw := decodeGolden(t, filepath.Join(gd, "videos", gv.name+".mkv"), gv.w, gv.h, gv.n)
			frameMap := make(map[int]Frame, len(frames))
			for i, f := range frames {
				frameMap[i] = f
			}

			// Frame 0 resized, byte-exact against the official cv2 output.
			rz, err := npy.ReadFile(filepath.Join(gd, "resize", gv.name+"_frame0_resized_u8.npy"))
			if err != nil {
				t.Fatal(err)
			}
			nw, nh := ShortSideSize(gv.w, gv.h, DefaultSize)
			if !reflect.DeepEqual(rz.Shape, []int{nh, nw, 3}) {
				t.Fatalf("resize golden shape %v, ShortSideSize gives %dx%d", rz.Shape, nw, nh)
			}
			r0, err := Resize(frames[0], nw, nh)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r0.Pix, rz.Data) {
				t.Fatalf("frame 0 resize differs from golden in %d bytes", countDiff(r0.Pix, rz.Data))
			}

			for _, gp := range goldenProtocols {
				t.Run(gp.name, func(t *testing.T) {
					dir := filepath.Join(gd, gv.name+"_"+gp.name)
					var fu framesUsed
					readJSON(t, filepath.Join(dir, "frames_used.json"), &fu)
					var dg digest
					readJSON(t, filepath.Join(dir, "digest.json"), &dg)
					if fu.SourceFrames != gv.n || fu.SourceSizeHW != [2]int{gv.h, gv.w} {
						t.Fatalf("golden source %d frames %v", fu.SourceFrames, fu.SourceSizeHW)
					}
					if got := hexSHA(raw); got != fu.Decoded {
						t.Fatalf("decoded video sha %s, want %s", got, fu.Decoded)
					}

					clips, err := ClipIndices(gp.p, gv.n, DefaultFrames)
					if err != nil {
						t.Fatal(err)
					}
					if len(clips) != len(fu.Clips) {
						t.Fatalf("%d clips, want %d", len(clips), len(fu.Clips))
					}
					for k, c := range fu.Clips {
						if !slices.Equal(clips[k], c.FrameIndices) {
							t.Errorf("clip %d indices %v, want %v", k, clips[k], c.FrameIndices)
						}
					}
					if gp.p.Sampling == Segment {
						all := slices.Concat(clips...)
						slices.Sort(all)
						if !slices.Equal(all, fu.LoaderIndex) {
							t.Errorf("sorted union %v, want loader_all_index %v", all, fu.LoaderIndex)
						}
					}

					views, err := Plan(gp.p, gv.n, gv.w, gv.h, DefaultSize, DefaultFrames)
					if err != nil {
						t.Fatal(err)
					}
					if len(views) != len(fu.ViewOrder) || len(views) != len(dg.Views) {
						t.Fatalf("%d views, want %d", len(views), len(fu.ViewOrder))
					}
					for i, v := range views {
						if [2]int{v.Clip, v.Crop} != fu.ViewOrder[i] {
							t.Errorf("view %d is (%d,%d), want %v", i, v.Clip, v.Crop, fu.ViewOrder[i])
						}
						co := fu.CropOffsets[v.Crop]
						if v.X0 != co.X0 || v.Y0 != co.Y0 || co.W != DefaultSize || co.H != DefaultSize {
							t.Errorf("view %d crop at (%d,%d), want (%d,%d)", i, v.X0, v.Y0, co.X0, co.Y0)
						}
					}
					if fu.ResizeSkipped != (nw == gv.w && nh == gv.h) {
						t.Errorf("resize skipped = %v", fu.ResizeSkipped)
					}

					need := NeededFrames(views)
					all := slices.Clone(fu.LoaderIndex)
					slices.Sort(all)
					if !slices.Equal(need, slices.Compact(all)) {
						t.Errorf("needed frames %v, want the unique loader indices", need)
					}
					// Give Prepare only the needed frames, as a decoder keeping only those would.
					kept := make(map[int]Frame, len(need))
					for _, i := range need {
						kept[i] = frameMap[i]
					}
					prep, err := Prepare(kept, views, DefaultSize)
					if err != nil {
						t.Fatal(err)
					}
					if w, h := prep.ResizedSize(); [2]int{h, w} != fu.ResizedSizeHW {
						t.Fatalf("resized %dx%d, want hw %v", w, h, fu.ResizedSizeHW)
					}
					u8 := make([]byte, DefaultFrames*DefaultSize*DefaultSize*3)
					ten := make([]float32, TensorLen(DefaultSize, DefaultFrames))
					for i, v := range views {
						gvw := dg.Views[i]
						if gvw.ChunkNb != v.Clip || gvw.SplitNb != v.Crop {
							t.Fatalf("digest view %d is (%d,%d)", i, gvw.ChunkNb, gvw.SplitNb)
						}
						if err := prep.ClipU8(v, u8); err != nil {
							t.Fatal(err)
						}
						if got := hexSHA(u8); got != gvw.SHAu8 {
							t.Errorf("view (%d,%d): uint8 clip sha %s, want %s", v.Clip, v.Crop, got, gvw.SHAu8)
						}
						if err := prep.ClipTensor(v, ten); err != nil {
							t.Fatal(err)
						}
						if got := hexSHA(f32le(ten)); got != gvw.SHAf32 {
							t.Errorf("view (%d,%d): float32 tensor sha %s, want %s", v.Clip, v.Crop, got, gvw.SHAf32)
							checkSamples(t, ten, gvw.Samples)
						}
					}
					if gv.name == "v1_landscape_320x240_30fps_100f" && gp.name == "ssv2" {
						checkFullView(t, filepath.Join(dir, "view_c0_s1.npy"), prep, views[1])
					}
				})
			}
		})
	}
}

// checkSamples reports the first few differing sampled values (diagnostics after a hash mismatch).
func checkSamples(t *testing.T, ten []float32, samples [][5]any) {
	t.Helper()
	bad := 0
	for _, s := range samples {
		c, tt, y, x := int(s[0].(float64)), int(s[1].(float64)), int(s[2].(float64)), int(s[3].(float64))
		want, _ := strconv.ParseFloat(s[4].(string), 32)
		got := ten[((c*DefaultFrames+tt)*DefaultSize+y)*DefaultSize+x]
		if got != float32(want) && bad < 5 {
			bad++
			t.Errorf("  sample [%d,%d,%d,%d] = %v, want %v", c, tt, y, x, got, want)
		}
	}
}

func checkFullView(t *testing.T, path string, prep *Prepared, v View) {
	t.Helper()
	a, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Shape, []int{3, DefaultFrames, DefaultSize, DefaultSize}) || v.Clip != 0 || v.Crop != 1 {
		t.Fatalf("view_c0_s1 shape %v, view (%d,%d)", a.Shape, v.Clip, v.Crop)
	}
	ten := make([]float32, TensorLen(DefaultSize, DefaultFrames))
	if err := prep.ClipTensor(v, ten); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f32le(ten), a.Data) {
		t.Fatal("view (0,1) differs from view_c0_s1.npy")
	}
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}

func TestNormLUTGolden(t *testing.T) {
	var g struct {
		MeanF32 []string   `json:"mean_f32"`
		StdF32  []string   `json:"std_f32"`
		LUT     [][]string `json:"lut"`
	}
	readJSON(t, filepath.Join(goldenDir(t), "norm_lut.json"), &g)
	parse := func(s string) float32 {
		v, err := strconv.ParseFloat(s, 32)
		if err != nil {
			t.Fatal(err)
		}
		return float32(v)
	}
	for c := 0; c < 3; c++ {
		if float32(mean[c]) != parse(g.MeanF32[c]) || float32(std[c]) != parse(g.StdF32[c]) {
			t.Errorf("channel %d mean/std float32 differ from golden", c)
		}
	}
	if len(g.LUT) != 3 {
		t.Fatalf("lut has %d channels", len(g.LUT))
	}
	n := 0
	for c := 0; c < 3; c++ {
		if len(g.LUT[c]) != 256 {
			t.Fatalf("lut channel %d has %d entries", c, len(g.LUT[c]))
		}
		for v := 0; v < 256; v++ {
			want := parse(g.LUT[c][v])
			if got := Normalize(c, uint8(v)); math.Float32bits(got) != math.Float32bits(want) {
				t.Errorf("Normalize(%d, %d) = %v, want %v", c, v, got, want)
			}
			n++
		}
	}
	if n != 768 {
		t.Fatalf("checked %d entries", n)
	}
	if Normalize(3, 0) != 0 || Normalize(-1, 0) != 0 {
		t.Error("out-of-range channel not 0")
	}
}

func TestClipIndices(t *testing.T) {
	seq := func(a ...int) []int { return a }
	rep := func(v, n int) []int { return slices.Repeat([]int{v}, n) }
	tests := []struct {
		name string
		p    Protocol
		n, T int
		want [][]int
		err  string
	}{
		{name: "ssv2 N=9", p: SSv2, n: 9, T: 16, want: [][]int{
			seq(0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 7, 8),
			seq(0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6, 7, 7, 8, 8)}},
		{name: "ssv2 N=32", p: SSv2, n: 32, T: 16, want: [][]int{
			seq(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
			seq(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)}},
		{name: "ssv2 1 frame", p: SSv2, n: 1, T: 4, want: [][]int{rep(0, 4), rep(0, 4)}},
		{name: "segment T=8", p: SSv2, n: 20, T: 8, want: [][]int{
			seq(0, 2, 5, 7, 10, 12, 15, 17), seq(1, 3, 6, 8, 11, 13, 16, 18)}},
		{name: "segment 1 clip = midpoints", p: Protocol{Sampling: Segment, Clips: 1, Crops: 1}, n: 32, T: 4,
			want: [][]int{seq(4, 12, 20, 28)}},
		{name: "k400 N=100", p: K400, n: 100, T: 16, want: func() [][]int {
			var out [][]int
			for _, s := range []int{0, 2, 4, 6, 9} {
				var c []int
				for i := s; i < s+16; i++ {
					c = append(c, 4*i)
				}
				out = append(out, c)
			}
			return out
		}()},
		{name: "k400 N=9", p: K400, n: 9, T: 16, want: slices.Repeat([][]int{append(seq(0, 4), rep(8, 14)...)}, 5)},
		{name: "dense 1 clip starts at 0", p: Protocol{Sampling: Dense, Clips: 1, Crops: 1, SamplingRate: 2}, n: 20, T: 4,
			want: [][]int{seq(0, 2, 4, 6)}},
		{name: "dense T=8 2 clips", p: Protocol{Sampling: Dense, Clips: 2, Crops: 3, SamplingRate: 4}, n: 45, T: 8,
			want: [][]int{seq(0, 4, 8, 12, 16, 20, 24, 28), seq(16, 20, 24, 28, 32, 36, 40, 44)}},
		{name: "no frames", p: SSv2, n: 0, T: 16, err: "0 frames"},
		{name: "negative frames", p: K400, n: -3, T: 16, err: "-3 frames"},
		{name: "T=0", p: SSv2, n: 10, T: 0, err: "T=0"},
		{name: "3 segment clips", p: Protocol{Sampling: Segment, Clips: 3, Crops: 3}, n: 10, T: 16, err: "1 or 2 clips"},
		{name: "0 clips", p: Protocol{Sampling: Dense, Clips: 0, Crops: 3, SamplingRate: 4}, n: 10, T: 16, err: "0 clips"},
		{name: "rate 0", p: Protocol{Sampling: Dense, Clips: 5, Crops: 3}, n: 10, T: 16, err: "sampling rate 0"},
		{name: "unknown", p: Protocol{Sampling: "random", Clips: 1, Crops: 1}, n: 10, T: 16, err: "unknown sampling"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ClipIndices(tc.p, tc.n, tc.T)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
	// The segment interleave property from the README holds for many N and T.
	for T := 1; T <= 20; T++ {
		for n := 1; n <= 300; n++ {
			c, err := ClipIndices(SSv2, n, T)
			if err != nil {
				t.Fatal(err)
			}
			for x := 0; x < T; x++ {
				if c[0][x] > c[1][x] || c[1][x] >= n || (x+1 < T && c[1][x] > c[0][x+1]) {
					t.Fatalf("N=%d T=%d: starts %v mids %v not interleaved", n, T, c[0], c[1])
				}
			}
		}
	}
}

func TestShortSideSize(t *testing.T) {
	tests := []struct{ w, h, s, ww, wh int }{
		{320, 240, 224, 298, 224},
		{180, 320, 224, 224, 398},
		{64, 48, 224, 298, 224},
		{1920, 1080, 224, 398, 224},
		{1080, 1920, 224, 224, 398},
		{300, 300, 224, 224, 224},
		{300, 224, 224, 300, 224}, // already 224: unchanged
		{224, 500, 224, 224, 500},
		{320, 240, 112, 149, 112},
		{0, 240, 224, 0, 0},
		{320, 240, 0, 0, 0},
	}
	for _, tc := range tests {
		if w, h := ShortSideSize(tc.w, tc.h, tc.s); w != tc.ww || h != tc.wh {
			t.Errorf("ShortSideSize(%d,%d,%d) = %dx%d, want %dx%d", tc.w, tc.h, tc.s, w, h, tc.ww, tc.wh)
		}
	}
	// Integer division equals Python's int(float division) for all sizes up to 4096 (float64 check).
	for s := 1; s <= 4096; s += 7 {
		for l := s; l <= 4096; l += 13 {
			if w, _ := ShortSideSize(l, s, 224); w != int(224*float64(l)/float64(s)) {
				t.Fatalf("ShortSideSize(%d,%d) long side %d, float gives %d", l, s, w, int(224*float64(l)/float64(s)))
			}
		}
	}
}

func TestCropOffsets(t *testing.T) {
	pts := func(xy ...int) []image.Point {
		var out []image.Point
		for i := 0; i < len(xy); i += 2 {
			out = append(out, image.Pt(xy[i], xy[i+1]))
		}
		return out
	}
	tests := []struct {
		w, h, size, crops int
		want              []image.Point
		err               string
	}{
		{298, 224, 224, 3, pts(0, 0, 37, 0, 74, 0), ""},
		{224, 398, 224, 3, pts(0, 0, 0, 87, 0, 174), ""},
		{299, 224, 224, 3, pts(0, 0, 37, 0, 75, 0), ""},
		{224, 224, 224, 3, pts(0, 0, 0, 0, 0, 0), ""},
		{299, 224, 224, 1, pts(37, 0), ""},
		{224, 398, 224, 1, pts(0, 87), ""},
		{149, 112, 112, 2, pts(0, 0, 37, 0), ""},
		{200, 224, 224, 3, nil, "smaller"},
		{298, 224, 0, 3, nil, "crop size"},
		{298, 224, 224, 0, nil, "spatial crops"},
	}
	for _, tc := range tests {
		got, err := CropOffsets(tc.w, tc.h, tc.size, tc.crops)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("CropOffsets(%d,%d,%d,%d) err = %v, want %q", tc.w, tc.h, tc.size, tc.crops, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("CropOffsets(%d,%d,%d,%d) = %v, %v; want %v", tc.w, tc.h, tc.size, tc.crops, got, err, tc.want)
		}
	}
}

// refResize is a direct, unoptimised transcription of cv2_linear_u8_ref.py (including its explicit
// right-border and 2x INTER_AREA branches) used to cross-check Resize on many sizes.
func refResize(src Frame, dw, dh int) []byte {
	sw, sh := src.Width, src.Height
	out := make([]byte, dw*dh*3)
	if sw == dw && sh == dh {
		copy(out, src.Pix)
		return out
	}
	px := func(x, y, c int) int64 { return int64(src.Pix[(y*sw+x)*3+c]) }
	if sw == 2*dw && sh == 2*dh {
		for y := 0; y < dh; y++ {
			for x := 0; x < dw; x++ {
				for c := 0; c < 3; c++ {
					out[(y*dw+x)*3+c] = byte((px(2*x, 2*y, c) + px(2*x+1, 2*y, c) + px(2*x, 2*y+1, c) + px(2*x+1, 2*y+1, c) + 2) >> 2)
				}
			}
		}
		return out
	}
	coeffs := func(sl, dl int, clampNeg bool) (ofs, w0, w1 []int64, xmax int) {
		scale := 1.0 / (float64(dl) / float64(sl))
		xmax = dl
		for d := 0; d < dl; d++ {
			f := float32(float64((float64(d)+0.5)*scale) - 0.5)
			s := int(math.Floor(float64(f)))
			f = f - float32(s)
			if clampNeg {
				if s < 0 {
					f, s = 0, 0
				}
				if s+1 >= sl {
					xmax = min(xmax, d)
					if s >= sl-1 {
						f, s = 0, sl-1
					}
				}
			}
			ofs = append(ofs, int64(s))
			w0 = append(w0, int64(math.RoundToEven(float64(float32(1-f)*2048))))
			w1 = append(w1, int64(math.RoundToEven(float64(f*2048))))
		}
		return
	}
	xofs, a0, a1, xmax := coeffs(sw, dw, true)
	yofs, b0, b1, _ := coeffs(sh, dh, false)
	T := func(y, x, c int) int64 {
		sx := int(xofs[x])
		if x >= xmax {
			return px(sx, y, c) * 2048
		}
		return px(sx, y, c)*a0[x] + px(min(sx+1, sw-1), y, c)*a1[x]
	}
	clampi := func(v, lo, hi int) int { return max(lo, min(hi, v)) }
	for y := 0; y < dh; y++ {
		r0, r1 := clampi(int(yofs[y]), 0, sh-1), clampi(int(yofs[y])+1, 0, sh-1)
		for x := 0; x < dw; x++ {
			for c := 0; c < 3; c++ {
				v := ((b0[y]*(T(r0, x, c)>>4))>>16 + (b1[y]*(T(r1, x, c)>>4))>>16 + 2) >> 2
				out[(y*dw+x)*3+c] = byte(v)
			}
		}
	}
	return out
}

func randomFrame(rng *rand.Rand, w, h int) Frame {
	f := Frame{Width: w, Height: h, Pix: make([]byte, w*h*3)}
	rng.Read(f.Pix)
	return f
}

func TestResizeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	sizes := [][4]int{
		{320, 240, 298, 224}, {180, 320, 224, 398}, {64, 48, 298, 224}, {1, 1, 5, 3}, {7, 1, 3, 9},
		{1, 9, 4, 4}, {10, 10, 5, 5}, {12, 8, 6, 4}, {5, 7, 11, 13}, {33, 17, 8, 40}, {100, 3, 224, 224},
	}
	for i := 0; i < 40; i++ {
		sizes = append(sizes, [4]int{1 + rng.Intn(60), 1 + rng.Intn(60), 1 + rng.Intn(80), 1 + rng.Intn(80)})
	}
	for _, s := range sizes {
		src := randomFrame(rng, s[0], s[1])
		got, err := Resize(src, s[2], s[3])
		if err != nil {
			t.Fatal(err)
		}
		if want := refResize(src, s[2], s[3]); !bytes.Equal(got.Pix, want) {
			t.Errorf("%dx%d -> %dx%d: %d bytes differ from the reference", s[0], s[1], s[2], s[3], countDiff(got.Pix, want))
		}
	}
	// A constant image stays constant.
	c := Frame{Width: 13, Height: 7, Pix: bytes.Repeat([]byte{200, 17, 255}, 13*7)}
	got, _ := Resize(c, 30, 19)
	if !bytes.Equal(got.Pix, bytes.Repeat([]byte{200, 17, 255}, 30*19)) {
		t.Error("constant image not constant after resize")
	}
}

func TestResizeErrors(t *testing.T) {
	good := Frame{Width: 2, Height: 2, Pix: make([]byte, 12)}
	same, err := Resize(good, 2, 2)
	if err != nil || &same.Pix[0] == &good.Pix[0] {
		t.Fatalf("same-size resize must return a copy: %v", err)
	}
	for _, tc := range []struct {
		f    Frame
		w, h int
	}{
		{Frame{}, 4, 4},
		{Frame{Width: 2, Height: 2, Pix: make([]byte, 11)}, 4, 4},
		{Frame{Width: -2, Height: 2}, 4, 4},
		{good, 0, 4},
		{good, 4, -1},
		{good, 1 << 20, 4},
	} {
		if _, err := Resize(tc.f, tc.w, tc.h); err == nil {
			t.Errorf("Resize(%dx%d/%d bytes -> %dx%d) accepted", tc.f.Width, tc.f.Height, len(tc.f.Pix), tc.w, tc.h)
		}
	}
}

func TestFrameFromRGBA(t *testing.T) {
	f, err := FrameFromRGBA(2, 1, []byte{1, 2, 3, 255, 4, 5, 6, 0})
	if err != nil {
		t.Fatal(err)
	}
	if f.Width != 2 || f.Height != 1 || !bytes.Equal(f.Pix, []byte{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("got %+v", f)
	}
	for _, tc := range []struct {
		w, h int
		n    int
	}{{0, 1, 0}, {2, 1, 7}, {2, 2, 8}, {-1, -1, 4}} {
		if _, err := FrameFromRGBA(tc.w, tc.h, make([]byte, tc.n)); err == nil {
			t.Errorf("FrameFromRGBA(%d,%d,%d bytes) accepted", tc.w, tc.h, tc.n)
		}
	}
}

func TestPlanAndPrepare(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	const n, w, h, size, T = 12, 40, 30, 16, 4
	frames := make(map[int]Frame)
	for i := 0; i < n; i++ {
		frames[i] = randomFrame(rng, w, h)
	}
	views, err := Plan(SSv2, n, w, h, size, T)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 6 {
		t.Fatalf("%d views", len(views))
	}
	// 40x30 -> 21x16: crops at x = 0, 2, 5.
	wantX := []int{0, 2, 5, 0, 2, 5}
	for i, v := range views {
		if v.Clip != i/3 || v.Crop != i%3 || v.X0 != wantX[i] || v.Y0 != 0 || len(v.FrameIndices) != T {
			t.Errorf("view %d = %+v", i, v)
		}
	}
	if need := NeededFrames(views); !slices.Equal(need, []int{0, 1, 3, 4, 6, 7, 9, 10}) {
		t.Errorf("needed %v", need)
	}
	prep, err := Prepare(frames, views, size)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := prep.Tensors(views)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != len(views)*TensorLen(size, T) {
		t.Fatalf("batch has %d values", len(batch))
	}
	// Each tensor value is the normalised crop of the resized frame; the one-view helper agrees.
	v := views[4]
	one := make([]float32, TensorLen(size, T))
	if err := ClipTensor(frames, v, size, one); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one, batch[4*len(one):5*len(one)]) {
		t.Error("ClipTensor differs from Prepared.Tensors")
	}
	rf, _ := prep.Frame(v.FrameIndices[2])
	c, tt, y, x := 2, 2, 5, 7
	want := Normalize(c, rf.Pix[((v.Y0+y)*rf.Width+v.X0+x)*3+c])
	if got := one[((c*T+tt)*size+y)*size+x]; got != want {
		t.Errorf("tensor value %v, want %v", got, want)
	}

	// Errors, never panics.
	bad := func(name string, err error, substr string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), substr) {
			t.Errorf("%s: err = %v, want %q", name, err, substr)
		}
	}
	missing := maps(frames)
	delete(missing, 4)
	_, err = Prepare(missing, views, size)
	bad("missing frame", err, "frame 4 is needed but missing")
	odd := maps(frames)
	odd[7] = randomFrame(rng, w+2, h)
	_, err = Prepare(odd, views, size)
	bad("size mismatch", err, "frame 7 is 42x30 but frame 0 is 40x30")
	empty := maps(frames)
	empty[0] = Frame{}
	_, err = Prepare(empty, views, size)
	bad("empty frame", err, "empty")
	short := maps(frames)
	short[1] = Frame{Width: w, Height: h, Pix: make([]byte, 10)}
	_, err = Prepare(short, views, size)
	bad("short pixels", err, "needs 3600 bytes, has 10")
	_, err = Prepare(frames, nil, size)
	bad("no views", err, "no views")
	_, err = Prepare(frames, views, 0)
	bad("size 0", err, "crop size")
	// A plan made for another source size does not fit these frames.
	big, _ := Plan(SSv2, n, 80, 30, size, T)
	_, err = Prepare(frames, big, size)
	bad("plan/frame mismatch", err, "does not fit")
	bad("small dst", prep.ClipTensor(v, make([]float32, 10)), "need")
	bad("small u8 dst", prep.ClipU8(v, make([]byte, 10)), "need")
	bad("unprepared frame", prep.ClipTensor(View{FrameIndices: []int{2, 2, 2, 2}}, one), "not prepared")
	bad("no frames", prep.ClipTensor(View{}, one), "no frames")
	_, err = prep.Tensors([]View{views[0], {FrameIndices: []int{0}}})
	bad("ragged views", err, "view 1 has 1 frames")
	_, err = Plan(SSv2, 0, w, h, size, T)
	bad("plan 0 frames", err, "0 frames")
	_, err = Plan(SSv2, n, 0, h, size, T)
	bad("plan 0 width", err, "invalid video size")
	_, err = Plan(SSv2, n, w, h, -1, T)
	bad("plan bad size", err, "invalid crop size")
	_, err = Plan(Protocol{Sampling: Segment, Clips: 2, Crops: 0}, n, w, h, size, T)
	bad("plan 0 crops", err, "spatial crops")
	bad("one-view bad frames", ClipTensor(missing, views[4], size, one), "missing")
}

func maps(m map[int]Frame) map[int]Frame {
	out := make(map[int]Frame, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func Example() {
	views, _ := Plan(K400, 100, 320, 240, DefaultSize, DefaultFrames)
	fmt.Println(len(views), "views; frames needed:", len(NeededFrames(views)))
	fmt.Println("clip 4 starts at frame", views[12].FrameIndices[0], "crop 2 at x =", views[14].X0)
	// Output:
	// 15 views; frames needed: 25
	// clip 4 starts at frame 36 crop 2 at x = 74
}
