package video

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/castvideo/castgo/internal/golden"

	"github.com/castvideo/castgo/cast/preprocess"
)

// sharedDir is the shared golden directory; golden.Path fails the test when it is missing.
func sharedDir(t *testing.T) string { return golden.Path(t) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// ffmpeg runs the ffmpeg CLI (the tests need it on PATH) and returns stdout.
func ffmpeg(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-v", "error", "-nostdin", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, stderr.String())
	}
	return out
}

// makeVideo encodes frames of a lavfi source into dir/name and returns the path.
func makeVideo(t *testing.T, dir, name, src string, frames int, enc ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	args := append([]string{"-f", "lavfi", "-i", src, "-frames:v", itoa(frames)}, enc...)
	ffmpeg(t, append(args, p)...)
	return p
}

func itoa(i int) string { return strconv.Itoa(i) }

// rawFrames decodes every frame of path with the plain ffmpeg command.
func rawFrames(t *testing.T, path string, extra ...string) []byte {
	args := append([]string{"-i", path, "-map", "0:v:0", "-fps_mode", "passthrough"}, extra...)
	return ffmpeg(t, append(args, "-f", "rawvideo", "-pix_fmt", "rgb24", "-")...)
}

func TestProbeAndDecode(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, src   string
		frames      int
		enc         []string
		w, h        int
		fps         float64
		codec       string
		keep        []int
		losslessRGB bool
	}{
		{"landscape.mp4", "testsrc2=size=96x64:rate=25", 12, []string{"-c:v", "libx264", "-pix_fmt", "yuv420p"}, 96, 64, 25, "h264", []int{11, 0, 5, 5}, false},
		{"portrait.mp4", "testsrc2=size=64x96:rate=30000/1001", 10, []string{"-c:v", "libx264", "-pix_fmt", "yuv420p"}, 64, 96, 30000.0 / 1001, "h264", []int{1, 9}, false},
		{"short.avi", "testsrc2=size=64x48:rate=10", 9, []string{"-c:v", "mpeg4"}, 64, 48, 10, "mpeg4", []int{0, 8}, false},
		{"odd.mkv", "testsrc2=size=72x54:rate=12", 7, []string{"-vf", "scale=71:53", "-c:v", "ffv1"}, 71, 53, 12, "ffv1", []int{3}, false},
		{"odd_png.mkv", "testsrc=size=33x17:rate=5", 6, []string{"-pix_fmt", "rgb24", "-c:v", "png"}, 33, 17, 5, "png", []int{0, 1, 2, 3, 4, 5}, true},
		// A one-frame Matroska file reports its 1 ms timebase as the frame rate: the FPS is not checked (-1).
		{"one.mkv", "testsrc2=size=32x32:rate=5", 1, []string{"-c:v", "ffv1"}, 32, 32, -1, "ffv1", []int{0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := makeVideo(t, dir, tc.name, tc.src, tc.frames, tc.enc...)
			info, err := Probe(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			want := Info{Width: tc.w, Height: tc.h, Frames: tc.frames, FPS: tc.fps, Codec: tc.codec}
			if tc.fps < 0 {
				want.FPS = info.FPS
			}
			if info != want {
				t.Fatalf("Probe = %+v, want %+v", info, want)
			}
			got, err := DecodeFrames(ctx, p, tc.keep)
			if err != nil {
				t.Fatal(err)
			}
			all := rawFrames(t, p)
			fs := tc.w * tc.h * 3
			if len(all) != tc.frames*fs {
				t.Fatalf("reference decode has %d bytes", len(all))
			}
			uniq := map[int]bool{}
			for _, i := range tc.keep {
				uniq[i] = true
			}
			if len(got) != len(uniq) {
				t.Fatalf("got %d frames, want %d", len(got), len(uniq))
			}
			for i := range uniq {
				f, ok := got[i]
				if !ok {
					t.Fatalf("frame %d missing", i)
				}
				if f.Width != tc.w || f.Height != tc.h || !bytes.Equal(f.Pix, all[i*fs:(i+1)*fs]) {
					t.Errorf("frame %d differs from the reference decode", i)
				}
			}
			if tc.losslessRGB { // PNG frames are exactly what lavfi generated
				src := ffmpeg(t, "-f", "lavfi", "-i", tc.src, "-frames:v", itoa(tc.frames), "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
				if !bytes.Equal(src, all) {
					t.Error("lossless decode differs from the source")
				}
			}
			s, err := Open(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if s.Info() != want {
				t.Fatalf("Open info %+v", s.Info())
			}
			again, err := s.Frames(ctx, tc.keep[:1])
			if err != nil || len(again) != 1 || !bytes.Equal(again[tc.keep[0]].Pix, got[tc.keep[0]].Pix) {
				t.Fatalf("Source.Frames: %v", err)
			}
			none, err := s.Frames(ctx, nil)
			if err != nil || len(none) != 0 {
				t.Fatalf("no frames requested: %v, %d frames", err, len(none))
			}
			for _, bad := range [][]int{{tc.frames}, {-1, 0}} {
				if _, err := s.Frames(ctx, bad); err == nil || !strings.Contains(err.Error(), "out of range") {
					t.Errorf("keep %v: err = %v", bad, err)
				}
			}
		})
	}
}

// TestGoldenVideos decodes the lossless golden videos and checks the sha256 of all their RGB24 frames.
func TestGoldenVideos(t *testing.T) {
	gd := filepath.Join(sharedDir(t), "goldens", "preprocess")
	var manifest struct {
		Videos map[string]struct {
			File    string `json:"file"`
			Width   int    `json:"width"`
			Height  int    `json:"height"`
			Packets int    `json:"packets"`
			Codec   string `json:"codec"`
			SHA     string `json:"decoded_rgb24_sha256"`
		} `json:"videos"`
	}
	b, err := os.ReadFile(filepath.Join(gd, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Videos) != 3 {
		t.Fatalf("manifest lists %d videos", len(manifest.Videos))
	}
	for name, v := range manifest.Videos {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			s, err := Open(ctx, filepath.Join(gd, v.File))
			if err != nil {
				t.Fatal(err)
			}
			info := s.Info()
			if info.Width != v.Width || info.Height != v.Height || info.Frames != v.Packets || info.Codec != v.Codec {
				t.Fatalf("info %+v, manifest %+v", info, v)
			}
			keep := make([]int, info.Frames)
			for i := range keep {
				keep[i] = i
			}
			frames, err := s.Frames(ctx, keep)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			for i := range keep {
				h.Write(frames[i].Pix)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != v.SHA {
				t.Fatalf("decoded sha256 %s, want %s", got, v.SHA)
			}
		})
	}
}

func TestRotatedVideo(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	land := makeVideo(t, dir, "land.mp4", "testsrc2=size=96x64:rate=10", 3, "-c:v", "mpeg4", "-q:v", "2")
	rot := filepath.Join(dir, "rot.mp4")
	ffmpeg(t, "-i", land, "-c", "copy", "-metadata:s:v:0", "rotate=90", rot)
	info, err := Probe(ctx, rot)
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 64 || info.Height != 96 || info.Rotation == 0 {
		t.Fatalf("rotated video info %+v, want 64x96 with a rotation", info)
	}
	frames, err := DecodeFrames(ctx, rot, []int{0, 2})
	if err != nil {
		t.Fatal(err)
	}
	// ffmpeg's autorotation equals transposing the unrotated decode.
	want := rawFrames(t, land, "-vf", "transpose=cclock")
	if alt := rawFrames(t, land, "-vf", "transpose=clock"); info.Rotation < 0 || info.Rotation == 270 {
		want = alt
	}
	fs := 64 * 96 * 3
	if !bytes.Equal(frames[0].Pix, want[:fs]) || !bytes.Equal(frames[2].Pix, want[2*fs:3*fs]) {
		t.Fatal("rotated frames differ from the transposed decode")
	}
}

func TestErrors(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	good := makeVideo(t, dir, "good.mkv", "testsrc2=size=32x24:rate=5", 3, "-c:v", "ffv1")
	check := func(name string, err error, substr ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		for _, s := range substr {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not contain %q", name, err, s)
			}
		}
	}

	missing := filepath.Join(dir, "nope.mp4")
	_, err := Probe(ctx, missing)
	check("missing file", err, "no such file")
	_, err = Open(ctx, missing)
	check("open missing", err, "no such file")

	empty := filepath.Join(dir, "empty.mp4")
	os.WriteFile(empty, nil, 0o644)
	_, err = DecodeFrames(ctx, empty, []int{0})
	check("empty file", err, "empty (0 bytes)")

	garbage := filepath.Join(dir, "garbage.mp4")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a video "), 200), 0o644)
	_, err = Open(ctx, garbage)
	check("garbage", err, "ffprobe cannot read", "Invalid data found when processing input")

	audio := filepath.Join(dir, "audio.wav")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=d=0.2", audio)
	_, err = Probe(ctx, audio)
	check("audio only", err, "no video stream")

	zero := filepath.Join(dir, "zero.avi")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=5", "-frames:v", "0", "-c:v", "mpeg4", zero)
	_, err = Probe(ctx, zero)
	check("0 frames", err, "0 frames")

	_, err = Probe(ctx, dir)
	check("directory to Probe", err, "is a directory")

	// A stream whose packets do not all decode: corrupt the PNG data of frames 3..5.
	pngv := makeVideo(t, dir, "png.mkv", "testsrc2=size=64x48:rate=10", 10, "-pix_fmt", "rgb24", "-c:v", "png")
	data, _ := os.ReadFile(pngv)
	sig := []byte("\x89PNG")
	for k, off := 0, 0; k < 6; k++ {
		i := bytes.Index(data[off:], sig)
		if i < 0 {
			t.Fatal("PNG frames not found in the mkv")
		}
		off += i + len(sig)
		if k >= 3 {
			j := off + bytes.Index(data[off:], []byte("IDAT")) + 8
			copy(data[j:j+50], make([]byte, 50))
		}
	}
	bad := filepath.Join(dir, "corrupt.mkv")
	os.WriteFile(bad, data, 0o644)
	info, err := Probe(ctx, bad)
	if err != nil || info.Frames != 10 {
		t.Fatalf("corrupt video probe %+v %v", info, err)
	}
	_, err = DecodeFrames(ctx, bad, []int{0, 9})
	check("truncated stream", err, "decoded only 7 of 10 frames", "inflate")
	if fr, err := DecodeFrames(ctx, bad, []int{1}); err != nil || len(fr) != 1 {
		t.Errorf("early frame of corrupt video: %v", err)
	}

	// Canceled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = DecodeFrames(cctx, good, []int{0})
	check("canceled", err, "context canceled")
}

func TestToolsNotOnPath(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	good := makeVideo(t, dir, "good.mkv", "testsrc2=size=32x24:rate=5", 2, "-c:v", "ffv1")
	probe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatal(err)
	}
	onlyProbe := t.TempDir()
	if err := os.Symlink(probe, filepath.Join(onlyProbe, "ffprobe")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onlyProbe)
	_, err = DecodeFrames(ctx, good, []int{0})
	if !errors.Is(err, ErrFFmpegNotFound) || err.Error() != "ffmpeg not found on PATH: install ffmpeg (Debian: apt-get install ffmpeg)" {
		t.Errorf("without ffmpeg: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = Open(ctx, good)
	if !errors.Is(err, ErrFFprobeNotFound) {
		t.Errorf("without ffprobe: %v", err)
	}
}

func TestReadFrames(t *testing.T) {
	const w, h = 2, 1
	stream := []byte{0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6}
	got, n, err := readFrames(bytes.NewReader(stream), w, h, []int{0, 2})
	if err != nil || n != 3 || len(got) != 2 || got[2].Pix[0] != 4 || got[0].Pix[5] != 1 {
		t.Fatalf("got %v n=%d err=%v", got, n, err)
	}
	if _, n, err := readFrames(bytes.NewReader(stream), w, h, []int{3}); err == nil || n != 3 || !strings.Contains(err.Error(), "incomplete (2 of 6 bytes)") {
		t.Fatalf("partial frame: n=%d err=%v", n, err)
	}
	if _, n, err := readFrames(bytes.NewReader(stream[:18]), w, h, []int{5}); err == nil || n != 3 || !strings.Contains(err.Error(), "ended early") {
		t.Fatalf("short stream: n=%d err=%v", n, err)
	}
}

// TestEarlyStop decodes the first frame of a longer video: ffmpeg must be stopped and reaped.
func TestEarlyStop(t *testing.T) {
	ctx := testCtx(t)
	p := makeVideo(t, t.TempDir(), "long.mkv", "testsrc2=size=160x120:rate=25", 250, "-c:v", "ffv1")
	start := time.Now()
	fr, err := DecodeFrames(ctx, p, []int{0, 1})
	if err != nil || len(fr) != 2 {
		t.Fatal(err)
	}
	t.Logf("2 of 250 frames in %v", time.Since(start))
	if kids := childPIDs(t); len(kids) != 0 {
		t.Fatalf("child processes left behind: %v", kids)
	}
}

// childPIDs lists this process's children (Linux /proc; empty elsewhere).
func childPIDs(t *testing.T) []string {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var out []string
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err == nil {
			out = append(out, strings.Fields(string(b))...)
		}
	}
	return out
}

func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".png") {
		err = png.Encode(f, img)
	} else {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func testImage(w, h int, seed uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*7) + seed
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	return img
}

func TestImageFolder(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	// Written out of order, with a non-image file that must be ignored.
	for _, i := range []int{2, 0, 1} {
		writeImage(t, filepath.Join(dir, "frame_"+itoa(i)+".png"), testImage(5, 3, uint8(i)))
	}
	writeImage(t, filepath.Join(dir, "frame_3.JPG"), testImage(5, 3, 3))
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub.png"), 0o755)

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Info{Width: 5, Height: 3, Frames: 4, Codec: "images"}); s.Info() != want {
		t.Fatalf("info %+v, want %+v", s.Info(), want)
	}
	fr, err := s.Frames(ctx, []int{2, 0, 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(fr) != 3 {
		t.Fatalf("%d frames", len(fr))
	}
	for _, i := range []int{0, 2} {
		want := testImage(5, 3, uint8(i))
		for p := 0; p < 15; p++ {
			if !bytes.Equal(fr[i].Pix[p*3:p*3+3], want.Pix[p*4:p*4+3]) {
				t.Fatalf("frame %d pixel %d = %v, want %v", i, p, fr[i].Pix[p*3:p*3+3], want.Pix[p*4:p*4+3])
			}
		}
	}
	if fr[3].Width != 5 || fr[3].Height != 3 || fr[3].Validate() != nil {
		t.Fatalf("jpeg frame %+v", fr[3])
	}
	if _, err := s.Frames(ctx, []int{4}); err == nil {
		t.Error("index past the last image accepted")
	}

	// Mixed sizes.
	writeImage(t, filepath.Join(dir, "frame_9.png"), testImage(6, 3, 0))
	if _, err := Open(ctx, dir); err == nil || !strings.Contains(err.Error(), "all frames must have one size") {
		t.Errorf("mixed sizes: %v", err)
	}
	// No images.
	if _, err := Open(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .png, .jpg or .jpeg images") {
		t.Errorf("empty folder: %v", err)
	}
	// A broken image.
	bdir := t.TempDir()
	os.WriteFile(filepath.Join(bdir, "a.png"), []byte("not png"), 0o644)
	if _, err := Open(ctx, bdir); err == nil || !strings.Contains(err.Error(), "a.png") {
		t.Errorf("broken image: %v", err)
	}
}

func TestImageToFrame(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 2, 1))
	gray.Pix = []byte{10, 200}
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 1))
	rgba.Pix = []byte{100, 50, 0, 255, 50, 25, 0, 128} // second pixel premultiplied at alpha 128
	pal := image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.RGBA{1, 2, 3, 255}})
	ycc := image.NewYCbCr(image.Rect(0, 0, 2, 2), image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i] = 128
	}
	ycc.Cb[0], ycc.Cr[0] = 128, 128
	sub := testImage(4, 4, 0).SubImage(image.Rect(1, 1, 3, 2))
	tests := []struct {
		name string
		img  image.Image
		want []byte
	}{
		{"gray", gray, []byte{10, 10, 10, 200, 200, 200}},
		{"rgba premultiplied", rgba, []byte{100, 50, 0, 100, 50, 0}},
		{"paletted", pal, []byte{1, 2, 3}},
		{"ycbcr", ycc, bytes.Repeat([]byte{128, 128, 128}, 4)},
		{"subimage", sub, func() []byte {
			full := testImage(4, 4, 0)
			o := full.PixOffset(1, 1)
			return append(append([]byte{}, full.Pix[o:o+3]...), full.Pix[o+4:o+7]...)
		}()},
	}
	for _, tc := range tests {
		f := ImageToFrame(tc.img)
		if err := f.Validate(); err != nil || !bytes.Equal(f.Pix, tc.want) {
			t.Errorf("%s: got %v (%v), want %v", tc.name, f.Pix, err, tc.want)
		}
	}
	var _ preprocess.Frame = ImageToFrame(gray)
}
