// Package video decodes videos into preprocess.Frames for CAST inference. Files are decoded by the ffmpeg
// command-line tools (ffprobe and ffmpeg must be on PATH, ffmpeg 5.1 or newer preferred) into packed
// RGB24, the way the official loader's decord does; a folder of .png/.jpg/.jpeg images is read with Go's
// image decoders instead. Only the frames a caller needs are kept, and decoding stops after the last one.
package video

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/castvideo/castgo/cast/preprocess"
)

// ErrFFmpegNotFound is returned when the ffmpeg executable is not on PATH.
var ErrFFmpegNotFound = errors.New("ffmpeg not found on PATH: install ffmpeg (Debian: apt-get install ffmpeg)")

// ErrFFprobeNotFound is returned when the ffprobe executable is not on PATH.
var ErrFFprobeNotFound = errors.New("ffprobe not found on PATH: install ffmpeg (Debian: apt-get install ffmpeg)")

// Info describes a video stream.
type Info struct {
	Width, Height int     // size of the decoded frames, after rotation metadata is applied
	Frames        int     // number of video packets, as decord's len(VideoReader) counts frames
	FPS           float64 // nominal frame rate (r_frame_rate); 0 if unknown or for an image folder
	Codec         string  // codec name, e.g. "h264"; "images" for an image folder
	Rotation      int     // display rotation in degrees from the container metadata (0 if none)
}

// Source is an opened video file or image folder.
type Source interface {
	// Info describes the video.
	Info() Info
	// Frames decodes the frames with the given 0-based indices (any order, duplicates allowed) and
	// returns them by index. Every index must be in [0, Info().Frames).
	Frames(ctx context.Context, keep []int) (map[int]preprocess.Frame, error)
}

// Open opens path, which is either a video file ffmpeg can read or a folder of frame images (sorted by
// file name; .png, .jpg and .jpeg; all of one size).
func Open(ctx context.Context, path string) (Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("video: %w", err)
	}
	if st.IsDir() {
		return openFolder(path)
	}
	info, err := Probe(ctx, path)
	if err != nil {
		return nil, err
	}
	return &fileSource{path: path, info: info}, nil
}

type fileSource struct {
	path string
	info Info
}

func (s *fileSource) Info() Info { return s.info }

func (s *fileSource) Frames(ctx context.Context, keep []int) (map[int]preprocess.Frame, error) {
	return decode(ctx, s.path, s.info, keep)
}

// checkFile reports a missing, non-regular or empty file with a clear message.
func checkFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("video: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("video: %s is a directory, not a video file", path)
	}
	if st.Size() == 0 {
		return fmt.Errorf("video: %s is empty (0 bytes)", path)
	}
	return nil
}

// Probe reads the first video stream's size, packet count, frame rate and codec with ffprobe. A file
// without a video stream, or whose video stream has no packets, is an error.
func Probe(ctx context.Context, path string) (Info, error) {
	if err := checkFile(path); err != nil {
		return Info{}, err
	}
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		return Info{}, ErrFFprobeNotFound
	}
	cmd := exec.CommandContext(ctx, bin, "-v", "error", "-count_packets", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,nb_read_packets,codec_name,r_frame_rate:stream_side_data=rotation:stream_tags=rotate",
		"-of", "json", "--", path)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 64 << 10}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return Info{}, fmt.Errorf("video: probing %s: %w", path, ctx.Err())
		}
		return Info{}, fmt.Errorf("video: ffprobe cannot read %s: %v%s", path, err, stderrSuffix(stderr.Bytes()))
	}
	var res struct {
		Streams []struct {
			CodecName     string `json:"codec_name"`
			Width         int    `json:"width"`
			Height        int    `json:"height"`
			RFrameRate    string `json:"r_frame_rate"`
			NbReadPackets string `json:"nb_read_packets"`
			Tags          struct {
				Rotate string `json:"rotate"`
			} `json:"tags"`
			SideData []struct {
				Rotation *float64 `json:"rotation"`
			} `json:"side_data_list"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return Info{}, fmt.Errorf("video: parsing ffprobe output for %s: %w", path, err)
	}
	if len(res.Streams) == 0 {
		return Info{}, fmt.Errorf("video: %s has no video stream", path)
	}
	s := res.Streams[0]
	info := Info{Width: s.Width, Height: s.Height, Codec: s.CodecName, FPS: parseRate(s.RFrameRate)}
	if s.NbReadPackets != "" {
		n, err := strconv.Atoi(s.NbReadPackets)
		if err != nil {
			return Info{}, fmt.Errorf("video: %s: bad packet count %q from ffprobe", path, s.NbReadPackets)
		}
		info.Frames = n
	}
	for _, sd := range s.SideData {
		if sd.Rotation != nil {
			info.Rotation = int(math.Round(*sd.Rotation))
		}
	}
	if info.Rotation == 0 && s.Tags.Rotate != "" { // ffmpeg < 5 reports the rotation as a tag
		if r, err := strconv.Atoi(s.Tags.Rotate); err == nil {
			info.Rotation = r
		}
	}
	if ((info.Rotation%180)+180)%180 == 90 {
		// ffmpeg autorotates by default, so the decoded frames have width and height swapped.
		info.Width, info.Height = info.Height, info.Width
	}
	if info.Width <= 0 || info.Height <= 0 {
		return Info{}, fmt.Errorf("video: %s: video stream has no frame size (%dx%d)", path, info.Width, info.Height)
	}
	if info.Frames < 1 {
		return Info{}, fmt.Errorf("video: %s: video stream has 0 frames", path)
	}
	return info, nil
}

// parseRate parses an ffprobe rational such as "30000/1001"; it returns 0 when unknown ("0/0").
func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		v, _ := strconv.ParseFloat(s, 64)
		return v
	}
	n, err1 := strconv.ParseFloat(num, 64)
	d, err2 := strconv.ParseFloat(den, 64)
	if err1 != nil || err2 != nil || d == 0 {
		return 0
	}
	return n / d
}

// DecodeFrames decodes the video file at path with ffmpeg and returns the frames with indices in keep
// (0-based, any order, duplicates allowed), as RGB24. Decoding stops after the last needed frame.
// Every index must be below the packet count Probe reports; a stream that ends early is an error that says
// how many frames were decoded.
func DecodeFrames(ctx context.Context, path string, keep []int) (map[int]preprocess.Frame, error) {
	info, err := Probe(ctx, path)
	if err != nil {
		return nil, err
	}
	return decode(ctx, path, info, keep)
}

func decode(ctx context.Context, path string, info Info, keep []int) (map[int]preprocess.Frame, error) {
	want, err := checkKeep(keep, info.Frames)
	if err != nil {
		return nil, fmt.Errorf("video: %s: %w", path, err)
	}
	if len(want) == 0 {
		return map[int]preprocess.Frame{}, nil
	}
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, ErrFFmpegNotFound
	}
	frames, err := runFFmpeg(ctx, bin, path, info, want, "-fps_mode")
	var old *oldFFmpegError
	if errors.As(err, &old) { // ffmpeg < 5.1 has no -fps_mode
		frames, err = runFFmpeg(ctx, bin, path, info, want, "-vsync")
	}
	return frames, err
}

// checkKeep validates indices against n frames and returns them sorted and unique.
func checkKeep(keep []int, n int) ([]int, error) {
	want := slices.Clone(keep)
	slices.Sort(want)
	want = slices.Compact(want)
	if len(want) > 0 && (want[0] < 0 || want[len(want)-1] >= n) {
		bad := want[0]
		if bad >= 0 {
			bad = want[len(want)-1]
		}
		return nil, fmt.Errorf("frame index %d out of range: the video has %d frames", bad, n)
	}
	return want, nil
}

type oldFFmpegError struct{ msg string }

func (e *oldFFmpegError) Error() string { return e.msg }

func runFFmpeg(ctx context.Context, bin, path string, info Info, want []int, fpsFlag string) (map[int]preprocess.Frame, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-v", "error", "-nostdin", "-i", path,
		"-map", "0:v:0", fpsFlag, "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 64 << 10}
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("video: ffmpeg pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("video: starting ffmpeg: %w", err)
	}
	frames, nread, rerr := readFrames(stdout, info.Width, info.Height, want)
	if rerr == nil {
		// All needed frames are in: stop ffmpeg now rather than decode the rest.
		cancel()
		_ = cmd.Wait()
		return frames, nil
	}
	werr := cmd.Wait()
	if ctx.Err() != nil && cmd.ProcessState != nil && !cmd.ProcessState.Success() {
		return nil, fmt.Errorf("video: decoding %s: %w", path, context.Cause(ctx))
	}
	msg := stderrSuffix(stderr.Bytes())
	if werr != nil && strings.Contains(stderr.String(), "Unrecognized option '"+strings.TrimPrefix(fpsFlag, "-")+"'") {
		return nil, &oldFFmpegError{msg: "ffmpeg does not know " + fpsFlag}
	}
	if werr != nil && nread == 0 {
		return nil, fmt.Errorf("video: ffmpeg cannot decode %s: %v%s", path, werr, msg)
	}
	return nil, fmt.Errorf("video: %s: decoded only %d of %d frames (need frame %d): %v%s",
		path, nread, info.Frames, want[len(want)-1], rerr, msg)
}

// readFrames reads packed RGB24 frames of w x h from r and keeps those in want (sorted, unique), stopping
// after the last one. It returns the number of whole frames read; the error is non-nil if r ended before
// the last wanted frame.
func readFrames(r io.Reader, w, h int, want []int) (map[int]preprocess.Frame, int, error) {
	size := w * h * 3
	out := make(map[int]preprocess.Frame, len(want))
	scratch := make([]byte, size)
	next := 0 // position in want
	for i := 0; next < len(want); i++ {
		buf := scratch
		kept := want[next] == i
		if kept {
			buf = make([]byte, size)
		}
		if n, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, i, fmt.Errorf("frame %d is incomplete (%d of %d bytes)", i, n, size)
			}
			if errors.Is(err, io.EOF) {
				return nil, i, errors.New("stream ended early")
			}
			return nil, i, fmt.Errorf("reading frame %d: %w", i, err)
		}
		if kept {
			out[i] = preprocess.Frame{Width: w, Height: h, Pix: buf}
			next++
		}
	}
	return out, want[len(want)-1] + 1, nil
}

// stderrSuffix formats a tool's stderr for an error message: trimmed, at most the last 1000 bytes.
func stderrSuffix(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 1000 {
		s = "..." + s[len(s)-1000:]
	}
	return ": " + s
}

// limitedBuffer keeps the first max bytes written to it and discards the rest.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
