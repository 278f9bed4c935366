//go:build !js

package synth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWriteDataset(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not on PATH (apt-get install ffmpeg; .ci/run installs it)")
	}
	dir := t.TempDir()
	opt := Options{Frames: 8, Width: 32, Height: 32}
	const clips = 4
	var calls []string
	err := WriteDataset(context.Background(), dir, 3, clips, opt, func(done, total int) {
		calls = append(calls, fmt.Sprintf("%d/%d", done, total))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(calls, " "); got != "1/4 2/4 3/4 4/4" {
		t.Errorf("progress calls %q", got)
	}

	f, err := os.Open(filepath.Join(dir, "annotations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ann, err := ParseAnnotations(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ann) != clips {
		t.Fatalf("%d annotations, want %d", len(ann), clips)
	}
	for i, a := range ann {
		if want := fmt.Sprintf("clip_%06d.mp4", i); a.Video != want || a.Label != Label(i) {
			t.Errorf("annotation %d = %+v, want {%s %d}", i, a, want, Label(i))
		}
	}

	classes, err := os.ReadFile(filepath.Join(dir, "classes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(classes), "\n"), "\n"); strings.Join(got, "|") != strings.Join(Classes, "|") {
		t.Errorf("classes.txt = %q", got)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != clips+2 {
		t.Errorf("%d entries in the dataset directory, want %d (leftover temporary files?)", len(entries), clips+2)
	}

	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe not on PATH (it comes with ffmpeg: apt-get install ffmpeg; .ci/run installs it)")
	}
	for _, a := range ann {
		out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
			"-show_entries", "stream=nb_read_frames,width,height,codec_name", "-of", "csv=p=0",
			filepath.Join(dir, a.Video)).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", a.Video, err)
		}
		fields := strings.Split(strings.TrimSpace(string(out)), ",")
		if len(fields) != 4 {
			t.Fatalf("ffprobe %s: unexpected output %q", a.Video, out)
		}
		n, _ := strconv.Atoi(fields[3])
		if fields[0] != "h264" || fields[1] != "32" || fields[2] != "32" || n != opt.Frames {
			t.Errorf("%s: ffprobe codec,width,height,frames = %q, want h264,32,32,%d", a.Video, strings.TrimSpace(string(out)), opt.Frames)
		}
	}
}

func TestWriteDatasetErrors(t *testing.T) {
	ctx := context.Background()
	if err := WriteDataset(ctx, t.TempDir(), 1, 1, Options{Width: 33, Height: 32}, nil); err == nil || !strings.Contains(err.Error(), "even") {
		t.Errorf("odd width: error %v", err)
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not on PATH (apt-get install ffmpeg; .ci/run installs it)")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := WriteDataset(cancelled, t.TempDir(), 1, 1, Options{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if err := WriteDataset(ctx, t.TempDir(), 1, 1, Options{}, nil); err == nil || !strings.Contains(err.Error(), "ffmpeg") {
		t.Errorf("missing ffmpeg: error %v", err)
	}
}
